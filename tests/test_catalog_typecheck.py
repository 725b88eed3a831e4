"""mypy sees the generated event classes: wrong property names and event classes are rejected."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOOD = Path("tests/typecheck/good_handler.py")
BAD = Path("tests/typecheck/bad_handler.py")
_ERROR = re.compile(r"(?P<path>[^:]+):(?P<line>\d+): error: .*\[(?P<code>[\w-]+)\]$")


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, set[tuple[int, str]]]:
    """mypy's errors in the two typecheck files, as (line, code) per file; one mypy run."""
    cache = tmp_path_factory.mktemp("mypy-cache")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--cache-dir",
            str(cache),
            "--no-pretty",
            str(GOOD),
            str(BAD),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    errors: dict[Path, set[tuple[int, str]]] = {GOOD: set(), BAD: set()}
    for line in result.stdout.splitlines():
        match = _ERROR.match(line)
        if match:
            errors.setdefault(Path(match["path"]), set()).add((int(match["line"]), match["code"]))
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return errors


def expected_errors(path: Path) -> set[tuple[int, str]]:
    """The (line, code) pairs a file marks with `# expect: CODE`."""
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    return {
        (number, match[1])
        for number, text in enumerate(lines, start=1)
        if (match := re.search(r"# expect: ([\w-]+)", text))
    }


def test_a_correct_handler_passes(mypy_errors: dict[Path, set[tuple[int, str]]]) -> None:
    assert mypy_errors[GOOD] == set()


def test_wrong_property_names_and_event_classes_are_rejected(
    mypy_errors: dict[Path, set[tuple[int, str]]],
) -> None:
    expected = expected_errors(BAD)
    assert len(expected) == 3
    assert mypy_errors[BAD] == expected


def test_no_errors_outside_the_two_files(mypy_errors: dict[Path, set[tuple[int, str]]]) -> None:
    assert set(mypy_errors) == {GOOD, BAD}

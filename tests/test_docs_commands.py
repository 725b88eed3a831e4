"""Every shell block of README.md and docs/ runs as written, in order, in a fresh copy.

A fenced `sh` block is run as it stands. An HTML comment on the line before a block says
otherwise (the comment does not show when the Markdown is rendered):

- `<!-- run: background -->`: a listener; started in the background (replacing the one
  started before, as a reader would stop it first) and waited for until its port is open;
- `<!-- run: file NAME -->`: the block (any language) is written to NAME, as a reader would
  save it;
- `<!-- run: skip, REASON -->`: not run, for the reason given.

Each document runs in one shell (so `export` and `source` carry from block to block) inside a
private network and PID namespace: the listener has port 443 and `localhost` to itself, and
every process it started ends with the namespace. The copy gets its own `.venv` from the
commands themselves (`./dev serve` first), with pip pointed at wheels downloaded beforehand,
since the namespace has no network.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.support.doc_blocks import SHELL, Block, read_blocks

DOCS = (
    "README.md",
    "docs/testing.md",
    "docs/sender.md",
    "docs/providers.md",
    "docs/deploy.md",
    "docs/subscribers.md",
    "docs/scaling.md",
    "docs/operating.md",
    "docs/personal-data.md",
)
"""In the order a reader meets them; later documents use what earlier ones set up."""

_PORT = re.compile(r"--port[ =](\d+)")


ALL_BLOCKS = [block for doc in DOCS for block in read_blocks(doc)]


def shell_lines(block: Block) -> list[str]:
    """The block's commands, continuation lines joined."""
    return [
        line.strip()
        for line in block.text.replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=lambda b: b.where)
def test_every_marker_is_one_the_walk_through_knows(block: Block) -> None:
    if block.marker is None:
        return
    kind, _, rest = block.marker.partition(" ")
    if block.marker.startswith("skip"):
        assert block.marker.startswith("skip, ") and len(block.marker) > 12, (
            f"{block.where}: a skipped block says why: <!-- run: skip, REASON -->"
        )
    elif kind == "file":
        assert re.fullmatch(r"[\w.-]+", rest), f"{block.where}: file takes one plain name"
    else:
        assert block.marker == "background", f"{block.where}: unknown marker {block.marker!r}"
        assert block.lang in SHELL


def test_no_command_hides_in_an_indented_block() -> None:
    for doc in DOCS:
        for number, line in enumerate((ROOT / doc).read_text().splitlines(), 1):
            assert not re.match(r"^ {4,}(receiver|\./dev|curl|export) ", line), (
                f"{doc}:{number}: put commands in a fenced sh block, so the walk-through runs them"
            )


def test_every_receiver_command_shown_is_run() -> None:
    shown = [
        (block.where, line)
        for block in ALL_BLOCKS
        if block.lang in SHELL
        for line in shell_lines(block)
        if re.match(r"(\S+=\S+ )*(receiver|\./dev) ", line)
    ]
    assert len(shown) >= 10
    not_run = [
        (where, line)
        for where, line in shown
        if not next(b for b in ALL_BLOCKS if b.where == where).runs and line != "./dev test"
    ]
    assert not_run == []


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's files as a fresh clone has them: no .venv, certificates or inbox."""
    target = tmp_path_factory.mktemp("docs") / "clone"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.is_file():
            continue  # deleted in the work tree but not yet in the index
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(source.read_bytes())
        destination.chmod(source.stat().st_mode & 0o777)
    return target


@pytest.fixture(scope="module")
def wheelhouse(clone: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every wheel the documents' installs need, fetched before the network goes away."""
    directory = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--dest", str(directory), "pip", "setuptools>=77", "wheel",
            f"{clone}[testing,examples,postgres]",
        ],
        check=True,
        timeout=600,
    )  # fmt: skip
    return directory


def script(doc: str, clone: Path, work: Path) -> str:
    """The shell script that runs `doc`'s blocks in order, as a reader would."""
    parts = [
        "set -euo pipefail",
        "ip link set lo up",
        f"cd {shlex.quote(str(clone))}",
        "bg=",
        # Stop the listener's whole process group and wait until it has let go of its port.
        "stop_bg() {",
        '  [ -n "$bg" ] || return 0',
        '  kill -TERM -- "-$bg" 2>/dev/null || true',
        '  for _ in $(seq 300); do kill -0 -- "-$bg" 2>/dev/null || break; sleep 0.1; done',
        '  kill -KILL -- "-$bg" 2>/dev/null || true; wait "$bg" 2>/dev/null || true; bg=',
        "}",
        "start_bg() {",  # $1 block file, $2 log file, $3 port
        "  stop_bg",
        '  setsid bash "$1" >"$2" 2>&1 </dev/null & bg=$!',
        "  for _ in $(seq 1800); do",
        '    if (exec 3<>"/dev/tcp/127.0.0.1/$3") 2>/dev/null; then return 0; fi',
        '    kill -0 "$bg" 2>/dev/null || { echo "the listener exited:"; cat "$2"; return 1; }',
        "    sleep 0.1",
        "  done",
        '  echo "the listener did not open port $3 in 180 s:"; cat "$2"; return 1',
        "}",
        "trap stop_bg EXIT",
    ]
    if doc != DOCS[0]:
        # The later documents start where the README leaves a reader: `receiver` on PATH.
        parts.append("source .venv/bin/activate")
    for number, block in enumerate(read_blocks(doc)):
        if not block.runs:
            continue
        parts.append(f"echo {shlex.quote('### ' + block.where)} >&2")
        if block.marker and block.marker.startswith("file "):
            (clone / block.marker.removeprefix("file ")).write_text(block.text)
        elif block.marker == "background":
            path = work / f"block-{number}.sh"
            path.write_text(block.text)
            port = _PORT.search(block.text)
            log = work / f"listener-{number}.log"
            parts.append(f"start_bg {path} {log} {port.group(1) if port else 443}")
        else:
            parts.append(block.text)
    return "\n".join(parts) + "\n"


def clean_environment(wheels: Path, tmpdir: Path) -> dict[str, str]:
    """This process's environment without the receiver's, coverage's, a virtualenv's or
    libpq's marks, with its own TMPDIR (where examples/scaling/local-postgres.sh keeps its
    server)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("RECEIVER_", "COVERAGE", "PYTEST", "VIRTUAL_ENV", "PIP_", "PG"))
    }
    env["TMPDIR"] = str(tmpdir)
    env["PATH"] = os.pathsep.join(
        part for part in env.get("PATH", "").split(os.pathsep) if "/.venv/" not in part + "/"
    )
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels), PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


@pytest.fixture(scope="module")
def walk(
    clone: Path, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[int, str]]]:
    """Run every document in order; each gives its exit status and everything it printed."""
    results: dict[str, tuple[int, str]] = {}
    # Not under pytest's temporary folder, which only root may enter: as root, the throwaway
    # PostgreSQL server runs as the `postgres` user, who must reach its data directory here.
    tmpdir = Path(tempfile.mkdtemp(prefix="docs-tmp-", dir="/tmp"))
    tmpdir.chmod(0o711)
    env = clean_environment(wheelhouse, tmpdir)
    for doc in DOCS:
        work = tmp_path_factory.mktemp("walk")
        (work / "run.sh").write_text(script(doc, clone, work))
        run = subprocess.run(
            ["unshare", "--net", "--pid", "--fork", "--mount-proc", "bash", str(work / "run.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        logs = "".join(
            f"\n--- {log.name}\n{log.read_text(errors='replace')}"
            for log in sorted(work.glob("listener-*.log"))
        )
        results[doc] = (run.returncode, run.stdout + run.stderr + logs)
        if run.returncode != 0:
            break
    yield results
    shutil.rmtree(tmpdir, ignore_errors=True)


def transcript(walk: dict[str, tuple[int, str]], doc: str) -> str:
    """What `doc`'s commands printed, after checking they all succeeded."""
    assert doc in walk, "an earlier document failed"
    status, output = walk[doc]
    assert status == 0, f"{doc}: a command failed (the last ### line names its block)\n{output}"
    return output


@pytest.mark.timeout(1800)
def test_readme_leads_to_a_handled_event_and_a_passing_integrator_test(
    walk: dict[str, tuple[int, str]], clone: Path
) -> None:
    output = transcript(walk, "README.md")
    listeners = output.split("--- listener", 1)[-1]  # the listeners' logs
    assert re.search(r"call from \+\*+34 answered by Agent Smith", listeners)  # number masked
    assert "1 passed" in output  # the integrator test
    assert "done" in output  # `receiver inbox list`
    # `./dev serve` installed only what serving needs; the integrator added pytest.
    installed = {p.name.split("-")[0].lower() for p in clone.glob(".venv/lib/*/site-packages/*")}
    assert {"starlette", "uvicorn", "orjson", "pytest"} <= installed
    assert not {"mypy", "ruff", "hypothesis", "sslyze", "coverage", "trustme"} & installed


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("doc", DOCS[1:])
def test_each_document_runs_as_written(walk: dict[str, tuple[int, str]], doc: str) -> None:
    transcript(walk, doc)

"""`receiver schema` run as a process: every provider, both formats, `--event` and its errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from receiver.catalogs.schema import PROVIDERS, json_schema, openapi

ROOT = Path(__file__).resolve().parents[1]
BUILD = {"jsonschema": json_schema, "openapi": openapi}


def schema_command(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    """`python -m receiver schema ARGS`, with no RECEIVER_* variable of this shell."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RECEIVER_")}
    return subprocess.run(
        [sys.executable, "-m", "receiver", "schema", *args],
        cwd=cwd, env={**clean, "PYTHONPATH": str(ROOT)},
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip


def printed(result: subprocess.CompletedProcess[bytes]) -> Any:
    """The JSON document a successful run printed."""
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""
    return orjson.loads(result.stdout)


@pytest.mark.parametrize("output_format", BUILD)
@pytest.mark.parametrize("provider", [None, *PROVIDERS])
def test_prints_each_provider_in_each_format(provider: str | None, output_format: str) -> None:
    args = ["--format", output_format] + (["--provider", provider] if provider else [])
    assert printed(schema_command(*args)) == BUILD[output_format](provider, None)


def test_defaults_to_the_json_schema_of_every_provider() -> None:
    document = printed(schema_command())
    assert document == json_schema()
    assert "enreach.QueueStatus" in document["$defs"]
    assert "buzzeasy.WorkItemClosed" in document["$defs"]


def test_writes_one_event_of_any_provider_to_a_file(tmp_path: Path) -> None:
    output = tmp_path / "schemas" / "closed.json"
    output.parent.mkdir()
    result = schema_command("--format", "openapi", "--event", "WorkItemClosed", "-o", str(output))
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    document = orjson.loads(output.read_bytes())
    assert document == openapi("buzzeasy", "WorkItemClosed")
    assert list(document["webhooks"]) == ["WorkItemClosed"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--event", "NoSuchEvent"], "receiver: no provider has an event type 'NoSuchEvent'"),
        (
            ["--provider", "buzzeasy", "--event", "QueueStatus"],
            "receiver: not a documented Buzzeasy event type: 'QueueStatus'",
        ),
        (
            ["--provider", "engage-wfm", "--format", "openapi", "--event", "CallDetails"],
            "receiver: not a documented Engage Voice WFM event type: 'CallDetails'",
        ),
    ],
)
def test_an_event_type_the_providers_lack_is_a_one_line_error(
    args: list[str], message: str
) -> None:
    result = schema_command(*args)
    assert result.returncode == 2
    assert result.stdout == b""
    assert result.stderr.decode() == message + "\n"


def test_an_unknown_provider_is_a_usage_error() -> None:
    result = schema_command("--provider", "genesys")
    assert result.returncode == 2
    assert b"invalid choice: 'genesys'" in result.stderr

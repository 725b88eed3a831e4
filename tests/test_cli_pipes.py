"""Every command that prints stops quietly when its reader leaves (`receiver inbox list | head`)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from receiver.inbox.sqlite import SqliteInbox
from tests.conftest import ROOT
from tests.support.inbox import event, run

EVENTS = 3000  # a listing of 3000 rows is far more than a pipe holds (64 KiB)


@pytest.fixture
def full_inbox(tmp_path: Path) -> Path:
    """An inbox holding EVENTS pending events."""

    async def fill(inbox: SqliteInbox) -> None:
        await asyncio.gather(*(inbox.append(event(f"event-{n:05d}")) for n in range(EVENTS)))

    run(tmp_path, fill)
    return tmp_path / "inbox.db"


@pytest.mark.parametrize("output", [[], ["--json"]], ids=["table", "json"])
def test_a_reader_that_leaves_early_ends_the_command_quietly(
    full_inbox: Path, output: list[str]
) -> None:
    args = ["inbox", "--inbox", str(full_inbox), "list", "--limit", str(EVENTS), *output]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writer = subprocess.Popen(
        [sys.executable, "-m", "receiver", *args],
        cwd=full_inbox.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert writer.stdout is not None and writer.stderr is not None
    head = subprocess.run(
        ["head", "-n", "1"], stdin=writer.stdout, capture_output=True, timeout=60, check=True
    )
    writer.stdout.close()  # head has gone: with this copy closed, the pipe has no reader left
    errors = writer.stderr.read().decode()
    writer.stderr.close()
    assert writer.wait(timeout=60) == 141, errors  # 128 + SIGPIPE, as `yes | head` reports
    assert errors == ""
    assert head.stdout.strip()  # the reader got its line

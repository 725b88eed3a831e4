"""The SQLite inbox's checkpoints: copied into the database file by a thread of their own, off
the writer's path, with the WAL made to start over by the writer so it does not grow.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

import receiver.inbox.sqlite_writer as sqlite_module
from receiver.inbox.sqlite import SqliteInbox
from tests.support.inbox import event, run


async def append_all(inbox: SqliteInbox, first: int, count: int, *, batch: int = 20) -> None:
    """Append events `first`..`first + count - 1`, `batch` at a time, each one new."""
    for start in range(first, first + count, batch):
        stored = await asyncio.gather(
            *(inbox.append(event(f"{n:08d}")) for n in range(start, start + batch))
        )
        assert all(stored)


def test_the_checkpoint_thread_copies_the_wal_into_the_database_while_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 300 events are far fewer pages than SQLite's own automatic checkpoint waits for (1000),
    # so the database file grows before close only if the checkpoint thread copies them.
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_EVERY", 50)
    path = tmp_path / "inbox.db"

    async def body(inbox: SqliteInbox) -> None:
        empty = path.stat().st_size
        await append_all(inbox, 0, 300)
        deadline = time.monotonic() + 10
        while path.stat().st_size <= empty:
            assert time.monotonic() < deadline, "nothing was checkpointed"
            await asyncio.sleep(0.02)

    run(tmp_path, body)
    # Closing ends the checkpoint thread's connection first, so the writer's, the last,
    # copies the rest and removes the WAL.
    assert not Path(f"{path}-wal").exists()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 300


def test_the_writer_makes_the_wal_start_over_so_it_does_not_grow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The checkpoint thread is never asked: only the writer's RESTART bounds the WAL. Without
    # it, 3000 events would leave a WAL of more than 10 MB.
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_EVERY", 10**9)
    monkeypatch.setattr(sqlite_module, "RESTART_EVERY", 100)
    path = tmp_path / "inbox.db"
    largest = 0

    async def body(inbox: SqliteInbox) -> None:
        nonlocal largest
        for first in range(0, 3000, 100):
            await append_all(inbox, first, 100)
            wal = Path(f"{path}-wal").stat().st_size  # noqa: ASYNC240 - a local file
            largest = max(largest, wal)

    run(tmp_path, body)
    assert 0 < largest < 2 * 1024 * 1024


def test_a_reader_holding_the_wal_does_not_hold_up_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A RESTART waits for readers with the busy timeout (2 s) unless told not to: with a
    # reader (say `sqlite3 inbox.db` left open in a transaction) each one would stall writes.
    monkeypatch.setattr(sqlite_module, "RESTART_EVERY", 20)
    path = tmp_path / "inbox.db"

    async def body(inbox: SqliteInbox) -> float:
        reader = sqlite3.connect(path, isolation_level=None)
        try:
            await append_all(inbox, 0, 20)
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM events").fetchone()
            started = time.monotonic()
            await append_all(inbox, 20, 200)
            return time.monotonic() - started
        finally:
            reader.close()

    assert run(tmp_path, body) < 1.5

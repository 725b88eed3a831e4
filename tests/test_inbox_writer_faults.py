"""The inbox writer under faults: whatever one write raises, that write fails alone and the
others of its transaction, and every later one, go on; a writer thread that dies all the same
fails every waiting and later write at once and says why, rather than leave them hanging.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from receiver.exceptions import StorageError
from receiver.inbox.models import NewEvent, State
from receiver.inbox.sqlite import SqliteInbox
from tests.support.inbox import event, run, writer_that_dies

STATES = "SELECT dedup_key, state FROM events JOIN deliveries ON event_id = id"
"""Each event's dedup key and the state of its one delivery."""


def states(path: Path) -> dict[str, State]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(STATES).fetchall()
    return {key: State(state) for key, state in rows}


def raising(error: BaseException) -> Callable[[SqliteInbox], asyncio.Future[Any]]:
    """A write operation that raises `error` inside the writer's transaction."""

    def submit(inbox: SqliteInbox) -> asyncio.Future[Any]:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE deliveries SET attempts = attempts + 1")  # something to roll back
            raise error

        return inbox._require().submit(op)

    return submit


def unbindable(inbox: SqliteInbox) -> asyncio.Future[Any]:
    """A genuine bad value: text SQLite cannot take (a lone surrogate, not UTF-8)."""
    return inbox.append(NewEvent("enreach", "bad", "UserAvailability", "call-\ud800", b"{}"))


FAULTS = {
    "unbindable-value": unbindable,
    "OverflowError": raising(OverflowError("BLOB longer than INT_MAX bytes")),
    "MemoryError": raising(MemoryError()),
    "TypeError": raising(TypeError("bad value")),
    "sqlite3.Error": raising(sqlite3.OperationalError("disk I/O error")),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_write_that_raises_anything_fails_alone_and_the_writer_goes_on(
    tmp_path: Path, fault: str
) -> None:
    path = tmp_path / "inbox.db"

    async def body(inbox: SqliteInbox) -> None:
        # Another process holds the lock a moment: the writer waits with the first write while
        # the next three queue up, so they share one transaction.
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        first = inbox.append(event("first"))
        await asyncio.sleep(0.2)
        before, bad, after = (
            inbox.append(event("a")),
            FAULTS[fault](inbox),
            inbox.append(event("b")),
        )
        blocker.execute("ROLLBACK")
        blocker.close()
        results = await asyncio.wait_for(
            asyncio.gather(first, before, bad, after, return_exceptions=True), 10
        )
        assert [results[0], results[1], results[3]] == [True, True, True], results
        assert isinstance(results[2], StorageError), results
        assert "inbox write failed" in str(results[2])
        # Later writes are stored as ever.
        assert await asyncio.wait_for(inbox.append(event("later")), 10) is True
        assert inbox.failure is None

    run(tmp_path, body)
    assert states(path) == dict.fromkeys(["first", "a", "b", "later"], State.PENDING)


def test_a_writer_that_dies_fails_every_waiting_and_later_write_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "inbox.db"
    dying = writer_that_dies(monkeypatch)
    told: list[BaseException] = []

    async def main() -> None:
        inbox = SqliteInbox(path)
        await inbox.open(on_failure=told.append)
        try:
            assert await inbox.append(event("stored")) is True
            blocker = sqlite3.connect(path, isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")
            first = inbox.append(event("first"))  # waits for the lock in its own batch
            await asyncio.sleep(0.2)
            waiting = [inbox.append(event(f"w{i}")) for i in range(3)]
            dying.set()  # the next batch kills the thread
            blocker.execute("ROLLBACK")
            blocker.close()
            assert await asyncio.wait_for(first, 10) is True
            for future in waiting:
                with pytest.raises(StorageError, match="inbox writer stopped: MemoryError"):
                    await asyncio.wait_for(future, 5)
            assert inbox.failure == "MemoryError: out of memory outside any write"
            assert [type(e) for e in told] == [MemoryError]
            # From now on a write fails before it is even queued.
            later = inbox.append(event("later"))
            assert later.done()
            with pytest.raises(StorageError, match="inbox writer stopped"):
                await later
        finally:
            await asyncio.wait_for(inbox.close(), 5)

    asyncio.run(main())
    assert states(path) == dict.fromkeys(["stored", "first"], State.PENDING)

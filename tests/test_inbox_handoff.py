"""The SQLite inbox's writer: handover to a dispatcher in the same process, lazy writes and
the schema upgrade.

New events go to the dispatcher straight from the commit (already in progress) while it has
room and nothing older is pending; otherwise they are stored pending and pulled in order.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Collection, Sequence
from pathlib import Path

import pytest

import receiver.inbox.sqlite_writer as sqlite_module
from receiver.inbox.models import Completion, State, StoredEvent
from receiver.inbox.sqlite import SqliteInbox, connect, digest
from receiver.inbox.sqlite_schema import SCHEMA_VERSION
from tests.support.inbox import dispatcher as make_dispatcher
from tests.support.inbox import event, run

STATES = "SELECT dedup_key, state FROM events JOIN deliveries ON event_id = id"
"""Each event's dedup key and the state of its one delivery."""


def states(path: Path) -> dict[str, State]:
    with sqlite3.connect(path) as conn:
        return {key: State(state) for key, state in conn.execute(STATES)}


class Recorder:
    """An intake that keeps what it was given."""

    def __init__(self) -> None:
        self.events: list[StoredEvent] = []
        self.pending_signals = 0

    def __call__(self, deliveries: Sequence[StoredEvent], pending: Collection[str]) -> None:
        self.events.extend(deliveries)
        self.pending_signals += bool(pending)


def done_now(delivery: StoredEvent) -> Completion:
    return Completion(delivery.id, delivery.subscriber, time.time(), 0.0)


def test_new_events_are_handed_over_while_there_is_room_then_stored_pending(
    tmp_path: Path,
) -> None:
    async def body(inbox: SqliteInbox) -> None:
        intake = Recorder()
        inbox.attach(intake)
        await inbox.append(event("before"))  # nothing granted yet: pending
        assert intake.events == [] and intake.pending_signals == 1
        assert await inbox.pull("default", 10, room=4) == 1  # the backlog comes first...
        assert [e.dedup_key for e in intake.events] == ["before"]
        # ...then 3 of the room are left for new events.
        assert await asyncio.gather(*(inbox.append(event(f"k{i}")) for i in range(5))) == [True] * 5
        handed = [e.dedup_key for e in intake.events[1:]]
        assert handed == ["k0", "k1", "k2"]
        assert all(e.state is State.IN_PROGRESS and e.id > 0 for e in intake.events)
        assert states(tmp_path / "inbox.db") == {
            "before": State.IN_PROGRESS, "k0": State.IN_PROGRESS, "k1": State.IN_PROGRESS,
            "k2": State.IN_PROGRESS, "k3": State.PENDING, "k4": State.PENDING,
        }  # fmt: skip
        # A duplicate is not handed over, and completing gives the room back only after
        # the backlog has been pulled.
        assert await inbox.append(event("k0")) is False
        await inbox.complete([done_now(intake.events[0])])
        assert await inbox.pull("default", 10, room=10) == 2
        assert [e.dedup_key for e in intake.events[4:]] == ["k3", "k4"]
        await inbox.append(event("after"))
        assert intake.events[-1].dedup_key == "after"
        await inbox.detach()
        await inbox.append(event("detached"))
        assert intake.events[-1].dedup_key == "after"
        assert states(tmp_path / "inbox.db")["detached"] is State.PENDING

    run(tmp_path, body)


def test_a_failed_transaction_hands_nothing_over_twice(tmp_path: Path) -> None:
    async def body(inbox: SqliteInbox) -> None:
        intake = Recorder()
        inbox.attach(intake)
        await inbox.pull("default", 10, room=1000)

        def fail(conn: sqlite3.Connection) -> None:
            raise sqlite3.OperationalError("injected")

        writer = inbox._require()
        # Appends queued around a failing write share its transaction; they are rolled
        # back and retried one by one, and each must reach the intake exactly once.
        futures = []
        for i in range(30):
            futures.append(inbox.append(event(f"k{i}")))
            if i % 10 == 5:
                futures.append(writer.submit(fail))
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert sum(r is True for r in results) == 30
        assert sorted(e.dedup_key for e in intake.events) == sorted(f"k{i}" for i in range(30))
        assert len({e.id for e in intake.events}) == 30

    run(tmp_path, body)


def test_dispatcher_keeps_each_lane_in_arrival_order_when_its_room_runs_out(
    tmp_path: Path,
) -> None:
    handled: list[StoredEvent] = []

    class Slow:
        async def handle(self, stored: StoredEvent) -> None:
            handled.append(stored)
            await asyncio.sleep(0.001)

        async def failed(self, stored: StoredEvent, error: BaseException, *, final: bool) -> None:
            raise AssertionError(f"unexpected failure: {error}")

    async def body(inbox: SqliteInbox) -> None:
        slow = Slow()
        # Room for 3 events: most arrive while it is full and are pulled later.
        dispatcher = make_dispatcher(inbox, slow, workers=4, capacity=3, poll_interval=0.05)
        await dispatcher.start()
        for burst in range(6):
            await asyncio.gather(
                *(inbox.append(event(f"{burst}-{i}", order=f"call-{i % 3}")) for i in range(20))
            )
            await asyncio.sleep(0.005)
        for _ in range(500):
            if dispatcher.stats.handled >= 120:
                break
            await asyncio.sleep(0.01)
        await dispatcher.stop(1.0)
        assert dispatcher.stats.handled == 120
        assert len({e.id for e in handled}) == 120
        for lane in ("call-0", "call-1", "call-2"):
            ids = [e.id for e in handled if e.order_key == lane]
            assert ids == sorted(ids), f"{lane} handled out of arrival order"
        assert set(states(tmp_path / "inbox.db").values()) == {State.DONE}

    run(tmp_path, body)


def test_stop_gives_back_everything_handed_over(tmp_path: Path) -> None:
    class Stuck:
        async def handle(self, stored: StoredEvent) -> None:
            await asyncio.Event().wait()

        async def failed(self, stored: StoredEvent, error: BaseException, *, final: bool) -> None:
            pass

    async def body(inbox: SqliteInbox) -> None:
        dispatcher = make_dispatcher(inbox, Stuck(), workers=2)
        await dispatcher.start()
        await asyncio.sleep(0.05)  # the feeder's first pull grants room
        await asyncio.gather(*(inbox.append(event(f"k{i}", order=f"c{i % 2}")) for i in range(10)))
        await asyncio.sleep(0.05)
        await dispatcher.stop(0.1)
        assert set(states(tmp_path / "inbox.db").values()) == {State.PENDING}
        assert dispatcher.stats.released == 10

    run(tmp_path, body)


def test_handlers_that_wait_run_workers_at_a_time_across_calls(tmp_path: Path) -> None:
    """A worker whose handler returns at once takes the next ready call itself; one whose
    handler waits hands the rest to the next worker, so `workers` handlers wait at a time."""
    running = 0
    most = 0
    release = asyncio.Event()

    class Waiting:
        async def handle(self, stored: StoredEvent) -> None:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await release.wait()
            running -= 1

        async def failed(self, stored: StoredEvent, error: BaseException, *, final: bool) -> None:
            raise AssertionError(f"unexpected failure: {error}")

    async def body(inbox: SqliteInbox) -> None:
        dispatcher = make_dispatcher(inbox, Waiting(), workers=4, poll_interval=0.05)
        await dispatcher.start()
        await asyncio.gather(*(inbox.append(event(f"k{i}", order=f"call-{i}")) for i in range(10)))
        for _ in range(200):
            if most == 4:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert (running, most) == (4, 4)
        release.set()
        for _ in range(200):
            if dispatcher.stats.handled == 10:
                break
            await asyncio.sleep(0.01)
        await dispatcher.stop(1.0)
        assert dispatcher.stats.handled == 10
        assert most == 4

    run(tmp_path, body)


V1_SCHEMA = """
CREATE TABLE events (
    id INTEGER PRIMARY KEY, source TEXT NOT NULL, dedup_key TEXT NOT NULL,
    event_type TEXT NOT NULL, order_key TEXT, payload BLOB NOT NULL,
    state INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
    received_at REAL NOT NULL, next_attempt_at REAL NOT NULL, last_error TEXT,
    finished_at REAL, UNIQUE (source, dedup_key)
);
CREATE INDEX events_open ON events (state, id) WHERE state < 2;
CREATE INDEX events_dead ON events (id) WHERE state = 3;
INSERT INTO events (source, dedup_key, event_type, payload, state, received_at,
    next_attempt_at) VALUES ('enreach', 'old-done', 'T', x'7b7d', 2, 1.0, 1.0),
    ('enreach', 'old-pending', 'T', x'7b7d', 0, 2.0, 2.0);
"""


def test_an_inbox_from_the_previous_schema_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    with sqlite3.connect(path) as old:
        old.executescript(V1_SCHEMA)

    async def body(inbox: SqliteInbox) -> None:
        assert await inbox.append(event("old-done")) is False  # still a duplicate
        assert await inbox.append(event("new")) is True
        pending = await inbox.claim("default", 10)
        assert [e.dedup_key for e in pending] == ["old-pending", "new"]

    run(tmp_path, body)
    conn = connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION  # the newest
    rows = conn.execute("SELECT dedup_key, digest FROM events ORDER BY id").fetchall()
    assert [(key, bytes(d)) for key, d in rows] == [
        (key, digest("enreach", key)) for key in ("old-done", "old-pending", "new")
    ]
    conn.close()


V2_SCHEMA = """
CREATE TABLE events (
    id INTEGER PRIMARY KEY, source TEXT NOT NULL, dedup_key TEXT NOT NULL,
    digest BLOB NOT NULL UNIQUE, event_type TEXT NOT NULL, order_key TEXT,
    payload BLOB NOT NULL, state INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0, received_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL, last_error TEXT, finished_at REAL
);
CREATE INDEX events_open ON events (state, id) WHERE state < 2;
CREATE INDEX events_dead ON events (id) WHERE state = 3;
PRAGMA user_version = 2;
"""


def test_an_inbox_of_one_state_per_event_becomes_deliveries_to_the_default_subscriber(
    tmp_path: Path,
) -> None:
    path = tmp_path / "inbox.db"
    rows = [  # key, state, attempts, last error
        ("done", 2, 0, None), ("claimed", 1, 2, "Timeout"), ("dead", 3, 8, "ValueError: x"),
        ("pending", 0, 0, None),
    ]  # fmt: skip
    with sqlite3.connect(path) as old:
        old.executescript(V2_SCHEMA)
        old.executemany(
            "INSERT INTO events (source, dedup_key, digest, event_type, payload, state, attempts,"
            " received_at, next_attempt_at, last_error) VALUES ('enreach', ?, ?, 'T', x'7b7d',"
            " ?, ?, 1.0, 1.0, ?)",
            [(key, digest("enreach", key), state, tries, err) for key, state, tries, err in rows],
        )

    async def body(inbox: SqliteInbox) -> None:
        assert await inbox.append(event("dead")) is False  # still a duplicate
        pending = await inbox.claim("default", 10)
        # What a crashed process had claimed is pending again.
        assert [(e.dedup_key, e.attempts) for e in pending] == [("claimed", 2), ("pending", 0)]

    run(tmp_path, body)
    with sqlite3.connect(path) as conn:
        kept = conn.execute(
            "SELECT dedup_key, subscriber, state, attempts, last_error FROM events"
            " JOIN deliveries ON event_id = id ORDER BY id"
        ).fetchall()
    assert kept == [
        ("done", "default", 2, 0, None), ("claimed", "default", 1, 2, "Timeout"),
        ("dead", "default", 3, 8, "ValueError: x"), ("pending", "default", 1, 0, None),
    ]  # fmt: skip


def test_a_done_mark_alone_is_committed_within_the_lazy_wait(tmp_path: Path) -> None:
    async def body(inbox: SqliteInbox) -> None:
        await inbox.append(event("k"))
        (stored,) = await inbox.claim("default", 1)
        started = time.monotonic()
        await inbox.complete([done_now(stored)])
        waited = time.monotonic() - started
        assert sqlite_module.LAZY_WAIT * 0.5 <= waited < 1.0
        assert states(tmp_path / "inbox.db") == {"k": State.DONE}

    run(tmp_path, body)


def test_a_done_mark_shares_the_commit_of_the_next_urgent_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "LAZY_WAIT", 30.0)

    async def body(inbox: SqliteInbox) -> None:
        await inbox.append(event("a"))
        (stored,) = await inbox.claim("default", 1)
        done = inbox.complete([done_now(stored)])
        await asyncio.sleep(0.1)
        assert not done.done()  # nobody waits on it: no commit of its own
        await asyncio.wait_for(inbox.append(event("b")), 5)
        await asyncio.wait_for(done, 1)  # committed with "b"
        assert states(tmp_path / "inbox.db") == {"a": State.DONE, "b": State.PENDING}

    run(tmp_path, body)

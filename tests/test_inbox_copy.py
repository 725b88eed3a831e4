"""`receiver inbox copy`: a single-machine SQLite inbox moved to PostgreSQL, then served there.

The SQLite inbox is filled with the real inbox API (deliveries in every state, failed attempts,
an event without subscribers, a done event past retention); the copy runs as an operator runs
it, in its own process; then a PostgreSQL inbox recognises the copied dedup keys and a
dispatcher on it delivers what was pending on SQLite.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from receiver.dispatcher import Dispatcher, DispatchPolicy, Subscription
from receiver.exceptions import ConfigError
from receiver.inbox import copy as inbox_copy
from receiver.inbox.base import InboxAdmin, InboxOptions, open_admin, open_inbox
from receiver.inbox.copy import CopyReport, copy_inbox
from receiver.inbox.models import (
    Completion,
    DeliveryRecord,
    EventFilter,
    EventRecord,
    NewEvent,
    State,
    StoredEvent,
)
from receiver.inbox.postgres_admin import PostgresAdmin
from receiver.inbox.sqlite_admin import SqliteAdmin
from tests.support import postgres
from tests.test_postgres_admin import build, payload, receiver, without_password

postgres_server = postgres.postgres_server
postgres_database = postgres.postgres_database

FAST = DispatchPolicy(backoff_base=0.01, backoff_max=0.05, poll_interval=0.05, max_attempts=5)
COPIED = ["e1", "e2", "e3", "e4", "e5", "e6", "quiet"]
"""What the copy takes from `sqlite_inbox`: all but `old` (done, past retention)."""


async def add_more(path: Path) -> None:
    """Beside `build`'s four events: a call of two events pending for both subscribers, an
    event with no subscriber (kept for its dedup key), and a done one made old by `sqlite_inbox`."""
    inbox = open_inbox(str(path))
    await inbox.open()
    try:
        for key, order_key, subscribers in (
            ("old", None, ["crm"]),
            ("e5", "call-2", ["crm", "sms"]),
            ("e6", "call-2", ["crm", "sms"]),
            ("quiet", None, []),
        ):
            event = NewEvent("enreach", key, "QueueCallInArrived", order_key, payload(key))
            assert await inbox.append(event, subscribers)
        claimed = {d.dedup_key: d for d in await inbox.claim("crm", 10)}
        await inbox.complete([Completion(claimed["old"].id, "crm", time.time(), 0.02)])
        await inbox.release([claimed["e5"].key, claimed["e6"].key])
    finally:
        await inbox.close()


@pytest.fixture
def sqlite_inbox(tmp_path: Path) -> Path:
    path = tmp_path / "inbox.db"
    asyncio.run(build(str(path)))
    asyncio.run(add_more(path))
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE events SET received_at = received_at - 30 * 86400 WHERE dedup_key = 'old'"
        )
    conn.close()
    return path


@pytest.fixture
def pg_url(
    postgres_server: postgres.PostgresServer,
    postgres_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """A fresh database (no inbox in it yet), its URL without the password (in PGPASSWORD)."""
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    return without_password(postgres_database, postgres_server)


def records(admin: InboxAdmin) -> dict[str, EventRecord]:
    """Every listed event, by dedup key."""
    ids = {d.id for d in admin.list(EventFilter(), limit=1000)}
    found: dict[str, EventRecord] = {}
    for event_id in ids:
        record = admin.get(str(event_id))
        assert record is not None
        found[record.dedup_key] = record
    return found


def as_copied(d: DeliveryRecord) -> DeliveryRecord:
    """What the copy makes of `d`: in progress becomes pending."""
    if d.state != State.IN_PROGRESS:
        return d
    return DeliveryRecord(
        d.subscriber, State.PENDING, d.attempts, d.next_attempt_at, d.finished_at,
        d.last_error, d.duration,
    )  # fmt: skip


def assert_same_events(source: dict[str, EventRecord], copied: dict[str, EventRecord]) -> None:
    """Every event of `source` is in `copied` as it was, but for its id."""
    assert set(copied) == set(source)
    for key, was in source.items():
        now = copied[key]
        assert (now.source, now.dedup_key, now.event_type, now.order_key, now.payload) == (
            was.source, was.dedup_key, was.event_type, was.order_key, was.payload,
        ), key  # fmt: skip
        assert now.received_at == was.received_at, key
        assert now.deliveries == tuple(as_copied(d) for d in was.deliveries), key
        assert now.history == was.history, key


def copy_cli(source: str, destination: str, server: postgres.PostgresServer, *args: str) -> Any:
    return receiver("inbox", "copy", source, destination, *args, server=server)


class Recording:
    """A subscriber's handler that keeps the dedup keys it handled, in order."""

    def __init__(self) -> None:
        self.handled: list[str] = []

    async def handle(self, event: StoredEvent) -> None:
        self.handled.append(event.dedup_key)

    async def failed(self, event: StoredEvent, error: BaseException, *, final: bool) -> None:
        raise AssertionError(f"{event.dedup_key} failed: {error}")


async def until(condition: Callable[[], bool], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_a_sqlite_inbox_copied_to_postgresql_is_served_there(
    sqlite_inbox: Path, pg_url: str, postgres_server: postgres.PostgresServer
) -> None:
    source_admin = SqliteAdmin(sqlite_inbox)
    source = records(source_admin)
    source_admin.close()
    assert source["e3"].deliveries[0].state == State.IN_PROGRESS

    result = copy_cli(f"sqlite:///{sqlite_inbox}", pg_url, postgres_server, "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(
        f"copied 7 event(s) from {sqlite_inbox} into {pg_url} in "
    )
    assert result.stdout.splitlines()[1:] == [
        "  deliveries: 6 pending, 3 done, 2 dead; failed attempts in their history: 4",
        "  skipped 0 event(s) the destination had already",
    ]

    admin = PostgresAdmin(pg_url)
    try:
        copied = records(admin)
        del source["old"]  # done and past retention: left out
        assert_same_events(source, copied)
        # Arrival order is kept in the ids: each call's events are handed out in order.
        by_id = sorted(copied.values(), key=lambda r: r.id)
        assert [r.dedup_key for r in by_id] == ["e1", "e2", "e3", "e4", "e5", "e6"]
        assert admin.stats().events == 7  # `quiet` too: no delivery, kept for its dedup key
    finally:
        admin.close()

    again = copy_cli(str(sqlite_inbox), pg_url, postgres_server, "--yes", "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["events"], report["duplicates"]) == (0, 7)

    crm, sms = Recording(), Recording()

    async def serve() -> dict[str, bool]:
        inbox = open_inbox(pg_url, InboxOptions())
        await inbox.open()
        try:
            fresh = {
                key: await inbox.append(NewEvent("enreach", key, "X", None, b"{}"), [])
                for key in ("e4", "quiet", "old")
            }
            dispatch = Dispatcher(
                inbox, [Subscription("crm", default=crm), Subscription("sms", default=sms)],
                policy=FAST,
            )  # fmt: skip
            await dispatch.start()
            try:
                await until(lambda: len(crm.handled) >= 2 and len(sms.handled) >= 3)
                await asyncio.sleep(0.3)  # nothing more comes
            finally:
                await dispatch.stop(5.0)
            return fresh
        finally:
            await inbox.close()

    fresh = asyncio.run(serve())
    # The dedup keys of a done event and of one without subscribers came along; `old`'s did
    # not (SQLite would have forgotten it at its next purge as well).
    assert fresh == {"e4": False, "quiet": False, "old": True}
    assert sms.handled == ["e2", "e5", "e6"]
    # e3 was in progress, waiting for a retry hours away: pending now, still waiting for it.
    assert crm.handled == ["e5", "e6"]
    admin = PostgresAdmin(pg_url)
    try:
        e3 = records(admin)["e3"].deliveries[0]
        assert (e3.state, e3.attempts) == (State.PENDING, 1)
        assert e3.next_attempt_at == source["e3"].deliveries[0].next_attempt_at
        stats = admin.stats()
        assert stats.by_state == {
            "pending": 1, "in_progress": 0, "done": 8, "dead": 2, "discarded": 0,
        }  # fmt: skip
    finally:
        admin.close()


def test_a_copy_from_postgresql_to_sqlite_keeps_everything_too(
    sqlite_inbox: Path, pg_url: str, tmp_path: Path
) -> None:
    first = copy_inbox(str(sqlite_inbox), pg_url)
    assert (first.events, first.duplicates) == (7, 0)
    back = tmp_path / "back.db"
    second = copy_inbox(pg_url, f"sqlite:///{back}")
    assert (second.events, second.duplicates, second.attempts) == (7, 0, 4)
    assert second.deliveries == {
        "pending": 6, "in_progress": 0, "done": 3, "dead": 2, "discarded": 0,
    }  # fmt: skip
    assert (back.stat().st_mode & 0o777) == 0o600  # private, as a receiver makes its inbox
    pg, sqlite = PostgresAdmin(pg_url), SqliteAdmin(back)
    try:
        assert_same_events(records(pg), records(sqlite))
        assert sqlite.stats().events == 7
    finally:
        pg.close()
        sqlite.close()


def test_done_events_past_retention_are_left_out_but_open_ones_never(
    sqlite_inbox: Path, pg_url: str
) -> None:
    later = time.time() + 8 * 86400  # past retention for everything
    report = copy_inbox(str(sqlite_inbox), pg_url, now=later)
    # e1 (a dead letter), e2 (dead, pending), e3, e5, e6 (pending): never purged, so copied.
    assert report.events == 5
    admin = PostgresAdmin(pg_url)
    try:
        assert set(records(admin)) == {"e1", "e2", "e3", "e5", "e6"}
    finally:
        admin.close()


def test_progress_is_reported_every_so_many_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox_copy, "PROGRESS_EVERY", 4)
    monkeypatch.setattr(inbox_copy, "BATCH_EVENTS", 3)
    source = f"memory://copy-progress-{time.time_ns()}"

    async def fill() -> None:
        inbox = open_inbox(source)
        await inbox.open()
        for i in range(10):
            await inbox.append(NewEvent("s", f"k{i}", "T", None, b"{}"), ["a"])
        await inbox.close()

    asyncio.run(fill())
    seen: list[tuple[int, int]] = []

    def progress(report: CopyReport) -> None:
        seen.append((report.events, report.duplicates))

    report = copy_inbox(source, str(tmp_path / "copy.db"), progress=progress)
    assert seen == [(6, 0), (9, 0)]  # after the batch that passed 4, then 8
    assert (report.events, report.deliveries["pending"]) == (10, 10)
    admin = open_admin(str(tmp_path / "copy.db"))
    try:
        assert [d.dedup_key for d in admin.list(EventFilter())] == [
            f"k{i}" for i in range(9, -1, -1)
        ]
    finally:
        admin.close()


def test_copy_refuses_the_same_inbox(
    sqlite_inbox: Path, pg_url: str, postgres_server: postgres.PostgresServer
) -> None:
    same = copy_cli(str(sqlite_inbox), f"sqlite:///{sqlite_inbox}", postgres_server, "--yes")
    assert same.returncode == 2
    assert same.stderr == (
        f"receiver: inbox copy: {sqlite_inbox} and {sqlite_inbox} are the same inbox\n"
    )
    copy_inbox(str(sqlite_inbox), pg_url)
    alias = pg_url.replace("postgresql://", "postgres://")
    with pytest.raises(ConfigError, match="are the same inbox"):
        copy_inbox(pg_url, alias)


def test_copy_asks_unless_told_yes_and_needs_both_inboxes(
    sqlite_inbox: Path, pg_url: str, postgres_server: postgres.PostgresServer
) -> None:
    result = copy_cli(str(sqlite_inbox), pg_url, postgres_server)  # stdin is not a terminal
    assert result.returncode == 2
    assert "add --yes to copy without being asked" in result.stderr
    inbox = copy_cli(str(sqlite_inbox), pg_url, postgres_server, "--yes", "--inbox", pg_url)
    assert inbox.returncode == 2
    assert "give the inboxes as SOURCE and DESTINATION, not --inbox" in inbox.stderr
    missing = copy_cli(str(sqlite_inbox.with_name("nothing.db")), pg_url, postgres_server, "--yes")
    assert missing.returncode == 2
    assert missing.stderr == f"receiver: no inbox at {sqlite_inbox.with_name('nothing.db')}\n"

"""Inboxes written before request headers were stored: a SQLite file of schema 3 is upgraded
in place to 4, a PostgreSQL inbox of schema 1 migrated to 2, each keeping every event,
delivery and attempt, and then answering the new queries (headers, phone, counts, recent
attempts) about old and new events alike; `receiver inbox copy` carries headers between
backends."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from receiver.exceptions import ConfigError
from receiver.inbox.base import InboxAdmin, open_admin, open_inbox
from receiver.inbox.copy import copy_inbox, migrate_inbox
from receiver.inbox.models import EventFilter, EventRecord, NewEvent, State
from receiver.inbox.postgres_schema import MIGRATIONS
from receiver.inbox.rows import digest
from receiver.inbox.sqlite_schema import SCHEMA_VERSION
from tests.support import postgres
from tests.test_postgres_admin import without_password

postgres_server = postgres.postgres_server
postgres_database = postgres.postgres_database

ROOT = Path(__file__).resolve().parents[1]
NUMBER = "+358 40 123 4567"

V3_SCHEMA = """
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    digest BLOB NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    order_key TEXT,
    payload BLOB NOT NULL,
    received_at REAL NOT NULL
);
CREATE TABLE deliveries (
    event_id INTEGER NOT NULL,
    subscriber TEXT NOT NULL,
    state INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    owner TEXT,
    last_error TEXT,
    finished_at REAL,
    duration REAL,
    PRIMARY KEY (event_id, subscriber)
) WITHOUT ROWID;
CREATE INDEX deliveries_open ON deliveries (subscriber, event_id) WHERE state < 2;
CREATE INDEX deliveries_dead ON deliveries (event_id) WHERE state = 3;
CREATE TABLE attempts (
    event_id INTEGER NOT NULL,
    subscriber TEXT NOT NULL,
    number INTEGER NOT NULL,
    started_at REAL NOT NULL,
    duration REAL NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT
);
CREATE INDEX attempts_event ON attempts (event_id);
CREATE TABLE owners (
    owner TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
PRAGMA user_version = 3;
"""
"""The SQLite inbox's schema 3, as the previous version wrote it."""

OLD_EVENTS = [  # key, type, payload, subscriber, state, attempts, finished at, duration
    ("done", "CallEnded", {"CallerNumber": NUMBER}, "crm", 2, 0, 1000.5, 0.5),
    ("dead", "CallEnded", {"Other": "+358401234568"}, "crm", 3, 2, 1003.0, None),
    ("pending", "AgentState", {"x": 1}, "sms", 0, 0, None, None),
]
"""What the old inbox holds: three events with one delivery each, the dead one with two
failed attempts (ending at 1001 and 1003)."""


def old_rows(conn: Any, placeholder: str = "?") -> None:
    """Write `OLD_EVENTS` with `conn` (sqlite3, or psycopg with `%s`), as the previous
    version stored them: no headers."""
    mark = placeholder
    tables = ("events", "deliveries", "attempts")
    names = {t: t if mark == "?" else f"receiver_{t}" for t in tables}
    execute = conn.execute
    for n, (key, event_type, body, subscriber, state, tries, finished, took) in enumerate(
        OLD_EVENTS, start=1
    ):
        values = ("enreach", key, digest("enreach", key), event_type, orjson.dumps(body), 900.0)
        execute(
            f"INSERT INTO {names['events']} (source, dedup_key, digest, event_type, payload,"  # noqa: S608 - test constants
            f" received_at) VALUES ({', '.join([mark] * 6)})",
            values,
        )
        execute(
            f"INSERT INTO {names['deliveries']} (event_id, subscriber, state, attempts,"  # noqa: S608 - test constants
            f" next_attempt_at, finished_at, duration) VALUES ({', '.join([mark] * 7)})",
            (n, subscriber, state, tries, 900.0, finished, took),
        )
        for number in range(1, tries + 1):
            outcome = "dead" if number == tries else "retry"
            execute(
                f"INSERT INTO {names['attempts']} (event_id, subscriber, number, started_at,"  # noqa: S608 - test constants
                f" duration, outcome, error) VALUES ({', '.join([mark] * 7)})",
                (n, subscriber, number, 999.0 + 2 * number, 0.0, outcome, f"Error {number}"),
            )


def assert_answers_about_old_and_new(admin: InboxAdmin) -> None:
    """The old events are all there, without headers, and every new query covers them."""
    listed = {d.dedup_key: d for d in admin.list(EventFilter(), limit=100)}
    assert {key: d.state.label for key, d in listed.items()} == {
        "done": "done", "dead": "dead", "pending": "pending", "new": "pending",
    }  # fmt: skip
    old = admin.get(str(listed["dead"].id))
    assert old is not None and old.headers == ()
    assert [(a.number, a.outcome, a.error) for a in old.history] == [
        (1, "retry", "Error 1"),
        (2, "dead", "Error 2"),
    ]
    new = admin.get(str(listed["new"].id))
    assert new is not None and new.headers == (("user-agent", "test"),)
    found = admin.list(EventFilter(phone="+358401234567"))
    assert sorted(d.dedup_key for d in found) == ["done", "new"]
    assert admin.counts(EventFilter(event_type="CallEnded")) == {
        ("CallEnded", "done"): 1,
        ("CallEnded", "dead"): 1,
        ("CallEnded", "pending"): 1,
    }
    recent = admin.recent_attempts(1000.0, EventFilter())
    assert [(d.dedup_key, a.number, a.outcome) for d, a in recent] == [
        ("done", 1, "done"),
        ("dead", 1, "retry"),
        ("dead", 2, "dead"),
    ]


NEW = NewEvent(
    "enreach", "new", "CallEnded", None, orjson.dumps({"n": NUMBER}), b'[["user-agent","test"]]'
)


async def append(url: str, event: NewEvent) -> None:
    """Store `event` for subscriber `crm` in the inbox at `url`."""
    inbox = open_inbox(url)
    await inbox.open()
    try:
        assert await inbox.append(event, ["crm"]) is True
    finally:
        await inbox.close()


async def append_new(url: str) -> None:
    """Open the inbox as a receiver does (upgrading it) and store `NEW`; the old keys are
    still duplicates."""
    inbox = open_inbox(url)
    await inbox.open()
    try:
        assert await inbox.append(NEW, ["crm"]) is True
        old = NewEvent("enreach", "done", "CallEnded", None, b"{}")
        assert await inbox.append(old, ["crm"]) is False
    finally:
        await inbox.close()


# -- SQLite ---------------------------------------------------------------------------------


def test_a_schema_3_file_is_upgraded_in_place_and_keeps_its_events(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "inbox.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(V3_SCHEMA)
        old_rows(conn)
    conn.close()
    with caplog.at_level(logging.WARNING, logger="receiver.inbox"):
        asyncio.run(append_new(str(path)))
    assert f"upgrading inbox {path} (3 events) to schema {SCHEMA_VERSION}" in caplog.text
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        indexes = {
            row[1] for row in conn.execute("SELECT * FROM sqlite_master WHERE type = 'index'")
        }
        ids = [row[0] for row in conn.execute("SELECT id FROM events ORDER BY id")]
    conn.close()
    assert {"attempts_ended", "deliveries_done"} <= indexes
    assert ids == [1, 2, 3, 4]  # the old events keep their ids
    admin = open_admin(str(path))
    try:
        assert_answers_about_old_and_new(admin)
    finally:
        admin.close()


def test_receiver_inbox_migrate_upgrades_a_schema_3_file(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(V3_SCHEMA)
        old_rows(conn)
    conn.close()
    migrated = subprocess.run(
        [sys.executable, "-m", "receiver", "inbox", "migrate", "--inbox", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert (migrated.returncode, migrated.stdout) == (0, f"inbox {path}: schema version 3 → 4\n")
    admin = open_admin(str(path))
    try:
        assert len(admin.list(EventFilter())) == 3
        assert admin.counts(EventFilter(states=(State.DEAD,))) == {("CallEnded", "dead"): 1}
    finally:
        admin.close()


# -- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture
def pg_url(
    postgres_server: postgres.PostgresServer,
    postgres_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """A fresh database, its URL without the password (in PGPASSWORD)."""
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    return without_password(postgres_database, postgres_server)


def schema_1(url: str) -> None:
    """The inbox at `url` as the previous version left it: schema 1 holding `OLD_EVENTS`."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("CREATE TABLE receiver_schema (version integer NOT NULL)")
            for statement in MIGRATIONS[0]:
                conn.execute(statement)
            conn.execute("INSERT INTO receiver_schema (version) VALUES (1)")
        old_rows(conn, "%s")


def test_a_schema_1_postgres_inbox_is_migrated_and_keeps_its_events(pg_url: str) -> None:
    schema_1(pg_url)
    with pytest.raises(ConfigError, match=r"has schema 1, this receiver needs 2: run `receiver"):
        open_admin(pg_url)
    asyncio.run(append_new(pg_url))  # migrates on open, as a receiver does
    assert migrate_inbox(pg_url) == (2, 2)
    import psycopg

    with psycopg.connect(pg_url) as conn:
        indexes = {row[0] for row in conn.execute("SELECT indexname FROM pg_indexes")}
    assert {"receiver_attempts_ended", "receiver_deliveries_done"} <= indexes
    admin = open_admin(pg_url)
    try:
        assert_answers_about_old_and_new(admin)
    finally:
        admin.close()


def test_receiver_inbox_migrate_takes_a_postgres_inbox_from_1_to_2(pg_url: str) -> None:
    schema_1(pg_url)
    assert migrate_inbox(pg_url) == (1, 2)
    assert migrate_inbox(pg_url) == (2, 2)
    asyncio.run(append_new(pg_url))
    admin = open_admin(pg_url)
    try:
        assert_answers_about_old_and_new(admin)
    finally:
        admin.close()


# -- copy -----------------------------------------------------------------------------------

HEADERS = {
    "a": (("host", "r.example"), ("user-agent", "Enreach/1"), ("x-trace", "1"), ("x-trace", "2")),
    "b": (),
    "c": (("x-é", "ü"),),
}


async def fill(url: str) -> None:
    inbox = open_inbox(url)
    await inbox.open()
    try:
        for key, headers in HEADERS.items():
            blob = orjson.dumps(headers) if headers else None
            event = NewEvent("enreach", key, "CallEnded", None, b'{"k": "%s"}' % key.encode(), blob)
            assert await inbox.append(event, ["crm"]) is True
    finally:
        await inbox.close()


def headers_of(url: str) -> dict[str, tuple[tuple[str, str], ...]]:
    admin = open_admin(url)
    try:
        records: list[EventRecord | None] = [
            admin.get(str(d.id)) for d in admin.list(EventFilter(), limit=100)
        ]
    finally:
        admin.close()
    return {r.dedup_key: r.headers for r in records if r is not None}


def test_copy_carries_headers_from_sqlite_to_postgres_and_back(tmp_path: Path, pg_url: str) -> None:
    first, back = str(tmp_path / "first.db"), str(tmp_path / "back.db")
    asyncio.run(fill(first))
    assert copy_inbox(first, pg_url).events == 3
    assert headers_of(pg_url) == HEADERS
    assert copy_inbox(pg_url, back).events == 3
    assert headers_of(back) == HEADERS


def test_copy_carries_headers_from_memory_to_sqlite(tmp_path: Path) -> None:
    source, destination = "memory://headers-copy", str(tmp_path / "copy.db")
    asyncio.run(fill(source))
    assert copy_inbox(source, destination).events == 3
    assert headers_of(destination) == HEADERS


def test_the_phone_filter_works_where_postgres_plans_parallel_scans(pg_url: str) -> None:
    """The filter's function catches errors (subtransactions), which a parallel worker cannot:
    it must keep PostgreSQL from planning one, even where parallel scans cost nothing."""
    import psycopg

    asyncio.run(fill(pg_url))
    asyncio.run(append(pg_url, NEW))  # a payload that holds the number: it is parsed
    with psycopg.connect(pg_url, autocommit=True) as conn:
        name = conn.execute("SELECT current_database()").fetchone()
        assert name is not None
        for setting in (
            "parallel_setup_cost = 0",
            "parallel_tuple_cost = 0",
            "min_parallel_table_scan_size = 0",
            "max_parallel_workers_per_gather = 2",
        ):
            conn.execute(f'ALTER DATABASE "{name[0]}" SET {setting}')
    admin = open_admin(pg_url)
    try:
        plan = admin._conn.execute(  # type: ignore[attr-defined]
            "EXPLAIN SELECT count(*) FROM receiver_events"
        ).fetchall()
        assert "Parallel" in str(plan)  # the settings took: scans are planned parallel
        assert [d.dedup_key for d in admin.list(EventFilter(phone=NUMBER))] == ["new"]
        assert admin.counts(EventFilter(phone=NUMBER)) == {("CallEnded", "pending"): 1}
    finally:
        admin.close()

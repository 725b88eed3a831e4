"""The PostgreSQL inbox's admin side and `receiver inbox` on it, against a real server.

The inbox is filled with the real serving API (appends to two subscribers, claims, a success,
retries, dead letters, a release), then looked at and fixed as an operator would: through
`PostgresAdmin`, and through `receiver inbox` in a separate process with the password in
PGPASSWORD only.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from receiver.exceptions import ConfigError, StorageError
from receiver.inbox.base import InboxOptions, open_admin, open_inbox
from receiver.inbox.models import (
    Attempt,
    Completion,
    EventFilter,
    EventRecord,
    NewEvent,
    State,
)
from receiver.inbox.postgres_admin import PostgresAdmin
from tests.conftest import ROOT
from tests.support import postgres

postgres_server = postgres.postgres_server
postgres_database = postgres.postgres_database

TRACEBACK = "ValueError: CRM refused\nTraceback (most recent call last):\n  File 'bridge.py'"
EVENTS = {  # dedup key: (source, event type, order key, subscribers)
    "e1": ("enreach", "QueueCallInArrived", "call-1", ["crm", "sms"]),
    "e2": ("enreach", "QueueCallInUserConnected", "call-1", ["crm", "sms"]),
    "e3": ("buzzeasy", "WorkItemClosed", "w-9", ["crm"]),
    "e4": ("enreach", "UserAvailability", None, ["crm", "sms"]),
}
STATES = {  # what `build` leaves: (dedup key, subscriber) -> state
    ("e1", "crm"): "done",
    ("e1", "sms"): "dead",
    ("e2", "crm"): "dead",
    ("e2", "sms"): "pending",
    ("e3", "crm"): "in_progress",
    ("e4", "crm"): "done",
    ("e4", "sms"): "done",
}
BASE = time.time() - 1000
"""When `build`'s attempts started (a fixed past, so histories are predictable)."""


def payload(key: str) -> bytes:
    return json.dumps({"Id": key, "Note": "caller +358"}).encode()


async def build(url: str) -> tuple[dict[str, str], float]:
    """Fill the inbox at `url` as STATES says; each event's id, and a moment between e2 and
    e3."""
    inbox = open_inbox(url, InboxOptions())
    await inbox.open()
    between = 0.0
    try:
        ids: dict[str, str] = {}
        for key, (source, event_type, order_key, subscribers) in EVENTS.items():
            if key == "e3":
                await asyncio.sleep(0.05)
                between = time.time()
                await asyncio.sleep(0.05)
            event = NewEvent(source, key, event_type, order_key, payload(key))
            assert await inbox.append(event, subscribers)
        crm = {d.dedup_key: d for d in await inbox.claim("crm", 10)}
        sms = {d.dedup_key: d for d in await inbox.claim("sms", 10)}
        ids = {key: str(d.id) for key, d in crm.items()}
        await inbox.retry_later(
            sms["e1"].key, Attempt(1, BASE + 1, 0.25, "retry", "TimeoutError: slow"), BASE
        )
        await inbox.complete([Completion(crm["e1"].id, "crm", BASE + 2, 0.5)])
        await inbox.bury(sms["e1"].key, Attempt(2, BASE + 3, 0.125, "dead", TRACEBACK))
        await inbox.bury(crm["e2"].key, Attempt(1, BASE + 4, 0.01, "dead", "KeyError: 'Id'"))
        await inbox.release([sms["e2"].key])
        await inbox.retry_later(
            crm["e3"].key, Attempt(1, BASE + 5, 0.01, "retry", "OSError: down"), BASE + 9999
        )
        await inbox.complete(
            [
                Completion(crm["e4"].id, "crm", BASE + 6, 0.01),
                Completion(sms["e4"].id, "sms", BASE + 6, 0.01),
            ]
        )
    finally:
        await inbox.close()
    return ids, between


@dataclass(frozen=True)
class Built:
    """A built PostgreSQL inbox: its URL (no password), each event's id, a moment between e2
    and e3, and the server."""

    url: str
    ids: dict[str, str]
    between: float
    server: postgres.PostgresServer

    def admin(self, retention_days: float = 7.0) -> PostgresAdmin:
        return PostgresAdmin(self.url, InboxOptions(retention_days=retention_days))


def without_password(url: str, server: postgres.PostgresServer) -> str:
    return url.replace(f":{server.password}@", "@")


@pytest.fixture
def built(
    postgres_server: postgres.PostgresServer,
    postgres_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Built:
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    url = without_password(postgres_database, postgres_server)
    ids, between = asyncio.run(build(url))
    return Built(url, ids, between, postgres_server)


@pytest.fixture
def admin(built: Built) -> Iterator[PostgresAdmin]:
    admin = built.admin()
    yield admin
    admin.close()


def states(admin: PostgresAdmin) -> dict[tuple[str, str], str]:
    return {(d.dedup_key, d.subscriber): d.state.label for d in admin.list(EventFilter())}


def record(admin: PostgresAdmin, text: str) -> EventRecord:
    found = admin.get(text)
    assert found is not None
    return found


# -- the admin API ---------------------------------------------------------------------------


def test_open_admin_picks_the_postgresql_admin(built: Built) -> None:
    for url in (built.url, built.url.replace("postgresql://", "postgres://")):
        admin = open_admin(url)
        try:
            assert repr(admin).startswith("PostgresAdmin(")  # (inside the sealing wrapper)
            assert admin.stats().events == 4
        finally:
            admin.close()


def test_stats_count_what_the_serving_side_did(admin: PostgresAdmin, built: Built) -> None:
    stats = admin.stats()
    assert stats.location == built.url
    assert built.server.password not in stats.location
    assert stats.events == 4
    assert stats.by_state == {
        "pending": 1, "in_progress": 1, "done": 3, "dead": 2, "discarded": 0,
    }  # fmt: skip
    assert stats.by_subscriber == {
        "crm": {"pending": 0, "in_progress": 1, "done": 2, "dead": 1, "discarded": 0},
        "sms": {"pending": 1, "in_progress": 0, "done": 1, "dead": 1, "discarded": 0},
    }
    assert stats.by_source == {"enreach": 3, "buzzeasy": 1}
    assert set(stats.oldest_open_age) == {"crm", "sms"}  # e3 in progress, e2 pending
    assert 0 <= stats.oldest_open_age["crm"] < 60
    assert stats.size_bytes is not None and stats.size_bytes > 50_000  # tables and indexes


def test_list_shows_every_delivery_newest_first_and_filters(
    admin: PostgresAdmin, built: Built
) -> None:
    assert states(admin) == STATES
    listed = [(d.dedup_key, d.subscriber) for d in admin.list(EventFilter())]
    assert listed == [
        ("e4", "crm"), ("e4", "sms"), ("e3", "crm"), ("e2", "crm"), ("e2", "sms"),
        ("e1", "crm"), ("e1", "sms"),
    ]  # fmt: skip
    assert [(d.dedup_key, d.subscriber) for d in admin.list(EventFilter(), limit=2)] == [
        ("e4", "crm"), ("e4", "sms"),
    ]  # fmt: skip

    def keys(where: EventFilter) -> set[tuple[str, str]]:
        return {(d.dedup_key, d.subscriber) for d in admin.list(where)}

    assert keys(EventFilter(states=(State.DEAD,))) == {("e1", "sms"), ("e2", "crm")}
    assert keys(EventFilter(states=(State.PENDING, State.IN_PROGRESS))) == {
        ("e2", "sms"), ("e3", "crm"),
    }  # fmt: skip
    assert keys(EventFilter(subscriber="sms", states=(State.DONE,))) == {("e4", "sms")}
    assert keys(EventFilter(source="buzzeasy")) == {("e3", "crm")}
    assert keys(EventFilter(event_type="UserAvailability")) == {("e4", "crm"), ("e4", "sms")}
    assert {k for k, _ in keys(EventFilter(order_key="call-1"))} == {"e1", "e2"}
    assert {k for k, _ in keys(EventFilter(until=built.between))} == {"e1", "e2"}
    assert {k for k, _ in keys(EventFilter(since=built.between))} == {"e3", "e4"}
    assert keys(EventFilter(subscriber="nobody")) == set()
    delivery = admin.list(EventFilter(subscriber="sms", states=(State.DEAD,)))[0]
    assert delivery.payload == payload("e1")
    assert delivery.attempts == 2
    assert delivery.last_error == TRACEBACK
    assert delivery.order_key == "call-1"
    assert delivery.finished_at is not None


def test_get_shows_deliveries_and_the_whole_history(admin: PostgresAdmin, built: Built) -> None:
    e1 = record(admin, built.ids["e1"])
    assert (e1.source, e1.dedup_key, e1.event_type, e1.order_key) == (
        "enreach", "e1", "QueueCallInArrived", "call-1",
    )  # fmt: skip
    assert e1.payload == payload("e1")
    assert [(d.subscriber, d.state, d.attempts) for d in e1.deliveries] == [
        ("crm", State.DONE, 0),
        ("sms", State.DEAD, 2),
    ]
    assert e1.deliveries[0].duration == 0.5
    assert e1.deliveries[0].finished_at == pytest.approx(BASE + 2.5)
    # The success is not stored as an attempt; it comes from the done delivery.
    assert [(a.subscriber, a.number, a.outcome, a.error) for a in e1.history] == [
        ("sms", 1, "retry", "TimeoutError: slow"),
        ("crm", 1, "done", None),
        ("sms", 2, "dead", TRACEBACK),
    ]
    assert e1.history[1].started_at == pytest.approx(BASE + 2)
    e3 = record(admin, f"  {built.ids['e3']} ")
    assert [(d.state, d.attempts, d.last_error) for d in e3.deliveries] == [
        (State.IN_PROGRESS, 1, "OSError: down"),
    ]
    assert e3.deliveries[0].next_attempt_at == pytest.approx(BASE + 9999)


@pytest.mark.parametrize(
    "text", ["", "abc", "-1", "0", "1.0", "99999", "1" * 19, "9" * 40, "\u0661", "1; DROP TABLE x"]
)
def test_get_of_an_unknown_or_nonsense_id_is_none(admin: PostgresAdmin, text: str) -> None:
    assert admin.get(text) is None


def test_replay_makes_dead_letters_pending_keeping_their_history(
    admin: PostgresAdmin, built: Built
) -> None:
    before = time.time()
    assert admin.replay(EventFilter(subscriber="sms")) == 1
    assert states(admin)[("e1", "sms")] == "pending"
    e1 = record(admin, built.ids["e1"])
    sms = e1.deliveries[1]
    assert (sms.attempts, sms.finished_at, sms.duration) == (0, None, None)
    assert sms.next_attempt_at >= before
    assert sms.last_error == TRACEBACK  # what it last did, until it is tried again
    assert [a.outcome for a in e1.history if a.subscriber == "sms"] == ["retry", "dead"]
    assert admin.replay(EventFilter(), ids=["999999", "x"]) == 0
    assert admin.replay(EventFilter(), ids=[built.ids["e2"]]) == 1
    assert admin.replay(EventFilter()) == 0  # nothing dead is left
    assert admin.replay(EventFilter(states=(State.DONE,))) == 0  # done needs done_too
    assert admin.replay(EventFilter(source="enreach"), done_too=True) == 3
    e4 = record(admin, built.ids["e4"])
    assert {d.state for d in e4.deliveries} == {State.PENDING}
    assert [a.outcome for a in e4.history] == []  # the successes are gone with their rows


def test_a_replayed_delivery_is_claimed_again(admin: PostgresAdmin, built: Built) -> None:
    assert admin.replay(EventFilter(), ids=[built.ids["e2"]]) == 1

    async def claim() -> list[tuple[str, int]]:
        inbox = open_inbox(built.url)
        await inbox.open()
        try:
            return [(d.dedup_key, d.attempts) for d in await inbox.claim("crm", 10)]
        finally:
            await inbox.close()

    assert asyncio.run(claim()) == [("e2", 0)]


def test_discard_gives_up_on_dead_letters_only(admin: PostgresAdmin, built: Built) -> None:
    assert admin.discard(EventFilter(), ids=[built.ids["e4"], built.ids["e3"]]) == 0
    assert admin.discard(EventFilter(subscriber="crm")) == 1
    assert states(admin)[("e2", "crm")] == "discarded"
    assert admin.discard(EventFilter()) == 1
    assert admin.stats().by_state["discarded"] == 2
    assert admin.replay(EventFilter(), done_too=True) == 3  # discarded stays discarded
    assert admin.stats().by_state["discarded"] == 2


def test_purge_deletes_finished_events_past_retention_only(
    admin: PostgresAdmin, built: Built
) -> None:
    assert admin.purge() == 0
    later = time.time() + 8 * 86400
    assert admin.purge(now=later) == 1  # e4: both done; e1 has a dead letter, e2, e3 open
    assert admin.get(built.ids["e4"]) is None
    assert admin.discard(EventFilter()) == 2
    assert admin.purge(now=later) == 1  # e1: done and discarded
    assert sorted(k for k, _ in states(admin)) == ["e2", "e2", "e3"]
    assert admin.stats().events == 2


def test_admin_takes_a_lost_connection_back(admin: PostgresAdmin, built: Built) -> None:
    built.server.execute(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()",
        built.url.rsplit("/", 1)[1],
    )
    with pytest.raises(StorageError) as raised:  # the loss shows once, as one line
        admin.stats()
    assert str(raised.value).startswith(f"inbox {built.url}: ")
    assert "\n" not in str(raised.value)
    assert admin.stats().events == 4


# -- refusals --------------------------------------------------------------------------------


def test_a_database_without_the_inbox_is_refused_with_what_to_run(
    postgres_server: postgres.PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    name = postgres_server.create_database().rsplit("/", 1)[1]
    try:
        url = postgres_server.url(name, password=False)
        with pytest.raises(StorageError) as raised:
            PostgresAdmin(url)
        assert str(raised.value) == f"no inbox at {url} (run `receiver inbox migrate`)"
    finally:
        postgres_server.drop_database(name)


def test_a_schema_from_a_newer_receiver_is_refused(built: Built) -> None:
    built.server.execute(
        "INSERT INTO receiver_schema (version) VALUES (99)", built.url.rsplit("/", 1)[1]
    )
    with pytest.raises(ConfigError, match=r"schema 99, written by a newer version"):
        built.admin()


def test_a_password_in_the_url_is_refused_without_showing_it(
    postgres_server: postgres.PostgresServer, postgres_database: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        PostgresAdmin(postgres_database)
    assert "PGPASSWORD" in str(raised.value)
    assert postgres_server.password not in str(raised.value)


def test_a_wrong_password_is_one_line_without_it(
    postgres_server: postgres.PostgresServer,
    postgres_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGPASSWORD", "not-the-password")
    url = without_password(postgres_database, postgres_server)
    with pytest.raises(StorageError) as raised:
        PostgresAdmin(url)
    message = str(raised.value)
    assert message.startswith(f"cannot open inbox {url}: ")
    assert "password authentication failed" in message
    assert "\n" not in message and "not-the-password" not in message


# -- `receiver inbox` on PostgreSQL ------------------------------------------------------------


def receiver(
    *args: str, server: postgres.PostgresServer, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m receiver ARGS` with the server's password in PGPASSWORD (and `env`)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RECEIVER_", "PG"))}
    return subprocess.run(
        [sys.executable, "-m", "receiver", *args],
        cwd=ROOT, env={**clean, "PYTHONPATH": str(ROOT), "PGPASSWORD": server.password,
                       **(env or {})},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_cli_lists_shows_and_counts(built: Built) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return receiver("inbox", *args, "--inbox", built.url, server=built.server)

    listed = cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {(d["dedup_key"], d["subscriber"]): d["state"] for d in json.loads(listed.stdout)} == (
        STATES
    )
    dead = cli("dead")
    assert dead.returncode == 0, dead.stderr
    assert "KeyError: 'Id'" in dead.stdout and "ValueError: CRM refused" in dead.stdout
    shown = cli("show", built.ids["e1"], "--json")
    assert shown.returncode == 0, shown.stderr
    event = json.loads(shown.stdout)
    assert event["payload"] == {"Id": "e1", "Note": "caller +358"}
    assert [(a["subscriber"], a["outcome"]) for a in event["history"]] == [
        ("sms", "retry"), ("crm", "done"), ("sms", "dead"),
    ]  # fmt: skip
    stats = cli("stats")
    assert stats.returncode == 0, stats.stderr
    assert f"inbox {built.url} (" in stats.stdout and "events 4" in stats.stdout
    missing = cli("show", "123456")
    assert (missing.returncode, missing.stderr) == (1, "receiver: no event 123456 in the inbox\n")
    replayed = cli("replay", built.ids["e2"], "--json")
    assert (replayed.returncode, json.loads(replayed.stdout)) == (
        0,
        {"replayed": 1, "nothing_for": []},
    )


def test_cli_migrate_creates_then_finds_the_schema_current(
    postgres_server: postgres.PostgresServer, postgres_database: str
) -> None:
    url = without_password(postgres_database, postgres_server)
    refused = receiver("inbox", "list", "--inbox", url, server=postgres_server)
    assert refused.returncode == 2
    assert refused.stderr == f"receiver: no inbox at {url} (run `receiver inbox migrate`)\n"
    created = receiver("inbox", "migrate", "--inbox", url, server=postgres_server)
    assert (created.returncode, created.stderr) == (0, "")
    assert created.stdout == f"inbox {url}: schema version 0 \u2192 2\n"
    again = receiver("inbox", "migrate", "--inbox", url, "--json", server=postgres_server)
    assert (again.returncode, json.loads(again.stdout)) == (0, {"inbox": url, "from": 2, "to": 2})
    listed = receiver("inbox", "list", "--inbox", url, server=postgres_server)
    assert (listed.returncode, listed.stdout) == (0, "(none)\n")


def test_cli_migrate_of_a_sqlite_file_creates_it(tmp_path: Path) -> None:
    path = f"{tmp_path}/inbox.db"
    first = subprocess.run(
        [sys.executable, "-m", "receiver", "inbox", "migrate", "--inbox", path],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert (first.returncode, first.stdout) == (0, f"inbox {path}: schema version 0 \u2192 4\n")
    second = subprocess.run(
        [sys.executable, "-m", "receiver", "inbox", "migrate", "--inbox", f"sqlite:///{path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert (second.returncode, second.stdout) == (0, f"inbox {path}: already at version 4\n")


def test_cli_errors_are_one_line_without_the_password(
    postgres_server: postgres.PostgresServer, postgres_database: str
) -> None:
    url = without_password(postgres_database, postgres_server)
    wrong = receiver("inbox", "stats", "--inbox", url, server=postgres_server,
                     env={"PGPASSWORD": "wrong-password"})  # fmt: skip
    assert wrong.returncode == 2
    assert wrong.stderr.startswith(f"receiver: cannot open inbox {url}: ")
    assert wrong.stderr.count("\n") == 1 and "wrong-password" not in wrong.stderr
    given = receiver("inbox", "migrate", "--inbox", postgres_database, server=postgres_server)
    assert given.returncode == 2
    assert "PGPASSWORD" in given.stderr and postgres_server.password not in given.stderr

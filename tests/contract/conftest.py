"""The inbox contract's fixtures: every test runs once for each backend in `BACKEND_URLS`."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from receiver.inbox.base import Inbox, InboxAdmin, InboxOptions, open_admin, open_inbox
from receiver.inbox.models import Attempt, EventFilter, EventRecord, NewEvent, StoredEvent
from tests.support import postgres

T = TypeVar("T")

BACKEND_URLS: list[tuple[str, str]] = [
    ("memory", "memory://contract-{unique}"),
    ("sqlite", "{tmp}/inbox.db"),
    ("postgresql", "{postgresql}"),
]
HANDING_OVER = ("memory", "sqlite")
"""The backends that hand new deliveries to an intake of their own process at commit (the
fast path). A shared backend does not (another process may hold the same call): it tells the
intake which subscribers have new pending deliveries, and they are claimed."""
"""Each backend's name and the URL of a new, empty inbox for one test: `{tmp}` is the test's
own temporary folder, `{unique}` a name no other test uses, `{postgresql}` a new database on
the session's PostgreSQL server (`tests.support.postgres`; its password in PGPASSWORD)."""

postgres_server = postgres.postgres_server

WAIT = 1.0
"""Seconds a test waits for something that should happen at once."""


class Store:
    """One test's inbox URL: opens inboxes on it (each as if in its own process) and admins."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._inboxes: list[Inbox] = []
        self._admins: list[InboxAdmin] = []

    async def open(self, **options: Any) -> Inbox:
        """An opened inbox on this URL with `options` (`InboxOptions`' fields), closed when
        `run` ends."""
        inbox = open_inbox(self.url, InboxOptions(**options))
        await inbox.open()
        self._inboxes.append(inbox)
        return inbox

    async def open_two(self, *, lease: float = 15.0) -> tuple[Inbox, Inbox]:
        """Two inboxes on this URL, as two processes sharing it would have."""
        return await self.open(lease=lease), await self.open(lease=lease)

    def admin(self, **options: Any) -> InboxAdmin:
        """The admin side with `options` (open an inbox first: a backend may need it to
        exist)."""
        admin = open_admin(self.url, InboxOptions(**options))
        self._admins.append(admin)
        return admin

    def run(self, body: Callable[[], Awaitable[T]]) -> T:
        """Run `body` in a new event loop, then close every inbox it opened."""

        async def main() -> T:
            try:
                return await body()
            finally:
                for inbox in reversed(self._inboxes):
                    await inbox.close()
                self._inboxes.clear()

        return asyncio.run(main())

    def close(self) -> None:
        for admin in self._admins:
            admin.close()


@pytest.fixture(params=[url for _, url in BACKEND_URLS], ids=[name for name, _ in BACKEND_URLS])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    """A new, empty inbox of each backend in turn."""
    template: str = request.param
    database = ""
    if "{postgresql}" in template:
        server: postgres.PostgresServer = request.getfixturevalue("postgres_server")
        name = f"contract_{uuid.uuid4().hex[:12]}"
        server.create_database(name)
        database = server.url(name, password=False)
        monkeypatch.setenv("PGPASSWORD", server.password)
    store = Store(template.format(tmp=tmp_path, unique=uuid.uuid4().hex, postgresql=database))
    yield store
    store.close()
    if database:
        server.drop_database(name)


def event(
    key: str,
    *,
    source: str = "enreach",
    event_type: str = "UserAvailability",
    order_key: str | None = None,
    payload: bytes | None = None,
) -> NewEvent:
    """A new event whose dedup key is `key`."""
    body = b'{"Id": "%s"}' % key.encode() if payload is None else payload
    return NewEvent(source, key, event_type, order_key, body)


def failed(
    number: int, error: str, *, started_at: float | None = None, last: bool = False
) -> Attempt:
    """A failed attempt (`last`: the one that makes a dead letter)."""
    started = time.time() if started_at is None else started_at
    return Attempt(number, started, 0.01, "dead" if last else "retry", error)


def keys(deliveries: Sequence[StoredEvent]) -> list[tuple[str, str]]:
    """(dedup key, subscriber) of each delivery, in order."""
    return [(d.dedup_key, d.subscriber) for d in deliveries]


def states(record: EventRecord | None) -> dict[str, str]:
    """Each subscriber's delivery state label."""
    assert record is not None
    return {d.subscriber: d.state.label for d in record.deliveries}


def find(admin: InboxAdmin, key: str) -> EventRecord:
    """The event whose dedup key is `key` (the admin lists it)."""
    ids = {d.id for d in admin.list(EventFilter(), limit=10_000) if d.dedup_key == key}
    assert len(ids) == 1, f"{key}: {ids}"
    record = admin.get(str(ids.pop()))
    assert record is not None
    return record


class Recorder:
    """An intake that keeps what it is given."""

    def __init__(self) -> None:
        self.deliveries: list[StoredEvent] = []
        self.pending: set[str] = set()
        self.empty_calls = 0

    def __call__(self, deliveries: Sequence[StoredEvent], pending: Collection[str]) -> None:
        if not (deliveries or pending):
            self.empty_calls += 1
        self.deliveries.extend(deliveries)
        self.pending.update(pending)

    @property
    def keys(self) -> list[tuple[str, str]]:
        """(dedup key, subscriber) of each delivery handed over, in order."""
        return keys(self.deliveries)

    async def told(self, subscriber: str) -> None:
        """Until the intake was told that `subscriber` (or, `*`, any) has pending deliveries
        (AssertionError after WAIT seconds)."""
        deadline = time.monotonic() + WAIT
        while subscriber not in self.pending and "*" not in self.pending:
            assert time.monotonic() < deadline, f"told of {self.pending}, not {subscriber}"
            await asyncio.sleep(0.002)

    async def wait_for(self, count: int) -> None:
        """Until `count` deliveries were handed over (AssertionError after WAIT seconds)."""
        deadline = time.monotonic() + WAIT
        while len(self.deliveries) < count:
            assert time.monotonic() < deadline, f"handed over: {self.keys}, wanted {count}"
            await asyncio.sleep(0.002)


def backends(names: Sequence[str]) -> pytest.MarkDecorator:
    """Run a test for the backends named (through the `store` fixture) instead of for all."""
    urls = [pytest.param(url, id=name) for name, url in BACKEND_URLS if name in names]
    return pytest.mark.parametrize("store", urls, indirect=True)


handing_over = backends(HANDING_OVER)
"""For the tests of the fast path."""

not_handing_over = backends([name for name, _ in BACKEND_URLS if name not in HANDING_OVER])

shared = backends([name for name, _ in BACKEND_URLS if name != "sqlite"])
"""For the rules of backends that several processes dispatch from at once (SQLite lets one
process at a time: `try_lock_dispatch`)."""


async def settle() -> None:
    """Give a backend time to hand over anything it would (what a test expects not to come)."""
    await asyncio.sleep(0.05)

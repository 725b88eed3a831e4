"""The in-memory inbox: the reference backend, for fast tests and as the executable contract.

`memory://NAME` names a store kept in this process for as long as it runs: every
`MemoryInbox` (as if each were another process, with its own owner and lease) and
`MemoryAdmin` opened on the same URL shares it. `memory://` alone is a fresh private store
each time. Nothing is durable: a store dies with its process.

Everything runs on the event loop and is applied at once; the futures of writes come back
already resolved ("after commit"), and what a write hands to the intake reaches it in a later
callback, so a request's acknowledgement comes before the handlers of its event, as with
SQLite. The rules are those of `receiver.inbox.base`, checked for every backend by
`tests/contract/`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import secrets
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from receiver.exceptions import ConfigError, StorageError
from receiver.inbox.base import InboxOptions, Intake
from receiver.inbox.models import (
    ERASED,
    Attempt,
    Completion,
    DeliveryKey,
    DeliveryRecord,
    EventFilter,
    Expired,
    NewEvent,
    State,
    StoredEvent,
    only_ids,
    payload_has_phone,
    phone_digits,
)

if TYPE_CHECKING:
    from receiver.inbox.memory_admin import MemoryAdmin

__all__ = [
    "MemoryInbox",
    "check",
    "describe",
    "open_memory_admin",
    "open_memory_inbox",
]

T = TypeVar("T")

SCHEME = "memory://"
NAME = re.compile(r"[A-Za-z0-9._-]*")
DIGITS = re.compile(r"[0-9]{1,18}")
"""An event id, as text (never past a 64-bit integer, as other backends store them)."""
FINISHED = (State.DONE, State.DISCARDED)


@dataclass(slots=True)
class _Delivery:
    subscriber: str
    next_attempt_at: float
    state: State = State.PENDING
    attempts: int = 0
    last_error: str | None = None
    finished_at: float | None = None
    duration: float | None = None
    owner: str | None = None
    """Who holds it while it is in progress."""

    def record(self) -> DeliveryRecord:
        return DeliveryRecord(
            self.subscriber, self.state, self.attempts, self.next_attempt_at,
            self.finished_at, self.last_error, self.duration,
        )  # fmt: skip


@dataclass(slots=True)
class _Event:
    id: int
    event: NewEvent
    received_at: float
    deliveries: dict[str, _Delivery]
    history: list[Attempt] = field(default_factory=list)

    def stored(self, delivery: _Delivery) -> StoredEvent:
        e = self.event
        return StoredEvent(
            self.id, e.source, e.dedup_key, e.event_type, e.order_key, e.payload,
            delivery.state, delivery.attempts, self.received_at, delivery.next_attempt_at,
            delivery.last_error, delivery.finished_at, delivery.subscriber,
        )  # fmt: skip


@dataclass(slots=True)
class _Store:
    events: dict[int, _Event] = field(default_factory=dict)
    """By id, so in arrival order."""
    keys: dict[tuple[str, str], int] = field(default_factory=dict)
    leases: dict[str, float] = field(default_factory=dict)
    """When each owner's lease ends."""
    last_id: int = 0

    def rows(
        self, where: EventFilter, ids: Sequence[str] | None
    ) -> Iterator[tuple[_Event, _Delivery]]:
        """Every (event, delivery) matching `where` (and `ids`), oldest event first."""
        parsed = None if ids is None else [i for i in map(_parse_id, ids) if i is not None]
        kept = only_ids(where, parsed)
        wanted = None if kept is None else set(kept)
        for event in self.events.values():
            if wanted is not None and event.id not in wanted:
                continue
            for delivery in event.deliveries.values():
                if _matches(where, event, delivery):
                    yield event, delivery

    def find(self, key: DeliveryKey) -> tuple[_Event, _Delivery] | None:
        event = self.events.get(key[0])
        delivery = None if event is None else event.deliveries.get(key[1])
        return None if event is None or delivery is None else (event, delivery)

    def purge(self, retention_days: float, now: float | None) -> int:
        cutoff = (time.time() if now is None else now) - retention_days * 86400.0
        doomed = [
            event
            for event in self.events.values()
            if event.received_at < cutoff
            and all(d.state in FINISHED for d in event.deliveries.values())
        ]
        for event in doomed:
            del self.events[event.id]
            del self.keys[(event.event.source, event.event.dedup_key)]
        return len(doomed)

    def expire(self, options: InboxOptions, now: float | None) -> Expired:
        now = time.time() if now is None else now
        dead_cutoff = now - options.dead_retention_days * 86400.0
        dropped: list[DeliveryKey] = []
        for event in self.events.values():
            for delivery in event.deliveries.values():
                if delivery.state == State.DEAD and (delivery.finished_at or now) < dead_cutoff:
                    delivery.state = State.DISCARDED
                    dropped.append((event.id, delivery.subscriber))
        cutoff = now - options.payload_retention_days * 86400.0
        scrubbed = 0
        for event in self.events.values():
            if (
                event.received_at < cutoff
                and event.event.payload != ERASED
                and all(d.state in FINISHED for d in event.deliveries.values())
            ):
                erase(event)
                scrubbed += 1
        return Expired(scrubbed, tuple(dropped))


def erase(event: _Event) -> None:
    """Remove `event`'s payload, headers and error texts (its dedup key stays)."""
    event.event = dataclasses.replace(event.event, payload=ERASED, headers=None)
    for delivery in event.deliveries.values():
        delivery.last_error = None
    event.history = [dataclasses.replace(a, error=None) for a in event.history]


_STORES: dict[str, _Store] = {}
"""The named stores of this process."""


def _parse_id(text: str) -> int | None:
    return int(text) if DIGITS.fullmatch(text.strip()) else None


def _matches(where: EventFilter, event: _Event, delivery: _Delivery) -> bool:
    e = event.event
    return (
        where.subscriber in (None, delivery.subscriber)
        and where.source in (None, e.source)
        and where.event_type in (None, e.event_type)
        and (not where.states or delivery.state in where.states)
        and where.order_key in (None, e.order_key)
        and (where.since is None or event.received_at >= where.since)
        and (where.until is None or event.received_at < where.until)
        and not (where.with_payload and e.payload == ERASED)
        and (where.phone is None or payload_has_phone(e.payload, phone_digits(where.phone)))
    )


def check(url: str) -> None:
    """Refuse a URL that is not `memory://` followed by an optional name."""
    name = url.removeprefix(SCHEME)
    if not url.startswith(SCHEME) or not NAME.fullmatch(name):
        raise ConfigError(
            f"inbox {url!r}: expected memory:// or memory://NAME (letters, digits, ._-)"
        )


def describe(url: str) -> str:
    """Where the inbox is: its URL, and that it is lost at exit."""
    return f"{url} (in memory, lost at exit: for tests only)"


def _store(url: str) -> _Store:
    check(url)
    name = url.removeprefix(SCHEME)
    return _STORES.setdefault(name, _Store()) if name else _Store()


def open_memory_inbox(url: str, options: InboxOptions) -> MemoryInbox:
    """The in-memory inbox at `url` (not yet opened)."""
    return MemoryInbox(_store(url), options)


def open_memory_admin(url: str, options: InboxOptions) -> MemoryAdmin:
    """The admin side of the in-memory store at `url` (`receiver.inbox.memory_admin`)."""
    from receiver.inbox.memory_admin import MemoryAdmin

    return MemoryAdmin(_store(url), options, url)


class MemoryInbox:
    """One process's view of an in-memory store: intake and work queue."""

    exclusive = False

    def __init__(self, store: _Store, options: InboxOptions) -> None:
        self._store = store
        self._options = options
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._intake: Intake | None = None
        self._budget: dict[str, int] = {}
        """Per subscriber: how many new deliveries may still go to the intake directly."""
        self._backlog: dict[str, bool] = {}
        """Per subscriber: whether it may have pending deliveries (absent: True)."""
        self._handed: list[StoredEvent] = []
        self._pending: set[str] = set()

    async def open(self, on_failure: Callable[[BaseException], None] | None = None) -> None:
        """Start this owner's lease (`on_failure` is never called: memory cannot fail)."""
        self._loop = asyncio.get_running_loop()
        await self.heartbeat()

    @property
    def failure(self) -> str | None:
        """Always None."""
        return None

    async def close(self) -> None:
        """Hand over what is due and stop; the store stays for others."""
        self._flush()
        self._intake, self._loop = None, None

    def _require(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise StorageError("inbox is not open")
        return self._loop

    def _done(self, value: T) -> asyncio.Future[T]:
        future: asyncio.Future[T] = self._require().create_future()
        future.set_result(value)
        return future

    def _flush(self) -> None:
        handed, self._handed = self._handed, []
        pending, self._pending = self._pending, set()
        if (handed or pending) and self._intake is not None:
            self._intake(handed, pending)

    # -- the request path -----------------------------------------------------------------

    def append(self, event: NewEvent, subscribers: Sequence[str]) -> asyncio.Future[bool]:
        """Store `event` with a delivery per subscriber; False if its key was seen before."""
        self._require()
        store, key = self._store, (event.source, event.dedup_key)
        if key in store.keys:
            return self._done(False)
        now = time.time()
        store.last_id += 1
        stored = _Event(store.last_id, event, now, {})
        store.events[stored.id], store.keys[key] = stored, stored.id
        handed: list[StoredEvent] = []
        pending: list[str] = []
        for name in dict.fromkeys(subscribers):
            delivery = stored.deliveries[name] = _Delivery(name, now)
            if (
                self._intake is not None
                and self._budget.get(name, 0) > 0
                and not self._backlog.get(name, True)
            ):
                delivery.state, delivery.owner = State.IN_PROGRESS, self.owner
                self._budget[name] -= 1
                handed.append(stored.stored(delivery))
            else:
                self._backlog[name] = True
                pending.append(name)
        if self._intake is not None and (handed or pending):
            # After the append's future resolved: the acknowledgement first, then the handlers.
            if not (self._handed or self._pending):
                self._require().call_soon(self._flush)
            self._handed.extend(handed)
            self._pending.update(pending)
        return self._done(True)

    # -- the dispatchers --------------------------------------------------------------------

    def try_lock_dispatch(self) -> bool:
        """Always True: any number of instances share the deliveries by leases."""
        return True

    def attach(self, intake: Intake) -> None:
        """Hand claimed deliveries, and while there is room new ones, to `intake`."""
        self._intake = intake

    async def detach(self) -> None:
        """Hand over what is due, then stop handing anything over."""
        self._flush()
        self._budget.clear()
        self._backlog.clear()
        self._intake = None

    async def pull(self, subscriber: str, limit: int, room: int) -> int:
        """Claim up to `limit` pending deliveries for the intake; grant room when none is left."""
        claimed = await self.claim(subscriber, limit)
        self._handed.extend(claimed)
        self._flush()
        if len(claimed) < limit and self._intake is not None:
            self._budget[subscriber], self._backlog[subscriber] = room - len(claimed), False
        return len(claimed)

    async def claim(self, subscriber: str, limit: int) -> list[StoredEvent]:
        """Take up to `limit` pending deliveries of `subscriber`, oldest first, leaving those
        of calls another owner has a delivery of in progress (a call is one owner's at a
        time, as on every shared backend)."""
        self._require()
        claimed: list[StoredEvent] = []
        running = EventFilter(subscriber=subscriber, states=(State.IN_PROGRESS,))
        held = {
            event.event.order_key
            for event, delivery in self._store.rows(running, None)
            if event.event.order_key is not None and delivery.owner != self.owner
        }
        where = EventFilter(subscriber=subscriber, states=(State.PENDING,))
        for event, delivery in self._store.rows(where, None):
            if len(claimed) >= limit:
                break
            if event.event.order_key in held:
                continue
            delivery.state, delivery.owner = State.IN_PROGRESS, self.owner
            claimed.append(event.stored(delivery))
        return claimed

    def complete(self, done: Sequence[Completion]) -> asyncio.Future[None]:
        """Mark deliveries done; each gives its subscriber's room back."""
        for c in done:
            found = self._store.find((c.event_id, c.subscriber))
            if found is None or found[1].state != State.IN_PROGRESS:
                continue  # erased or discarded meanwhile: it stays so
            event, delivery = found
            success = Attempt(delivery.attempts + 1, c.started_at, c.duration, "done", None)
            event.history.append(dataclasses.replace(success, subscriber=c.subscriber))
            delivery.state, delivery.owner, delivery.last_error = State.DONE, None, None
            delivery.finished_at, delivery.duration = c.started_at + c.duration, c.duration
            if not self._backlog.get(c.subscriber, True):
                self._budget[c.subscriber] = self._budget.get(c.subscriber, 0) + 1
        return self._done(None)

    def retry_later(
        self, delivery: DeliveryKey, attempt: Attempt, next_attempt_at: float
    ) -> asyncio.Future[None]:
        """Record a failed attempt; the delivery stays claimed."""
        found = self._store.find(delivery)
        if found is not None and found[1].state == State.IN_PROGRESS:
            event, d = found
            event.history.append(dataclasses.replace(attempt, subscriber=d.subscriber))
            d.attempts, d.last_error = attempt.number, attempt.error
            d.next_attempt_at = next_attempt_at
        return self._done(None)

    def bury(self, delivery: DeliveryKey, attempt: Attempt) -> asyncio.Future[None]:
        """Record the last failed attempt; the delivery becomes a dead letter."""
        found = self._store.find(delivery)
        if found is not None and found[1].state == State.IN_PROGRESS:
            event, d = found
            event.history.append(dataclasses.replace(attempt, subscriber=d.subscriber))
            d.state, d.owner, d.finished_at = State.DEAD, None, time.time()
            d.attempts, d.last_error = attempt.number, attempt.error
        return self._done(None)

    async def release(self, deliveries: Sequence[DeliveryKey]) -> None:
        """Make claimed deliveries pending again."""
        for key in deliveries:
            found = self._store.find(key)
            if found is not None and found[1].state == State.IN_PROGRESS:
                found[1].state, found[1].owner = State.PENDING, None

    async def recover(self) -> int:
        """Make pending every delivery another owner holds; how many."""
        return self._take_back(lambda owner: owner != self.owner)

    async def heartbeat(self) -> bool:
        """Extend this owner's lease by `InboxOptions.lease`; False if it had run out."""
        now = time.time()
        before = self._store.leases.get(self.owner)
        self._store.leases[self.owner] = now + self._options.lease
        return before is None or before >= now

    async def owned(self) -> set[DeliveryKey]:
        """Every delivery this owner holds in progress."""
        held = self._store.rows(EventFilter(states=(State.IN_PROGRESS,)), None)
        return {(event.id, d.subscriber) for event, d in held if d.owner == self.owner}

    async def held(self, deliveries: Sequence[DeliveryKey]) -> set[DeliveryKey]:
        """Those of `deliveries` this owner still holds in progress."""
        found: set[DeliveryKey] = set()
        for key in deliveries:
            row = self._store.find(key)
            if row is not None and row[1].state == State.IN_PROGRESS and row[1].owner == self.owner:
                found.add(key)
        return found

    async def reclaim(self) -> int:
        """Make pending every delivery whose owner's lease ended (never this owner's, which
        its dispatcher still holds); how many."""
        now, leases = time.time(), self._store.leases
        return self._take_back(
            lambda owner: owner is None or (owner != self.owner and leases.get(owner, 0.0) < now)
        )

    def _take_back(self, gone: Callable[[str | None], bool]) -> int:
        held = self._store.rows(EventFilter(states=(State.IN_PROGRESS,)), None)
        taken = [d for _, d in held if gone(d.owner)]
        for delivery in taken:
            delivery.state, delivery.owner = State.PENDING, None
        return len(taken)

    async def purge(self, *, now: float | None = None, chunk: int = 2000) -> int:
        """Delete events past retention whose every delivery is finished; how many."""
        return self._store.purge(self._options.retention_days, now)

    async def expire(self, *, now: float | None = None, chunk: int = 2000) -> Expired:
        """Discard dead letters past dead retention; remove old finished events' payloads."""
        return self._store.expire(self._options, now)

    async def probe(self) -> None:
        """Memory always takes writes while open."""
        self._require()

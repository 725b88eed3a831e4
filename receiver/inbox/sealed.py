"""Every inbox backend with payloads encrypted at rest (`receiver.inbox.sealing`).

`open_inbox` and `open_admin` wrap each backend in these: a payload appended, and the error text
of each failed attempt, are sealed with the keyring's current key before the backend sees them
(the dedup digest is the backend's, from source and dedup key, and stays clear; so do the request
headers kept, which credentials never reach), and every delivery handed out (claimed, or handed
over in process) and every record an operator reads is opened again. Without a
keyring nothing is sealed, but a sealed blob found is still refused with a `StorageError` naming
its key, never handed on as if it were the payload.

A search the backend cannot do on sealed bytes (`EventFilter.phone`) is done here when a keyring
is set: every payload is opened and looked at (`payload_has_phone`), and the backend is asked for
the events found (`EventFilter.event_ids`); it costs a read of every stored payload.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import logging
import time
from collections.abc import Collection, Sequence
from typing import Any

import orjson

from receiver.exceptions import ConfigError, StorageError
from receiver.inbox.base import Inbox, InboxAdmin, Intake
from receiver.inbox.models import (
    ERASED,
    Attempt,
    DeliveryKey,
    EventFilter,
    EventRecord,
    NewEvent,
    StoredEvent,
    StoredPayload,
    payload_has_phone,
    phone_digits,
)
from receiver.inbox.sealing import MAGIC, TEXT_MAGIC, Keyring, open_sealed, open_text

__all__ = ["SealedAdmin", "SealedInbox"]

log = logging.getLogger("receiver.dispatcher")

SCAN_PAGE = 1000
"""Payloads read at a time by a search done here."""
MAX_FOUND = 20_000
"""The most events a phone search done here hands to the backend (SQLite binds at most
32,766 parameters); a number in more (a switchboard's) is refused with a one-line error."""


def _open(delivery: StoredEvent, keyring: Keyring | None) -> StoredEvent:
    """`delivery` with its payload and last error opened (as they are when never sealed)."""
    error = delivery.last_error
    if delivery.payload[:4] != MAGIC and not (error and error.startswith(TEXT_MAGIC)):
        return delivery
    clear = open_sealed(delivery.payload, delivery.source, delivery.dedup_key, keyring)
    return dataclasses.replace(delivery, payload=clear, last_error=open_text(error, keyring))


def _readable(delivery: StoredEvent, keyring: Keyring | None) -> StoredEvent:
    """`_open`, or for a list row that cannot be opened, the row with a payload saying why
    (a list needs no payload, and one such row must not hide the others)."""
    try:
        return _open(delivery, keyring)
    except StorageError as exc:
        note = orjson.dumps({"unreadable": str(exc)})
        error = delivery.last_error
        sealed_error = error is not None and error.startswith(TEXT_MAGIC)
        return dataclasses.replace(
            delivery, payload=note, last_error="(unreadable)" if sealed_error else error
        )


def _open_attempt(attempt: Attempt, keyring: Keyring | None) -> Attempt:
    if not (attempt.error and attempt.error.startswith(TEXT_MAGIC)):
        return attempt
    return dataclasses.replace(attempt, error=open_text(attempt.error, keyring))


def _open_record(record: EventRecord, keyring: Keyring | None) -> EventRecord:
    """`record` with its payload and error texts opened."""
    return dataclasses.replace(
        record,
        payload=open_sealed(record.payload, record.source, record.dedup_key, keyring),
        deliveries=tuple(
            dataclasses.replace(d, last_error=open_text(d.last_error, keyring))
            for d in record.deliveries
        ),
        history=tuple(_open_attempt(a, keyring) for a in record.history),
    )


def _settled(future: asyncio.Future[None]) -> None:
    """Retrieve a fire-and-forget write's outcome (a failure is the inbox's to log)."""
    if not future.cancelled():
        future.exception()


class SealedInbox:
    """`inner` with payloads sealed on the way in and opened on the way out. Everything else is
    `inner`'s own (attributes and methods alike)."""

    def __init__(self, inner: Inbox, keyring: Keyring | None) -> None:
        self._inner = inner
        self._keyring = keyring

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __repr__(self) -> str:
        return repr(self._inner)

    def append(self, event: NewEvent, subscribers: Sequence[str] = ("default",)) -> Any:
        """`Inbox.append`, the payload sealed first (when there is a keyring)."""
        keyring = self._keyring
        if keyring is not None:
            event = NewEvent(
                event.source, event.dedup_key, event.event_type, event.order_key,
                keyring.seal(event.payload, event.source, event.dedup_key), event.headers,
            )  # fmt: skip
        return self._inner.append(event, subscribers)

    def attach(self, intake: Intake) -> None:
        """`Inbox.attach`: what is handed over in process is opened first."""

        def opened(deliveries: Sequence[StoredEvent], pending: Collection[str]) -> None:
            intake(self._deliverable(deliveries), pending)

        self._inner.attach(opened)

    async def claim(self, subscriber: str, limit: int) -> list[StoredEvent]:
        """`Inbox.claim`, each delivery's payload opened."""
        return self._deliverable(await self._inner.claim(subscriber, limit))

    def _deliverable(self, deliveries: Sequence[StoredEvent]) -> list[StoredEvent]:
        """`deliveries` opened, one by one; one that cannot be delivered (its payload erased
        meanwhile, or sealed with a key this process lacks) becomes a dead letter saying why,
        and holds up nothing else."""
        kept: list[StoredEvent] = []
        for delivery in deliveries:
            try:
                if delivery.payload == ERASED:
                    raise StorageError(
                        "its payload was erased (on request, or past payload_retention_days): "
                        "nothing to deliver"
                    )
                kept.append(_open(delivery, self._keyring))
            except StorageError as exc:
                log.error(
                    "%s: event %d cannot be delivered and is made a dead letter: %s",
                    delivery.subscriber, delivery.id, exc,
                )  # fmt: skip
                attempt = Attempt(
                    delivery.attempts + 1, time.time(), 0.0, "dead", str(exc), delivery.subscriber
                )
                self._inner.bury(delivery.key, attempt).add_done_callback(_settled)
        return kept

    def retry_later(
        self, delivery: DeliveryKey, attempt: Attempt, next_attempt_at: float
    ) -> asyncio.Future[None]:
        """`Inbox.retry_later`, the error text sealed."""
        return self._inner.retry_later(delivery, self._seal(attempt), next_attempt_at)

    def bury(self, delivery: DeliveryKey, attempt: Attempt) -> asyncio.Future[None]:
        """`Inbox.bury`, the error text sealed."""
        return self._inner.bury(delivery, self._seal(attempt))

    def _seal(self, attempt: Attempt) -> Attempt:
        if self._keyring is None or not attempt.error:
            return attempt
        return dataclasses.replace(attempt, error=self._keyring.seal_text(attempt.error))


class SealedAdmin:
    """`inner` (an `InboxAdmin`) with what it returns opened, and phone searches done here when
    payloads are sealed."""

    def __init__(self, inner: InboxAdmin, keyring: Keyring | None) -> None:
        self._inner = inner
        self._keyring = keyring

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __repr__(self) -> str:
        return repr(self._inner)

    def _narrow(self, where: EventFilter) -> EventFilter | None:
        """`where` for the backend: a phone search done here becomes the events it found
        (None: it found none)."""
        if where.phone is None or self._keyring is None:
            return where
        digits = phone_digits(where.phone)
        found: list[int] = []
        after = 0
        while rows := self.payloads(after, SCAN_PAGE):
            found += [row.id for row in rows if payload_has_phone(row.payload, digits)]
            after = rows[-1].id
        if not found:
            return None
        if len(found) > MAX_FOUND:
            raise ConfigError(
                f"{len(found):,} events hold that number: too many to filter an encrypted inbox "
                "by; narrow the search (--since, --until, --source, --type)"
            )
        return dataclasses.replace(where, phone=None, event_ids=tuple(found))

    def list(self, where: EventFilter, *, limit: int = 50) -> builtins.list[StoredEvent]:
        """`InboxAdmin.list`, payloads opened."""
        narrowed = self._narrow(where)
        if narrowed is None:
            return []
        return [_readable(d, self._keyring) for d in self._inner.list(narrowed, limit=limit)]

    def counts(self, where: EventFilter) -> dict[tuple[str, str], int]:
        """`InboxAdmin.counts`."""
        narrowed = self._narrow(where)
        return {} if narrowed is None else self._inner.counts(narrowed)

    def recent_attempts(
        self, since: float, where: EventFilter, limit: int = 200
    ) -> builtins.list[tuple[StoredEvent, Attempt]]:
        """`InboxAdmin.recent_attempts`, payloads opened."""
        narrowed = self._narrow(where)
        if narrowed is None:
            return []
        found = self._inner.recent_attempts(since, narrowed, limit)
        opened = []
        for delivery, attempt in found:
            try:
                attempt = _open_attempt(attempt, self._keyring)
            except StorageError:
                attempt = dataclasses.replace(attempt, error="(unreadable)")
            opened.append((_readable(delivery, self._keyring), attempt))
        return opened

    def get(self, event_id: str) -> EventRecord | None:
        """`InboxAdmin.get`, the payload and error texts opened."""
        record = self._inner.get(event_id)
        return None if record is None else _open_record(record, self._keyring)

    def replay(
        self, where: EventFilter, *, ids: Sequence[str] | None = None, done_too: bool = False
    ) -> int:
        """`InboxAdmin.replay`."""
        narrowed = self._narrow(where)
        return 0 if narrowed is None else self._inner.replay(narrowed, ids=ids, done_too=done_too)

    def discard(self, where: EventFilter, *, ids: Sequence[str] | None = None) -> int:
        """`InboxAdmin.discard`."""
        narrowed = self._narrow(where)
        return 0 if narrowed is None else self._inner.discard(narrowed, ids=ids)

    def payloads(self, after: int, limit: int = 1000) -> builtins.list[StoredPayload]:
        """`InboxAdmin.payloads`, opened."""
        rows, unreadable = [], []
        for row in self._inner.payloads(after, limit):
            if row.payload[:4] != MAGIC:
                rows.append(row)
                continue
            try:
                clear = open_sealed(row.payload, row.source, row.dedup_key, self._keyring)
            except StorageError as exc:
                unreadable.append(str(exc))
                # Kept in the page (a caller pages on by id) with nothing to match.
                rows.append(row._replace(payload=b"{}"))
            else:
                rows.append(row._replace(payload=clear))
        if unreadable:
            log.warning(
                "%d payload(s) could not be read, and so not searched: %s",
                len(unreadable), unreadable[0],
            )  # fmt: skip
        return rows

"""The admin side of the in-memory inbox (`receiver.inbox.memory`): the same queries and
fixes as the other backends', over the store's events in arrival order."""

from __future__ import annotations

import builtins
import time
from collections.abc import Sequence
from dataclasses import replace

from receiver.inbox.base import InboxOptions
from receiver.inbox.memory import FINISHED, _parse_id, _Store, erase
from receiver.inbox.models import (
    ERASED,
    Attempt,
    EventFilter,
    EventRecord,
    Expired,
    InboxStats,
    State,
    StoredEvent,
    StoredPayload,
    decode_headers,
)

__all__ = ["MemoryAdmin"]


class MemoryAdmin:
    """Operators' queries and fixes on an in-memory store."""

    def __init__(self, store: _Store, options: InboxOptions, url: str) -> None:
        self._store = store
        self._options = options
        self._url = url

    def close(self) -> None:
        """Nothing to release."""

    def live_dispatchers(self) -> list[str]:
        """The owners whose lease is alive."""
        now = time.time()
        return sorted(owner for owner, until in self._store.leases.items() if until >= now)

    def stats(self) -> InboxStats:
        """Counts by state, subscriber and source; the age of each oldest open delivery."""
        now = time.time()
        by_state = {s.label: 0 for s in State}
        by_subscriber: dict[str, dict[str, int]] = {}
        by_source: dict[str, int] = {}
        oldest: dict[str, float] = {}
        for event in self._store.events.values():
            by_source[event.event.source] = by_source.get(event.event.source, 0) + 1
            for d in event.deliveries.values():
                by_state[d.state.label] += 1
                counts = by_subscriber.setdefault(d.subscriber, {s.label: 0 for s in State})
                counts[d.state.label] += 1
                if d.state in (State.PENDING, State.IN_PROGRESS):
                    oldest.setdefault(d.subscriber, max(0.0, now - event.received_at))
        return InboxStats(
            self._url, None, len(self._store.events), by_state, by_subscriber, by_source, oldest
        )

    def list(self, where: EventFilter, *, limit: int = 50) -> list[StoredEvent]:
        """The deliveries matching `where`, newest event first, then by subscriber."""
        rows = sorted(self._store.rows(where, None), key=lambda r: (-r[0].id, r[1].subscriber))
        return [event.stored(delivery) for event, delivery in rows[:limit]]

    def get(self, event_id: str) -> EventRecord | None:
        """The event `event_id` with its deliveries (by subscriber) and attempts; or None."""
        event = self._store.events.get(_parse_id(event_id) or 0)
        if event is None:
            return None
        e = event.event
        ordered = sorted(event.deliveries.values(), key=lambda d: d.subscriber)
        deliveries = tuple(d.record() for d in ordered)
        history = tuple(sorted(event.history, key=lambda a: a.started_at))
        return EventRecord(
            event.id, e.source, e.dedup_key, e.event_type, e.order_key, e.payload,
            event.received_at, deliveries, history, decode_headers(e.headers),
        )  # fmt: skip

    def counts(self, where: EventFilter) -> dict[tuple[str, str], int]:
        """Deliveries matching `where` by (event type, state label)."""
        counts: dict[tuple[str, str], int] = {}
        for event, delivery in self._store.rows(where, None):
            key = (event.event.event_type, delivery.state.label)
            counts[key] = counts.get(key, 0) + 1
        return counts

    def recent_attempts(
        self, since: float, where: EventFilter, limit: int = 200
    ) -> builtins.list[tuple[StoredEvent, Attempt]]:
        """Every attempt that ended at or after `since`, oldest first, of the deliveries
        matching `where`, with its delivery as it is now; at most `limit`.

        The failed ones come from the history; the successful one from a delivery done now
        (a replayed delivery's earlier success is in the history only), as the SQL inboxes
        keep it.
        """
        found: list[tuple[float, int, str, int, StoredEvent, Attempt]] = []
        for event, d in self._store.rows(where, None):
            stored = event.stored(d)
            for a in event.history:
                ended = a.started_at + a.duration
                if a.subscriber == d.subscriber and a.outcome != "done" and ended >= since:
                    found.append((ended, event.id, d.subscriber, a.number, stored, a))
            finished, duration = d.finished_at, d.duration
            if d.state != State.DONE or finished is None or duration is None or finished < since:
                continue
            done = Attempt(
                d.attempts + 1, finished - duration, duration, "done", None, d.subscriber
            )
            found.append((finished, event.id, d.subscriber, done.number, stored, done))
        found.sort(key=lambda row: row[:4])
        return [(row[4], row[5]) for row in found[:limit]]

    def replay(
        self, where: EventFilter, *, ids: Sequence[str] | None = None, done_too: bool = False
    ) -> int:
        """Make matching dead (and with `done_too` done) deliveries pending; how many."""
        states = (State.DEAD, State.DONE) if done_too else (State.DEAD,)
        now, count = time.time(), 0
        for _, d in self._store.rows(replace(where, with_payload=True), ids):
            if d.state in states:
                d.state, d.attempts, d.next_attempt_at = State.PENDING, 0, now
                d.finished_at = d.duration = None
                count += 1
        return count

    def discard(self, where: EventFilter, *, ids: Sequence[str] | None = None) -> int:
        """Give up on matching dead letters; how many."""
        dead = [d for _, d in self._store.rows(where, ids) if d.state == State.DEAD]
        for delivery in dead:
            delivery.state = State.DISCARDED
        return len(dead)

    def purge(self, *, now: float | None = None) -> int:
        """Delete events past retention whose every delivery is finished; how many."""
        return self._store.purge(self._options.retention_days, now)

    def payloads(self, after: int, limit: int = 1000) -> builtins.list[StoredPayload]:
        """The events after id `after` that still have their payload, by id: (id, order key,
        payload); at most `limit`. What `receiver inbox erase` searches."""
        found = [
            StoredPayload(
                e.id, e.event.source, e.event.dedup_key, e.event.order_key, e.event.payload
            )
            for e in self._store.events.values()
            if e.id > after and e.event.payload != ERASED
        ]
        return found[:limit]

    def erase(self, ids: Sequence[int]) -> dict[str, int]:
        """Remove the payload, headers and error texts of events `ids`, keeping their dedup
        keys; their open and dead deliveries are discarded. Returns their deliveries by state
        before, by label."""
        found: dict[str, int] = {}
        for event_id in ids:
            event = self._store.events.get(event_id)
            if event is None:
                continue
            for delivery in event.deliveries.values():
                found[delivery.state.label] = found.get(delivery.state.label, 0) + 1
                if delivery.state not in FINISHED:
                    delivery.state, delivery.owner = State.DISCARDED, None
            erase(event)
        return found

    def expire(self, *, now: float | None = None) -> Expired:
        """Discard dead letters past dead retention; remove old finished events' payloads."""
        return self._store.expire(self._options, now)

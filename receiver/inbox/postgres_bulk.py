"""Whole events of the PostgreSQL inbox: an event with its deliveries and attempt history
(`EventRecord`) as `receiver inbox show` reads it, and the bulk export and import of
`receiver inbox copy` (`receiver.inbox.copy`), each on a connection its caller holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from receiver.inbox.models import (
    Attempt,
    DeliveryRecord,
    EventRecord,
    State,
    decode_headers,
    encode_headers,
)
from receiver.inbox.rows import EVENT_COLUMNS, digest

__all__ = [
    "RECORD_ATTEMPT_COLUMNS",
    "RECORD_DELIVERY_COLUMNS",
    "RECORD_EVENT_COLUMNS",
    "export_page",
    "import_records",
    "record",
]

EXPORT_PAGE = 1000
"""Events read per query by `export_page`."""

RECORD_EVENT_COLUMNS = f"{EVENT_COLUMNS}, headers"
"""An event's columns for an `EventRecord`."""

RECORD_DELIVERY_COLUMNS = (
    "subscriber, state, attempts, next_attempt_at, finished_at, last_error, duration"
)
"""A delivery's columns in the order of `DeliveryRecord`'s fields."""

RECORD_ATTEMPT_COLUMNS = "number, started_at, duration, outcome, error, subscriber"
"""An attempt's columns in the order of `Attempt`'s fields."""

OPEN_STATES = (int(State.PENDING), int(State.IN_PROGRESS), int(State.DEAD))
"""Deliveries that keep their event from being purged, whatever its age."""

IMPORT_EVENTS = """
WITH input AS (
    SELECT * FROM unnest(
        %(source)s::text[], %(dedup_key)s::text[], %(digest)s::bytea[], %(event_type)s::text[],
        %(order_key)s::text[], %(payload)s::bytea[], %(received_at)s::float8[],
        %(headers)s::bytea[]
    ) WITH ORDINALITY AS t(source, dedup_key, digest, event_type, order_key, payload,
                           received_at, headers, n)
)
INSERT INTO receiver_events (source, dedup_key, digest, event_type, order_key, payload,
                             received_at, headers)
SELECT source, dedup_key, digest, event_type, order_key, payload, received_at, headers
FROM input ORDER BY n
ON CONFLICT (digest) DO NOTHING
RETURNING id, digest
"""

IMPORT_DELIVERIES = """
INSERT INTO receiver_deliveries (event_id, subscriber, order_key, state, attempts,
                                 next_attempt_at, last_error, finished_at, duration)
SELECT * FROM unnest(
    %s::bigint[], %s::text[], %s::text[], %s::smallint[], %s::integer[], %s::float8[],
    %s::text[], %s::float8[], %s::float8[])
"""

IMPORT_ATTEMPTS = """
INSERT INTO receiver_attempts (event_id, subscriber, number, started_at, duration, outcome,
                               error)
SELECT * FROM unnest(
    %s::bigint[], %s::text[], %s::integer[], %s::float8[], %s::float8[], %s::text[], %s::text[])
"""


def record(
    event_row: Sequence[Any],
    delivery_rows: Iterable[Sequence[Any]],
    attempt_rows: Iterable[Sequence[Any]],
) -> EventRecord:
    """An `EventRecord` from an events row (`RECORD_EVENT_COLUMNS`), its deliveries rows
    (`RECORD_DELIVERY_COLUMNS`) and its attempts rows (`RECORD_ATTEMPT_COLUMNS`).

    A done delivery's successful attempt is not stored as an attempt: it is made from the
    delivery's `finished_at` and `duration`, as the SQLite inbox does.
    """
    deliveries = tuple(DeliveryRecord(d[0], State(d[1]), *d[2:]) for d in delivery_rows)
    history = [Attempt(*a) for a in attempt_rows]
    for d in deliveries:
        if d.state == State.DONE and d.finished_at is not None and d.duration is not None:
            started = d.finished_at - d.duration
            history.append(Attempt(d.attempts + 1, started, d.duration, "done", None, d.subscriber))
    history.sort(key=lambda a: a.started_at)
    headers = None if event_row[7] is None else bytes(event_row[7])
    return EventRecord(
        event_row[0], event_row[1], event_row[2], event_row[3], event_row[4],
        bytes(event_row[5]), event_row[6], deliveries, tuple(history), decode_headers(headers),
    )  # fmt: skip


def export_page(conn: Any, after: int, cutoff: float) -> list[EventRecord]:
    """The next `EXPORT_PAGE` events after id `after` that `purge` would keep (one with a
    delivery pending, in progress or dead, or received at or after `cutoff`), oldest first,
    whole; read in one transaction of `conn` (a psycopg connection)."""
    with conn.transaction():
        events = conn.execute(
            f"SELECT {RECORD_EVENT_COLUMNS} FROM receiver_events e WHERE e.id > %s"  # noqa: S608 - fixed fragment
            " AND (e.received_at >= %s OR EXISTS (SELECT 1 FROM receiver_deliveries d"
            "      WHERE d.event_id = e.id AND d.state = ANY(%s::smallint[])))"
            " ORDER BY e.id LIMIT %s",
            (after, cutoff, list(OPEN_STATES), EXPORT_PAGE),
        ).fetchall()
        if not events:
            return []
        ids = [row[0] for row in events]
        deliveries: dict[int, list[Sequence[Any]]] = {}
        for d in conn.execute(
            f"SELECT event_id, {RECORD_DELIVERY_COLUMNS} FROM receiver_deliveries"  # noqa: S608 - constants
            ' WHERE event_id = ANY(%s) ORDER BY event_id, subscriber COLLATE "C"',
            (ids,),
        ):
            deliveries.setdefault(d[0], []).append(d[1:])
        attempts: dict[int, list[Sequence[Any]]] = {}
        for a in conn.execute(
            f"SELECT event_id, {RECORD_ATTEMPT_COLUMNS} FROM receiver_attempts"  # noqa: S608 - constants
            " WHERE event_id = ANY(%s) ORDER BY started_at",
            (ids,),
        ):
            attempts.setdefault(a[0], []).append(a[1:])
    return [record(row, deliveries.get(row[0], ()), attempts.get(row[0], ())) for row in events]


def import_records(conn: Any, records: Sequence[EventRecord]) -> list[bool]:
    """Store `records` (from another inbox's export) in one transaction of `conn`, in their
    order, keeping their times, headers, states, attempts counts, errors and history; a
    delivery in progress becomes pending. For each, True if stored, False if an event with
    its source and dedup key was here already (then nothing of it is stored).

    The successful attempts in a history (outcome `done`) are left out: this inbox keeps
    them as their delivery's `finished_at` and `duration`.
    """
    keys = [digest(r.source, r.dedup_key) for r in records]
    columns: dict[str, list[Any]] = {
        "source": [r.source for r in records],
        "dedup_key": [r.dedup_key for r in records],
        "digest": keys,
        "event_type": [r.event_type for r in records],
        "order_key": [r.order_key for r in records],
        "payload": [r.payload for r in records],
        "received_at": [r.received_at for r in records],
        "headers": [encode_headers(r.headers) for r in records],
    }
    deliveries: list[tuple[Any, ...]] = []
    attempts: list[tuple[Any, ...]] = []
    with conn.transaction():
        new = {bytes(k): i for i, k in conn.execute(IMPORT_EVENTS, columns).fetchall()}
        filled: set[bytes] = set()
        for key, r in zip(keys, records, strict=True):
            event_id = new.get(key)
            if event_id is None or key in filled:
                continue  # here already, or a second copy in `records`
            filled.add(key)
            deliveries.extend(
                (
                    event_id,
                    d.subscriber,
                    r.order_key,
                    int(State.PENDING if d.state == State.IN_PROGRESS else d.state),
                    d.attempts,
                    d.next_attempt_at,
                    d.last_error,
                    d.finished_at,
                    d.duration,
                )
                for d in r.deliveries
            )
            attempts.extend(
                (event_id, a.subscriber, a.number, a.started_at, a.duration, a.outcome, a.error)
                for a in r.history
                if a.outcome != "done"
            )
        if deliveries:
            conn.execute(IMPORT_DELIVERIES, [list(c) for c in zip(*deliveries, strict=True)])
        if attempts:
            conn.execute(IMPORT_ATTEMPTS, [list(c) for c in zip(*attempts, strict=True)])
    stored: list[bool] = []
    for key in keys:
        stored.append(key in new)
        new.pop(key, None)
    return stored

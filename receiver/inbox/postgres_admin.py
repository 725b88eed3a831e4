"""The admin side of the PostgreSQL inbox: the `receiver inbox` commands' queries and fixes,
and the bulk export and import of `receiver inbox copy` (`receiver.inbox.postgres_bulk`).

One synchronous connection in autocommit: each query is its own short transaction, and a
change of several statements runs in one explicit transaction, so it works beside running
receivers and workers. Every database error becomes a one-line `StorageError` that names the
inbox without its password; a lost connection is opened again by the next call.

A phone filter (`EventFilter.phone`) looks at each candidate event's payload, so it costs in
proportion to the events the other filters leave: a listing stops at its limit, newest
first, but a number that is nowhere reads every payload the other filters let through. Only
payloads whose text holds the number's digits in order are parsed into jsonb and walked
(`receiver_payload_has_phone`, schema 2).
"""

from __future__ import annotations

import builtins
import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from receiver.exceptions import ConfigError, StorageError
from receiver.inbox.base import InboxOptions
from receiver.inbox.models import (
    Attempt,
    EventFilter,
    EventRecord,
    Expired,
    InboxStats,
    State,
    StoredEvent,
    StoredPayload,
    only_ids,
    phone_digits,
)
from receiver.inbox.postgres import (
    NOW,
    PURGE_DELIVERIES,
    PURGE_EVENTS,
    PURGE_SCAN,
    describe_error,
)
from receiver.inbox.postgres_bulk import (
    RECORD_ATTEMPT_COLUMNS,
    RECORD_DELIVERY_COLUMNS,
    RECORD_EVENT_COLUMNS,
    export_page,
    import_records,
    record,
)
from receiver.inbox.postgres_expiry import (
    DROP_DEAD,
    ERASE,
    ERASE_COUNTS,
    PAYLOADS,
    SCRUB,
    SCRUB_SCAN,
)
from receiver.inbox.postgres_schema import (
    SCHEMA_VERSION,
    check_url,
    describe_url,
    migrate,
    schema_version,
)
from receiver.inbox.rows import DELIVERY_COLUMNS, EVENT_COLUMNS, event_ids

__all__ = ["PostgresAdmin", "migrate_postgres"]

TABLES = (
    "receiver_events",
    "receiver_deliveries",
    "receiver_attempts",
    "receiver_owners",
    "receiver_schema",
)
"""Every table of the inbox, for its size."""

CONNECT_TIMEOUT = 10
"""Seconds to wait for the server when connecting."""

PURGE_CHUNK = 2000
"""Events deleted per transaction by `purge`."""

_DELIVERY = ", ".join(f"d.{c.strip()}" for c in DELIVERY_COLUMNS.split(","))

RECENT_ATTEMPTS = f"""
SELECT x.number, x.started_at, x.duration, x.outcome, x.error, {_DELIVERY}
FROM (
    SELECT started_at + duration AS ended, event_id, subscriber, number, started_at,
           duration, outcome, error
    FROM receiver_attempts WHERE started_at + duration >= %s
    UNION ALL
    SELECT finished_at, event_id, subscriber, attempts + 1, finished_at - duration, duration,
           'done', NULL
    FROM receiver_deliveries WHERE state = 2 AND finished_at >= %s AND duration IS NOT NULL
) x
JOIN receiver_deliveries d ON d.event_id = x.event_id AND d.subscriber = x.subscriber
JOIN receiver_events e ON e.id = d.event_id
"""  # noqa: S608 - constants
"""Each attempt ended at or after a time (failed ones by `receiver_attempts_ended`, done ones
by `receiver_deliveries_done`) with its delivery; a filter's WHERE, ORDER and LIMIT follow."""


def _where(where: EventFilter, ids: list[int] | None = None) -> tuple[str, list[Any]]:
    """The conditions over `receiver_deliveries d` and `receiver_events e` for `where`
    (`TRUE` when there are none)."""
    ids = only_ids(where, ids)
    terms: list[str] = []
    params: list[Any] = []
    simple = (
        ("d.subscriber", where.subscriber),
        ("e.source", where.source),
        ("e.event_type", where.event_type),
        ("e.order_key", where.order_key),
    )
    for column, value in simple:
        if value is not None:
            terms.append(f"{column} = %s")
            params.append(value)
    if where.states:
        terms.append("d.state = ANY(%s::smallint[])")
        params.append([int(s) for s in where.states])
    if where.since is not None:
        terms.append("e.received_at >= %s")
        params.append(where.since)
    if where.until is not None:
        terms.append("e.received_at < %s")
        params.append(where.until)
    if ids is not None:
        terms.append("d.event_id = ANY(%s::bigint[])")
        params.append(ids)
    if where.with_payload:
        terms.append("octet_length(e.payload) > 0")
    if where.phone is not None:
        # Last, the costliest; parsed only when the text holds the digits in order, as the
        # SQLite inbox does (`receiver.inbox.sqlite_admin.PHONE_TERM` says why that is safe).
        digits = phone_digits(where.phone) or ""
        terms.append("e.payload LIKE %s::bytea AND receiver_payload_has_phone(e.payload, %s)")
        params.extend((("%" + "%".join(digits) + "%").encode(), digits))
    return " AND ".join(terms) or "TRUE", params


def _stored(event_row: Sequence[Any], row: Sequence[Any]) -> StoredEvent:
    """A `StoredEvent` from an events row (`EVENT_COLUMNS`) and a deliveries row
    (`DELIVERY_COLUMNS`)."""
    return StoredEvent(
        event_row[0], event_row[1], event_row[2], event_row[3], event_row[4],
        bytes(event_row[5]), State(row[2]), row[3], event_row[6], row[4], row[5], row[6], row[1],
    )  # fmt: skip


def _connect(url: str) -> Any:
    """A psycopg connection in autocommit to `url`; ConfigError without psycopg,
    StorageError when the server cannot be reached."""
    check_url(url)
    try:
        import psycopg
    except ImportError:
        raise ConfigError(
            "a postgresql:// inbox needs psycopg: pip install 'cc-webhook-receiver[postgres]'"
        ) from None
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
    except psycopg.Error as exc:
        raise StorageError(f"cannot open inbox {describe_url(url)}: {describe_error(exc)}") from exc


def migrate_postgres(url: str) -> tuple[int, int]:
    """Create or upgrade the schema of the PostgreSQL inbox at `url`; (from, to) versions."""
    import psycopg

    conn = _connect(url)
    try:
        return migrate(conn)
    except psycopg.Error as exc:
        raise StorageError(
            f"cannot migrate inbox {describe_url(url)}: {describe_error(exc)}"
        ) from exc
    finally:
        conn.close()


class PostgresAdmin:
    """Synchronous queries and fixes on one PostgreSQL inbox."""

    def __init__(self, url: str, options: InboxOptions | None = None) -> None:
        self.url = url
        self.location = describe_url(url)
        self.options = options or InboxOptions()
        self.retention = self.options.retention_days * 86400.0
        self._conn: Any = _connect(url)
        try:
            with self._errors():
                version = schema_version(self._conn)
        except BaseException:
            self._conn.close()
            raise
        if not version:
            self._conn.close()
            raise StorageError(f"no inbox at {self.location} (run `receiver inbox migrate`)")
        if version != SCHEMA_VERSION:
            self._conn.close()
            newer = version > SCHEMA_VERSION
            raise ConfigError(
                f"inbox {self.location} has schema {version}, "
                + (
                    f"written by a newer version of the receiver (this one knows {SCHEMA_VERSION})"
                    if newer
                    else f"this receiver needs {SCHEMA_VERSION}: run `receiver inbox migrate`"
                )
            )

    def __repr__(self) -> str:
        return f"PostgresAdmin({self.location!r})"

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn a database error into a one-line StorageError naming the inbox."""
        import psycopg

        try:
            yield
        except psycopg.Error as exc:
            raise StorageError(f"inbox {self.location}: {describe_error(exc)}") from exc

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        """The connection (opened again if it was lost), with errors made StorageErrors."""
        if self._conn.closed:
            self._conn = _connect(self.url)
        with self._errors():
            yield self._conn

    # -- queries ---------------------------------------------------------------------------

    def live_dispatchers(self) -> list[str]:
        """The owners (`host:pid:...`) whose dispatching lease is alive now (server clock)."""
        with self._connection() as conn:
            rows = conn.execute(
                f"SELECT owner FROM receiver_owners WHERE expires_at >= {NOW} ORDER BY owner"  # noqa: S608 - a constant
            ).fetchall()
        return [str(name) for (name,) in rows]

    def stats(self) -> InboxStats:
        """Counts by state, subscriber and source; each subscriber's oldest open delivery."""
        by_state = {s.label: 0 for s in State}
        by_subscriber: dict[str, dict[str, int]] = {}
        with self._connection() as conn, conn.transaction():
            rows = conn.execute(
                "SELECT subscriber, state, count(*) FROM receiver_deliveries"
                " GROUP BY subscriber, state"
            ).fetchall()
            for subscriber, state, count in rows:
                label = State(state).label
                by_state[label] += count
                by_subscriber.setdefault(subscriber, {s.label: 0 for s in State})[label] = count
            by_source = dict(
                conn.execute(
                    "SELECT source, count(*) FROM receiver_events GROUP BY source"
                ).fetchall()
            )
            now = time.time()
            oldest = {
                subscriber: max(0.0, now - received)
                for subscriber, received in conn.execute(
                    "SELECT d.subscriber, min(e.received_at) FROM receiver_deliveries d"
                    " JOIN receiver_events e ON e.id = d.event_id WHERE d.state IN (0, 1)"
                    " GROUP BY d.subscriber"
                ).fetchall()
            }
            events = conn.execute("SELECT count(*) FROM receiver_events").fetchone()[0]
            size = conn.execute(
                "SELECT sum(pg_total_relation_size(to_regclass(t))) FROM unnest(%s::text[]) t",
                (list(TABLES),),
            ).fetchone()[0]
        return InboxStats(
            location=self.location,
            size_bytes=None if size is None else int(size),
            events=int(events),
            by_state=by_state,
            by_subscriber=by_subscriber,
            by_source=by_source,
            oldest_open_age=oldest,
        )

    def list(self, where: EventFilter, *, limit: int = 50) -> list[StoredEvent]:
        """The newest deliveries matching `where`, newest first."""
        clause, params = _where(where)
        with self._connection() as conn:
            rows = conn.execute(
                f"SELECT {_DELIVERY} FROM receiver_deliveries d"  # noqa: S608 - fixed fragments, values bound
                f" JOIN receiver_events e ON e.id = d.event_id WHERE {clause}"
                ' ORDER BY d.event_id DESC, d.subscriber COLLATE "C" LIMIT %s',
                [*params, min(limit, 2**62)],  # a bigint
            ).fetchall()
            ids = sorted({row[0] for row in rows})
            events = {
                row[0]: row
                for row in conn.execute(
                    f"SELECT {EVENT_COLUMNS} FROM receiver_events WHERE id = ANY(%s)",  # noqa: S608 - fixed fragment
                    (ids,),
                ).fetchall()
            }
        found = [_stored(events[row[0]], row) for row in rows if row[0] in events]
        return sorted(found, key=lambda d: (-d.id, d.subscriber))

    def counts(self, where: EventFilter) -> dict[tuple[str, str], int]:
        """Deliveries matching `where` by (event type, state label)."""
        clause, params = _where(where)
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT e.event_type, d.state, count(*) FROM receiver_deliveries d"  # noqa: S608 - fixed fragments, values bound
                f" JOIN receiver_events e ON e.id = d.event_id WHERE {clause}"
                " GROUP BY e.event_type, d.state",
                params,
            ).fetchall()
        return {(event_type, State(state).label): int(n) for event_type, state, n in rows}

    def recent_attempts(
        self, since: float, where: EventFilter, limit: int = 200
    ) -> builtins.list[tuple[StoredEvent, Attempt]]:
        """Every attempt that ended at or after `since`, oldest first, of the deliveries
        matching `where`, with its delivery as it is now; at most `limit`."""
        clause, params = _where(where)
        with self._connection() as conn, conn.transaction():
            rows = conn.execute(
                f"{RECENT_ATTEMPTS} WHERE {clause}"
                ' ORDER BY x.ended, x.event_id, x.subscriber COLLATE "C", x.number LIMIT %s',
                [since, since, *params, min(limit, 2**62)],
            ).fetchall()
            events = {
                row[0]: row
                for row in conn.execute(
                    f"SELECT {EVENT_COLUMNS} FROM receiver_events WHERE id = ANY(%s)",  # noqa: S608 - fixed fragment
                    (sorted({row[5] for row in rows}),),
                ).fetchall()
            }
        return [
            (
                _stored(events[row[5]], row[5:]),
                Attempt(row[0], row[1], row[2], row[3], row[4], row[6]),
            )
            for row in rows
            if row[5] in events
        ]

    def get(self, event_id: str) -> EventRecord | None:
        """One event with its deliveries and attempt history; None if there is none."""
        number = event_ids([event_id])
        if not number:
            return None
        with self._connection() as conn, conn.transaction():
            row = conn.execute(
                f"SELECT {RECORD_EVENT_COLUMNS} FROM receiver_events WHERE id = %s",  # noqa: S608 - fixed fragment
                (number[0],),
            ).fetchone()
            if row is None:
                return None
            deliveries = conn.execute(
                f"SELECT {RECORD_DELIVERY_COLUMNS} FROM receiver_deliveries"  # noqa: S608 - constants
                ' WHERE event_id = %s ORDER BY subscriber COLLATE "C"',
                (row[0],),
            ).fetchall()
            attempts = conn.execute(
                f"SELECT {RECORD_ATTEMPT_COLUMNS} FROM receiver_attempts"  # noqa: S608 - constants
                " WHERE event_id = %s ORDER BY started_at",
                (row[0],),
            ).fetchall()
        return record(row, deliveries, attempts)

    # -- fixes -----------------------------------------------------------------------------

    def _update(
        self,
        assignments: str,
        where: EventFilter,
        ids: Sequence[str] | None,
        values: Sequence[Any] = (),
    ) -> int:
        """Set `assignments` (taking `values`) on every delivery matching `where` and `ids`,
        in one statement, telling the dispatchers of the subscribers that have deliveries
        pending again; how many."""
        clause, params = _where(where, event_ids(ids))
        with self._connection() as conn:
            cursor = conn.execute(
                "WITH released AS (UPDATE receiver_deliveries d"  # noqa: S608 - fixed fragments, values bound
                f" SET {assignments} FROM receiver_events e WHERE e.id = d.event_id AND {clause}"
                " RETURNING d.subscriber, d.state)"
                " SELECT count(*), pg_notify('receiver_deliveries',"
                " string_agg(DISTINCT subscriber, ',') FILTER (WHERE state = 0)) FROM released",
                [*values, *params],
            )
            row = cursor.fetchone()
            return int(row[0]) if row else 0

    def replay(
        self, where: EventFilter, *, ids: Sequence[str] | None = None, done_too: bool = False
    ) -> int:
        """Make matching dead (and with `done_too` done) deliveries pending again, keeping
        their history; how many. Workers are woken by the inbox's notification."""
        states = (State.DEAD, State.DONE) if done_too else (State.DEAD,)
        chosen = tuple(s for s in where.states if s in states) if where.states else states
        if not chosen:
            return 0
        return self._update(
            "state = 0, attempts = 0, owner = NULL, finished_at = NULL, duration = NULL,"
            " next_attempt_at = %s",
            replace(where, states=chosen, with_payload=True),
            ids,
            (time.time(),),
        )

    def discard(self, where: EventFilter, *, ids: Sequence[str] | None = None) -> int:
        """Give up on matching dead letters; how many."""
        return self._update("state = 4", replace(where, states=(State.DEAD,)), ids)

    def purge(self, *, now: float | None = None) -> int:
        """Delete events past retention whose every delivery is finished; how many."""
        cutoff = (time.time() if now is None else now) - self.retention
        removed, after = 0, 0
        while True:
            with self._connection() as conn, conn.transaction():
                scanned = conn.execute(
                    PURGE_SCAN, {"after": after, "chunk": PURGE_CHUNK}
                ).fetchall()
                if not scanned:
                    return removed
                old = [row[0] for row in scanned if row[1] < cutoff]
                conn.execute(PURGE_DELIVERIES, (old,))
                removed += int(conn.execute(PURGE_EVENTS, (old,)).rowcount)
            after = scanned[-1][0]
            if scanned[-1][1] >= cutoff or len(scanned) < PURGE_CHUNK:
                return removed

    def payloads(self, after: int, limit: int = 1000) -> builtins.list[StoredPayload]:
        """The events after id `after` that still have their payload, by id: (id, order key,
        payload); at most `limit`. What `receiver inbox erase` searches."""
        with self._connection() as conn:
            rows = conn.execute(PAYLOADS, (after, limit)).fetchall()
        return [StoredPayload(int(r[0]), r[1], r[2], r[3], bytes(r[4])) for r in rows]

    def erase(self, ids: Sequence[int]) -> dict[str, int]:
        """Remove the payload, headers and error texts of events `ids`, keeping their dedup
        keys; their open and dead deliveries are discarded. Returns their deliveries by state
        before, by label."""
        found: dict[str, int] = {}
        with self._connection() as conn, conn.transaction():
            wanted = list(ids)
            for state, count in conn.execute(ERASE_COUNTS, (wanted,)).fetchall():
                found[State(state).label] = int(count)
            conn.execute(ERASE, {"ids": wanted})
        return found

    def expire(self, *, now: float | None = None) -> Expired:
        """Discard dead letters past dead retention; remove old finished events' payloads."""
        now = time.time() if now is None else now
        with self._connection() as conn, conn.transaction():
            rows = conn.execute(
                DROP_DEAD, (now - self.options.dead_retention_days * 86400.0,)
            ).fetchall()
        dropped = sorted((int(e), str(s)) for e, s in rows)
        cutoff = now - self.options.payload_retention_days * 86400.0
        scrubbed, after = 0, 0
        while True:
            with self._connection() as conn, conn.transaction():
                scanned = conn.execute(
                    SCRUB_SCAN, {"after": after, "chunk": PURGE_CHUNK}
                ).fetchall()
                if not scanned:
                    break
                old = [row[0] for row in scanned if row[1] < cutoff and row[2]]
                if old:
                    scrubbed += int(conn.execute(SCRUB, (old,)).fetchone()[0])
            after = scanned[-1][0]
            if scanned[-1][1] >= cutoff or len(scanned) < PURGE_CHUNK:
                break
        return Expired(scrubbed, tuple(dropped))

    # -- `receiver inbox copy` --------------------------------------------------------------

    def identity(self) -> tuple[Any, ...]:
        """What tells this inbox from another: the server (its address, port and start
        time), the database and the schema the tables are found in."""
        with self._connection() as conn:
            row = conn.execute(
                "SELECT inet_server_addr()::text, inet_server_port(),"
                " pg_postmaster_start_time()::text, current_database(),"
                " (SELECT relnamespace::regnamespace::text FROM pg_class"
                "  WHERE oid = to_regclass('receiver_events'))"
            ).fetchone()
        return tuple(row)

    def iter_export(self, *, now: float | None = None) -> Iterator[EventRecord]:
        """Every event `purge` would keep (one with a delivery pending, in progress or dead,
        or received within retention), oldest first, with its deliveries and history."""
        cutoff = (time.time() if now is None else now) - self.retention
        after = 0
        while True:
            with self._connection() as conn:
                page = export_page(conn, after, cutoff)
            if not page:
                return
            yield from page
            after = page[-1].id

    def import_events(self, records: Sequence[EventRecord]) -> builtins.list[bool]:
        """Store `records` (from another inbox's export) in one transaction, in their order,
        keeping their times, headers, states, attempts counts, errors and history; a delivery
        in progress becomes pending. For each, True if stored, False if an event with its
        source and dedup key was here already (then nothing of it is stored)."""
        if not records:
            return []
        with self._connection() as conn:
            return import_records(conn, records)

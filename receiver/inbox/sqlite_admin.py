"""The admin side of the SQLite inbox: the `receiver inbox` commands' queries and fixes.

It opens its own connection, so it works beside a running receiver: its writes wait for the
receiver's writer (busy timeout), which commits in milliseconds.

A phone filter (`EventFilter.phone`) looks at each candidate event's payload (`PHONE_TERM`),
so it costs in proportion to the events the other filters leave: a listing stops at its
limit, newest first, but a number that is nowhere reads every payload the other filters let
through: about 1 µs each, and some 25 µs for those whose text holds the number's digits in
order, which are parsed (json_valid, then json_tree).
"""

from __future__ import annotations

import builtins
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from receiver.exceptions import StorageError
from receiver.inbox.base import InboxOptions
from receiver.inbox.models import (
    PHONE_SEPARATORS,
    Attempt,
    DeliveryRecord,
    EventFilter,
    EventRecord,
    Expired,
    InboxStats,
    State,
    StoredEvent,
    StoredPayload,
    decode_headers,
    only_ids,
    phone_digits,
)
from receiver.inbox.rows import delivery, event_ids
from receiver.inbox.sqlite_expiry import drop_dead, erase_events, scrub_chunk
from receiver.inbox.sqlite_schema import (
    DELIVERY_COLUMNS,
    EVENT_COLUMNS,
    chunks,
    connect,
    purge_chunk,
    with_events,
)
from receiver.inbox.sqlite_writer import missing_folder

__all__ = ["SqliteAdmin"]


def _without_separators(expression: str) -> str:
    """SQL for `expression` less every character of `PHONE_SEPARATORS` and leading `+`s
    (`phone_digits`, but for checking what is left)."""
    for character in PHONE_SEPARATORS:
        expression = f"replace({expression}, char({ord(character)}), '')"
    return f"ltrim({expression}, '+')"


_T = TypeVar("_T")

_PAYLOAD = "CAST(e.payload AS TEXT)"
PHONE_TERM = (
    f"{_PAYLOAD} LIKE ? AND EXISTS (SELECT 1 FROM json_tree(CASE WHEN json_valid({_PAYLOAD})"  # noqa: S608 - constants
    f" THEN {_PAYLOAD} ELSE '[]' END) j"
    f" WHERE j.type = 'text' AND {_without_separators('j.atom')} = ?"
    " OR j.type = 'integer' AND CAST(j.atom AS TEXT) = ?)"
)
"""Whether event `e`'s payload holds the phone number whose digits are bound (`phone_params`):
a string value with those digits (`phone_digits`), or an integer written as them. A payload
that is not JSON holds none.

Parsing a payload costs far more than looking at it, so it is parsed only when its text holds
the number's digits in order (`LIKE '%3%5%8%...%'`). A payload that holds the number always
passes: each digit is written as itself or escaped as `\\u0030`-`\\u0039`, which ends in it."""


def phone_params(phone: str) -> tuple[str, str, str]:
    """The parameters of `PHONE_TERM` for the phone filter `phone`."""
    digits = phone_digits(phone) or ""
    return "%" + "%".join(digits) + "%", digits, digits


_DELIVERY = ", ".join(f"d.{c.strip()}" for c in DELIVERY_COLUMNS.split(","))

RECENT_ATTEMPTS = f"""
SELECT x.number, x.started_at, x.duration, x.outcome, x.error, {_DELIVERY}
FROM (
    SELECT started_at + duration AS ended, event_id, subscriber, number, started_at,
           duration, outcome, error
    FROM attempts WHERE started_at + duration >= ?
    UNION ALL
    SELECT finished_at, event_id, subscriber, attempts + 1, finished_at - duration, duration,
           'done', NULL
    FROM deliveries WHERE state = 2 AND finished_at >= ? AND duration IS NOT NULL
) x
JOIN deliveries d ON d.event_id = x.event_id AND d.subscriber = x.subscriber
JOIN events e ON e.id = d.event_id
"""  # noqa: S608 - constants
"""Each attempt ended at or after a time (failed ones by the `attempts_ended` index, done
ones by `deliveries_done`) with its delivery; a filter's WHERE, ORDER and LIMIT follow."""


def _where(where: EventFilter, ids: list[int] | None = None) -> tuple[str, list[Any]]:
    """The WHERE clause over `deliveries d JOIN events e` for `where`."""
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
            terms.append(f"{column} = ?")
            params.append(value)
    if where.states:
        terms.append(f"d.state IN ({','.join('?' * len(where.states))})")
        params.extend(int(s) for s in where.states)
    if where.since is not None:
        terms.append("e.received_at >= ?")
        params.append(where.since)
    if where.until is not None:
        terms.append("e.received_at < ?")
        params.append(where.until)
    if ids is not None:
        terms.append(f"d.event_id IN ({','.join('?' * len(ids))})" if ids else "0")
        params.extend(ids)
    if where.with_payload:
        terms.append("length(e.payload) > 0")
    if where.phone is not None:
        terms.append(PHONE_TERM)  # last: the costliest
        params.extend(phone_params(where.phone))
    return ("WHERE " + " AND ".join(terms)) if terms else "", params


class SqliteAdmin:
    """Synchronous queries and fixes on one inbox file."""

    def __init__(self, path: Path, options: InboxOptions | None = None) -> None:
        if not path.exists():
            missing = missing_folder(path)
            raise StorageError(f"no inbox at {path}" + (f": {missing}" if missing else ""))
        self.path = path
        self.options = options or InboxOptions()
        self.retention = self.options.retention_days * 86400.0
        # Not `private`: it may run in a process that serves the same file (making the files
        # private is the serving process's job, before it opens them).
        self.conn = connect(path, busy_timeout=5.0, private=False)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def live_dispatchers(self) -> list[str]:
        """The owners (`host:pid:...`) whose dispatching lease is alive now."""
        rows = self.conn.execute(
            "SELECT owner FROM owners WHERE expires_at >= ? ORDER BY owner", (time.time(),)
        )
        return [str(name) for (name,) in rows]

    def stats(self) -> InboxStats:
        """Counts by state, subscriber and source; each subscriber's oldest open delivery."""
        conn = self.conn
        by_state = {s.label: 0 for s in State}
        by_subscriber: dict[str, dict[str, int]] = {}
        rows = conn.execute(
            "SELECT subscriber, state, count(*) FROM deliveries GROUP BY subscriber, state"
        )
        for subscriber, state, count in rows:
            label = State(state).label
            by_state[label] += count
            by_subscriber.setdefault(subscriber, {s.label: 0 for s in State})[label] = count
        by_source = dict(conn.execute("SELECT source, count(*) FROM events GROUP BY source"))
        now = time.time()
        oldest = {
            subscriber: max(0.0, now - received)
            for subscriber, received in conn.execute(
                "SELECT d.subscriber, min(e.received_at) FROM deliveries d JOIN events e"
                " ON e.id = d.event_id WHERE d.state < 2 GROUP BY d.subscriber"
            )
        }
        size = sum(
            p.stat().st_size
            for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
            if p.exists()
        )
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        return InboxStats(
            location=str(self.path),
            size_bytes=size,
            events=events,
            by_state=by_state,
            by_subscriber=by_subscriber,
            by_source=by_source,
            oldest_open_age=oldest,
        )

    def list(self, where: EventFilter, *, limit: int = 50) -> list[StoredEvent]:
        """The newest deliveries matching `where`, newest first."""
        clause, params = _where(where)
        rows = self.conn.execute(
            f"SELECT {_DELIVERY} FROM deliveries d JOIN events e ON e.id = d.event_id {clause}"  # noqa: S608 - fixed fragments, values bound
            " ORDER BY d.event_id DESC, d.subscriber LIMIT ?",
            [*params, limit],
        ).fetchall()
        found = with_events(self.conn, rows)
        return sorted(found, key=lambda d: (-d.id, d.subscriber))

    def counts(self, where: EventFilter) -> dict[tuple[str, str], int]:
        """Deliveries matching `where` by (event type, state label)."""
        clause, params = _where(where)
        rows = self.conn.execute(
            "SELECT e.event_type, d.state, count(*) FROM deliveries d"  # noqa: S608 - fixed fragments, values bound
            f" JOIN events e ON e.id = d.event_id {clause} GROUP BY e.event_type, d.state",
            params,
        )
        return {(event_type, State(state).label): count for event_type, state, count in rows}

    def recent_attempts(
        self, since: float, where: EventFilter, limit: int = 200
    ) -> builtins.list[tuple[StoredEvent, Attempt]]:
        """Every attempt that ended at or after `since`, oldest first, of the deliveries
        matching `where`, with its delivery as it is now; at most `limit`."""
        clause, params = _where(where)
        rows = self.conn.execute(
            f"{RECENT_ATTEMPTS} {clause}"
            " ORDER BY x.ended, x.event_id, x.subscriber, x.number LIMIT ?",
            [since, since, *params, limit],
        ).fetchall()
        events: dict[int, Any] = {}
        for part in chunks(sorted({row[5] for row in rows})):
            marks = ",".join("?" * len(part))
            for event_row in self.conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE id IN ({marks})",  # noqa: S608 - placeholders
                part,
            ):
                events[event_row[0]] = event_row
        return [
            (
                delivery(events[row[5]], row[5:]),
                Attempt(row[0], row[1], row[2], row[3], row[4], row[6]),
            )
            for row in rows
            if row[5] in events
        ]

    def get(self, event_id: str) -> EventRecord | None:
        """One event with its deliveries and attempt history."""
        number = event_ids([event_id])
        if not number:
            return None
        row = self.conn.execute(
            f"SELECT {EVENT_COLUMNS}, headers FROM events WHERE id = ?",  # noqa: S608 - fixed fragment
            (number[0],),
        ).fetchone()
        if row is None:
            return None
        deliveries = tuple(
            DeliveryRecord(
                subscriber=d[0],
                state=State(d[1]),
                attempts=d[2],
                next_attempt_at=d[3],
                finished_at=d[4],
                last_error=d[5],
                duration=d[6],
            )
            for d in self.conn.execute(
                "SELECT subscriber, state, attempts, next_attempt_at, finished_at, last_error,"
                " duration FROM deliveries WHERE event_id = ? ORDER BY subscriber",
                (row[0],),
            )
        )
        history = [
            Attempt(
                number=a[1],
                started_at=a[2],
                duration=a[3],
                outcome=a[4],
                error=a[5],
                subscriber=a[0],
            )
            for a in self.conn.execute(
                "SELECT subscriber, number, started_at, duration, outcome, error FROM attempts"
                " WHERE event_id = ? ORDER BY started_at",
                (row[0],),
            )
        ]
        for d in deliveries:
            if d.state == State.DONE and d.finished_at is not None and d.duration is not None:
                history.append(
                    Attempt(
                        number=d.attempts + 1,
                        started_at=d.finished_at - d.duration,
                        duration=d.duration,
                        outcome="done",
                        error=None,
                        subscriber=d.subscriber,
                    )
                )
        history.sort(key=lambda a: a.started_at)
        return EventRecord(
            id=row[0], source=row[1], dedup_key=row[2], event_type=row[3], order_key=row[4],
            payload=bytes(row[5]), received_at=row[6], deliveries=deliveries,
            history=tuple(history), headers=decode_headers(row[7]),
        )  # fmt: skip

    def _update(
        self, sql: str, where: EventFilter, ids: Sequence[str] | None, values: tuple[Any, ...] = ()
    ) -> int:
        """Run `sql` (an UPDATE of deliveries taking `values`, then the event id and the
        subscriber) for every delivery matching `where` and `ids`, in one transaction; how
        many."""
        clause, params = _where(where, event_ids(ids))
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            keys = conn.execute(
                f"SELECT d.event_id, d.subscriber FROM deliveries d JOIN events e"  # noqa: S608 - fixed fragments
                f" ON e.id = d.event_id {clause}",
                params,
            ).fetchall()
            count = 0
            for part in chunks(keys):
                count += conn.executemany(sql, [(*values, *key) for key in part]).rowcount
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return count

    def replay(
        self, where: EventFilter, *, ids: Sequence[str] | None = None, done_too: bool = False
    ) -> int:
        """Make matching dead (and with `done_too` done) deliveries pending again."""
        states = (State.DEAD, State.DONE) if done_too else (State.DEAD,)
        chosen = tuple(s for s in where.states if s in states) if where.states else states
        if not chosen:
            return 0
        scoped = replace(where, states=chosen, with_payload=True)
        return self._update(
            "UPDATE deliveries SET state = 0, attempts = 0, owner = NULL, finished_at = NULL,"
            " duration = NULL, next_attempt_at = ? WHERE event_id = ? AND subscriber = ?",
            scoped,
            ids,
            (time.time(),),
        )

    def discard(self, where: EventFilter, *, ids: Sequence[str] | None = None) -> int:
        """Give up on matching dead letters; how many."""
        scoped = replace(where, states=(State.DEAD,))
        return self._update(
            "UPDATE deliveries SET state = 4 WHERE event_id = ? AND subscriber = ?", scoped, ids
        )

    def purge(self, *, now: float | None = None) -> int:
        """Delete events past retention whose every delivery is finished; how many."""
        cutoff = (time.time() if now is None else now) - self.retention
        return sum(self._chunks(lambda conn, after: purge_chunk(conn, after, 2000, cutoff)))

    def expire(self, *, now: float | None = None) -> Expired:
        """Discard dead letters past dead retention; remove old finished events' payloads."""
        now = time.time() if now is None else now
        dead_cutoff = now - self.options.dead_retention_days * 86400.0
        dropped = self._write(lambda conn: drop_dead(conn, dead_cutoff))
        cutoff = now - self.options.payload_retention_days * 86400.0
        scrubbed = sum(self._chunks(lambda conn, after: scrub_chunk(conn, after, 2000, cutoff)))
        return Expired(scrubbed, tuple(dropped))

    def payloads(self, after: int, limit: int = 1000) -> builtins.list[StoredPayload]:
        """The events after id `after` that still have their payload, by id: (id, order key,
        payload); at most `limit`. What `receiver inbox erase` searches."""
        rows = self.conn.execute(
            "SELECT id, source, dedup_key, order_key, payload FROM events"
            " WHERE id > ? AND length(payload) > 0"
            " ORDER BY id LIMIT ?",
            (after, limit),
        ).fetchall()
        return [StoredPayload(int(r[0]), r[1], r[2], r[3], bytes(r[4])) for r in rows]

    def erase(self, ids: Sequence[int]) -> dict[str, int]:
        """Remove the payload, headers and error texts of events `ids`, keeping their dedup
        keys; their open and dead deliveries are discarded (nothing is left to deliver).
        Returns their deliveries by state before, by label."""

        def op(conn: sqlite3.Connection) -> dict[str, int]:
            found: dict[str, int] = {}
            for part in chunks(list(ids)):
                marks = ",".join("?" * len(part))
                for state, count in conn.execute(
                    f"SELECT state, count(*) FROM deliveries WHERE event_id IN ({marks})"  # noqa: S608 - placeholders
                    " GROUP BY state",
                    part,
                ):
                    label = State(state).label
                    found[label] = found.get(label, 0) + int(count)
                conn.execute(
                    f"UPDATE deliveries SET state = 4, owner = NULL WHERE event_id IN ({marks})"  # noqa: S608 - placeholders
                    " AND state IN (0, 1, 3)",
                    part,
                )
            erase_events(conn, list(ids))
            return found

        return self._write(op)

    def _chunks(
        self, op: Callable[[sqlite3.Connection, int], tuple[int, int, bool]]
    ) -> Iterator[int]:
        """Each count of `op(conn, after)` run chunk after chunk, each in a write
        transaction, until it says it is finished."""
        after, finished = 0, False
        while not finished:
            count, after, finished = self._write(lambda conn: op(conn, after))  # noqa: B023 - run at once
            yield count

    def _write(self, op: Callable[[sqlite3.Connection], _T]) -> _T:
        """`op(conn)` in one write transaction."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            result = op(self.conn)
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        return result

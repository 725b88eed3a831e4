"""Whole inboxes: create or upgrade one's schema (`receiver inbox migrate`), and copy one into
another of any backend (`receiver inbox copy`), as when a single-machine setup on SQLite
moves to PostgreSQL shared by several receivers and workers.

What a copy takes: every event the source still needs, which is every event `purge` would
keep: those with a delivery pending, in progress or dead (dead ones with their attempt
history), and every other one received within retention, done or discarded or without
subscribers, so that its dedup key keeps recognising late duplicates in the destination.
Each keeps its source, dedup key (so its digest), type, order key, payload, time of arrival
and request headers, and each delivery its subscriber, state, attempts count, next attempt,
last error, finish time and duration; a delivery in progress becomes pending (nobody holds
it in the destination). Events go in arrival order, so the destination hands each call's
events out in the order they arrived; they get the destination's ids. An event whose source
and dedup key the destination already has is skipped whole, and counted.

Stop the receivers and workers on the source first: what they store or finish during the
copy may be missed, and a delivery would be handled from both inboxes. The copy can be run
again: whatever already arrived is skipped as a duplicate.

The source is read by its backend's bulk export (`iter_export`: PostgreSQL; a SQLite file
is read here directly, as the admin interface lists no events without deliveries), or by
the admin interface (`list` and `get`, which see only events with deliveries: enough for an
in-memory inbox). The destination is written by its backend's bulk import
(`import_events`: PostgreSQL; SQLite here directly), in batches of one transaction each.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from receiver.exceptions import ConfigError, StorageError
from receiver.inbox.base import InboxAdmin, InboxOptions, backend_for, open_admin
from receiver.inbox.models import (
    Attempt,
    DeliveryRecord,
    EventFilter,
    EventRecord,
    State,
    decode_headers,
    encode_headers,
)

__all__ = ["CopyReport", "copy_inbox", "migrate_inbox"]

BATCH_EVENTS = 500
"""Most events imported per transaction."""

BATCH_BYTES = 8 * 1024 * 1024
"""Most payload bytes imported per transaction."""

PROGRESS_EVERY = 10_000
"""Events between two progress reports."""

OPEN_STATES = (State.PENDING, State.IN_PROGRESS, State.DEAD)
"""Deliveries that keep their event from being purged, whatever its age."""

_SQLITE = "receiver.inbox.sqlite"
_POSTGRES = "receiver.inbox.postgres"


class Exporter(Protocol):
    """An inbox that reads out what a copy takes."""

    def iter_export(self, *, now: float | None = None) -> Iterator[EventRecord]:
        """Every event `purge` would keep, oldest first, with deliveries and history."""
        ...


class Importer(Protocol):
    """An inbox that stores what another exported."""

    def import_events(self, records: Sequence[EventRecord]) -> list[bool]:
        """Store `records` in one transaction, in order; for each, False if it was a duplicate."""
        ...


@dataclass(slots=True)
class CopyReport:
    """What a copy did."""

    source: str
    destination: str
    events: int = 0
    """Events copied."""
    duplicates: int = 0
    """Events skipped: the destination had their source and dedup key already."""
    deliveries: dict[str, int] = field(default_factory=lambda: {s.label: 0 for s in State})
    """Deliveries copied, by their state in the destination."""
    attempts: int = 0
    """Failed attempts copied into the histories."""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready mapping."""
        return {
            "source": self.source,
            "destination": self.destination,
            "events": self.events,
            "duplicates": self.duplicates,
            "deliveries": self.deliveries,
            "attempts": self.attempts,
            "seconds": round(self.seconds, 3),
        }


# -- migrate ---------------------------------------------------------------------------------


def migrate_inbox(url: str) -> tuple[int, int]:
    """Create or upgrade the schema of the inbox at `url`; its (from, to) versions.

    A SQLite file is created if missing (its folder must exist), and upgraded in place as
    opening it does; a PostgreSQL database gets the inbox's tables (the database must exist).
    """
    module = backend_for(url).module
    if module == _POSTGRES:
        from receiver.inbox.postgres_admin import migrate_postgres

        return migrate_postgres(url)
    if module == _SQLITE:
        from receiver.inbox.sqlite_schema import SCHEMA_VERSION, connect, inbox_path

        path = inbox_path(url)
        before = _sqlite_version(path)
        connect(path, private=before == 0).close()
        return before, SCHEMA_VERSION
    raise ConfigError(f"inbox {url}: nothing to migrate (it has no stored schema)")


def _sqlite_version(path: Path) -> int:
    """The schema version of the SQLite inbox at `path`; 0 if there is no file."""
    if not path.exists():
        return 0
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open inbox {path}: {exc}") from exc
    return version


# -- copy ------------------------------------------------------------------------------------


def copy_inbox(
    source: str,
    destination: str,
    *,
    retention_days: float = 7.0,
    progress: Callable[[CopyReport], None] | None = None,
    now: float | None = None,
) -> CopyReport:
    """Copy what `source` still needs into `destination` (see the module docstring).

    The destination's schema is created or upgraded first. `progress` is called with the
    report so far every `PROGRESS_EVERY` events. ConfigError when both are the same inbox or
    the destination cannot take a copy; StorageError when either fails.
    """
    started = time.monotonic()
    options = InboxOptions(retention_days=retention_days)
    with contextlib.ExitStack() as stack:
        exporter, source_id = _open_source(source, options, stack)
        report = CopyReport(source=_describe(source), destination=_describe(destination))
        if backend_for(destination).module in (_SQLITE, _POSTGRES):
            migrate_inbox(destination)
        importer, destination_id = _open_destination(destination, options, stack)
        if source_id == destination_id:
            raise ConfigError(
                f"inbox copy: {report.source} and {report.destination} are the same inbox"
            )
        batch: list[EventRecord] = []
        size = 0
        for record in exporter.iter_export(now=now):
            batch.append(record)
            size += len(record.payload)
            if len(batch) >= BATCH_EVENTS or size >= BATCH_BYTES:
                _store(importer, batch, report, started, progress)
                batch, size = [], 0
        _store(importer, batch, report, started, progress)
    report.seconds = time.monotonic() - started
    return report


def _store(
    importer: Importer,
    batch: list[EventRecord],
    report: CopyReport,
    started: float,
    progress: Callable[[CopyReport], None] | None,
) -> None:
    """Import one batch and count it in `report`."""
    if not batch:
        return
    before = report.events + report.duplicates
    for record, stored in zip(batch, importer.import_events(batch), strict=True):
        if not stored:
            report.duplicates += 1
            continue
        report.events += 1
        for d in record.deliveries:
            state = State.PENDING if d.state == State.IN_PROGRESS else d.state
            report.deliveries[state.label] += 1
        report.attempts += sum(1 for a in record.history if a.outcome != "done")
    after = report.events + report.duplicates
    if progress is not None and after // PROGRESS_EVERY > before // PROGRESS_EVERY:
        report.seconds = time.monotonic() - started
        progress(report)


def _describe(url: str) -> str:
    from receiver.inbox.base import describe_inbox

    return describe_inbox(url)


def _open_source(
    url: str, options: InboxOptions, stack: contextlib.ExitStack
) -> tuple[Exporter, object]:
    """The exporter of inbox `url` and what tells it from another inbox."""
    module = backend_for(url).module
    if module == _SQLITE:
        sqlite = _SqliteFile.open(url, options, create=False)
        stack.callback(sqlite.close)
        return sqlite, sqlite.identity()
    admin = open_admin(url, options)
    stack.callback(admin.close)
    exporter: Exporter = (
        admin  # type: ignore[assignment]  # it has iter_export
        if hasattr(admin, "iter_export")
        else _AdminExport(admin, options)
    )
    return exporter, _identity(url, admin)


def _open_destination(
    url: str, options: InboxOptions, stack: contextlib.ExitStack
) -> tuple[Importer, object]:
    """The importer of inbox `url` and what tells it from another inbox."""
    module = backend_for(url).module
    if module == _SQLITE:
        sqlite = _SqliteFile.open(url, options, create=True)
        stack.callback(sqlite.close)
        return sqlite, sqlite.identity()
    admin = open_admin(url, options)
    stack.callback(admin.close)
    if not hasattr(admin, "import_events"):
        raise ConfigError(f"inbox copy: cannot copy into {_describe(url)} (no bulk import)")
    importer: Importer = admin  # type: ignore[assignment]  # checked just above
    return importer, _identity(url, admin)


def _identity(url: str, admin: InboxAdmin) -> object:
    """What tells the inbox of `admin` from another: its server, database and schema when
    the backend says (`identity()`), else its URL (a fresh object for an unnamed memory
    store, which no other URL reaches)."""
    identity = getattr(admin, "identity", None)
    if identity is not None:
        return (backend_for(url).module, identity())
    if url.rstrip("/").endswith(":"):
        return object()
    return (backend_for(url).module, url)


class _AdminExport:
    """An export through the admin interface: every event with a delivery (`list`), each
    read whole (`get`). Events without deliveries are not listed, so not copied."""

    def __init__(self, admin: InboxAdmin, options: InboxOptions) -> None:
        self.admin = admin
        self.retention = options.retention_days * 86400.0

    def iter_export(self, *, now: float | None = None) -> Iterator[EventRecord]:
        cutoff = (time.time() if now is None else now) - self.retention
        ids = sorted({d.id for d in self.admin.list(EventFilter(), limit=sys.maxsize)})
        for event_id in ids:
            record = self.admin.get(str(event_id))
            if record is not None and _needed(record, cutoff):
                yield record


def _needed(record: EventRecord, cutoff: float) -> bool:
    """Whether `purge` would keep `record`."""
    return record.received_at >= cutoff or any(d.state in OPEN_STATES for d in record.deliveries)


class _SqliteFile:
    """A SQLite inbox file read and written directly, as the copy needs it."""

    def __init__(self, path: Path, conn: sqlite3.Connection, options: InboxOptions) -> None:
        self.path = path
        self.conn = conn
        self.retention = options.retention_days * 86400.0

    @classmethod
    def open(cls, url: str, options: InboxOptions, *, create: bool) -> _SqliteFile:
        """The file of `url`; a source must exist, a destination is created if missing."""
        from receiver.inbox.sqlite_schema import connect, inbox_path

        path = inbox_path(url)
        if not create and not path.exists():
            raise StorageError(f"no inbox at {path}")
        # A new destination is made private as a receiver makes its inbox; a source is left
        # as it is (a process may have it open: see `connect`).
        private = create and not path.exists()
        return cls(path, connect(path, busy_timeout=5.0, private=private), options)

    def close(self) -> None:
        self.conn.close()

    def identity(self) -> object:
        """The file's device and inode."""
        stat = os.stat(self.path)
        return (_SQLITE, stat.st_dev, stat.st_ino)

    def iter_export(self, *, now: float | None = None) -> Iterator[EventRecord]:
        """Every event `purge` would keep, oldest first, with deliveries and history."""
        cutoff = (time.time() if now is None else now) - self.retention
        after = 0
        while True:
            try:
                page = self._page(after)
            except sqlite3.Error as exc:
                raise StorageError(f"cannot read inbox {self.path}: {exc}") from exc
            if not page:
                return
            after = page[-1].id
            yield from (record for record in page if _needed(record, cutoff))

    def _page(self, after: int) -> list[EventRecord]:
        """The (up to 1000) events after id `after`, whole."""
        conn = self.conn
        events = conn.execute(
            "SELECT id, source, dedup_key, event_type, order_key, payload, received_at, headers"
            " FROM events WHERE id > ? ORDER BY id LIMIT 1000",
            (after,),
        ).fetchall()
        if not events:
            return []
        first, last = events[0][0], events[-1][0]
        deliveries: dict[int, list[DeliveryRecord]] = {}
        for d in conn.execute(
            "SELECT event_id, subscriber, state, attempts, next_attempt_at, finished_at,"
            " last_error, duration FROM deliveries WHERE event_id BETWEEN ? AND ?"
            " ORDER BY event_id, subscriber",
            (first, last),
        ):
            deliveries.setdefault(d[0], []).append(DeliveryRecord(d[1], State(d[2]), *d[3:]))
        history: dict[int, list[Attempt]] = {}
        for a in conn.execute(
            "SELECT event_id, number, started_at, duration, outcome, error, subscriber"
            " FROM attempts WHERE event_id BETWEEN ? AND ? ORDER BY started_at",
            (first, last),
        ):
            history.setdefault(a[0], []).append(Attempt(*a[1:]))
        return [
            EventRecord(
                id=row[0],
                source=row[1],
                dedup_key=row[2],
                event_type=row[3],
                order_key=row[4],
                payload=bytes(row[5]),
                received_at=row[6],
                deliveries=tuple(deliveries.get(row[0], ())),
                history=tuple(history.get(row[0], ())),
                headers=decode_headers(row[7]),
            )
            for row in events
        ]

    def import_events(self, records: Sequence[EventRecord]) -> list[bool]:
        """Store `records` in one transaction, in order; for each, False if a duplicate."""
        from receiver.inbox.models import NewEvent
        from receiver.inbox.sqlite_schema import INSERT, INSERT_ATTEMPT, insert_params

        conn, stored = self.conn, []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for r in records:
                event = NewEvent(
                    r.source, r.dedup_key, r.event_type, r.order_key, r.payload,
                    encode_headers(r.headers),
                )  # fmt: skip
                cursor = conn.execute(INSERT, insert_params(event, r.received_at))
                stored.append(cursor.rowcount == 1)
                if cursor.rowcount != 1:
                    continue
                event_id = cursor.lastrowid
                conn.executemany(
                    "INSERT INTO deliveries (event_id, subscriber, state, attempts,"
                    " next_attempt_at, last_error, finished_at, duration)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [_delivery_row(event_id, d) for d in r.deliveries],
                )
                conn.executemany(
                    INSERT_ATTEMPT,
                    [
                        (event_id, a.subscriber, a.number, a.started_at, a.duration, a.outcome,
                         a.error)
                        for a in r.history
                        if a.outcome != "done"
                    ],
                )  # fmt: skip
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StorageError(f"cannot write inbox {self.path}: {exc}") from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return stored


def _delivery_row(event_id: Any, d: DeliveryRecord) -> tuple[Any, ...]:
    state = State.PENDING if d.state == State.IN_PROGRESS else d.state
    return (
        event_id, d.subscriber, int(state), d.attempts, d.next_attempt_at, d.last_error,
        d.finished_at, d.duration,
    )  # fmt: skip

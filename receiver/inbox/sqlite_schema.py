"""The SQLite inbox's file: its schema and upgrades, and the queries the serving and the admin
side share.

An event is one row of `events`, deduplicated by a unique 16-byte digest of its source and
dedup key, with its request's headers (`NewEvent.headers`); each subscriber that wants it has
one row of `deliveries` (state, attempts, next attempt, lease holder, last error, duration),
and each failed attempt one row of `attempts`.

Two indexes serve `InboxAdmin.recent_attempts`: failed attempts by when they ended
(`started_at + duration`) and done deliveries by `finished_at`. Each costs one index entry per
failed attempt or per delivery done; nothing on the request path.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from receiver.exceptions import ConfigError, StorageError
from receiver.inbox.files import make_private
from receiver.inbox.models import Attempt, DeliveryKey, NewEvent, StoredEvent
from receiver.inbox.rows import DELIVERY_COLUMNS, EVENT_COLUMNS, delivery, digest
from receiver.inbox.sqlite_writer import log, missing_folder

__all__ = [
    "CLAIM",
    "DELIVERY_COLUMNS",
    "EVENT_COLUMNS",
    "INSERT",
    "INSERT_ATTEMPT",
    "INSERT_DELIVERY",
    "SCHEMA_VERSION",
    "RecentEvents",
    "attempt_row",
    "chunks",
    "connect",
    "delivery",
    "digest",
    "inbox_path",
    "insert_params",
    "purge_chunk",
    "with_events",
]

SCHEMA_VERSION = 4
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    -- AUTOINCREMENT: an id is never used twice, even once its event was purged, so an id an
    -- operator or a cache holds always means the same event.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    digest BLOB NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    order_key TEXT,
    payload BLOB NOT NULL,
    received_at REAL NOT NULL,
    -- Since schema 4: the request's headers less credentials (JSON pairs), or NULL.
    headers BLOB
);
CREATE TABLE IF NOT EXISTS deliveries (
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
-- Only open deliveries are indexed by subscriber, so the index stays small however much is kept.
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries (subscriber, event_id) WHERE state < 2;
CREATE INDEX IF NOT EXISTS deliveries_dead ON deliveries (event_id) WHERE state = 3;
CREATE INDEX IF NOT EXISTS deliveries_done ON deliveries (finished_at) WHERE state = 2;
CREATE TABLE IF NOT EXISTS attempts (
    event_id INTEGER NOT NULL,
    subscriber TEXT NOT NULL,
    number INTEGER NOT NULL,
    started_at REAL NOT NULL,
    duration REAL NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS attempts_event ON attempts (event_id);
CREATE INDEX IF NOT EXISTS attempts_ended ON attempts (started_at + duration);
CREATE TABLE IF NOT EXISTS owners (
    owner TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
"""

INSERT = (
    "INSERT INTO events (source, dedup_key, digest, event_type, order_key, payload,"
    " received_at, headers) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING"
)
INSERT_DELIVERY = (
    "INSERT INTO deliveries (event_id, subscriber, state, next_attempt_at, owner)"
    " VALUES (?, ?, ?, ?, ?)"
)
# `state < 2 AND` lets SQLite use the partial index of open deliveries.
CLAIM = (
    "UPDATE deliveries SET state = 1, owner = ? WHERE subscriber = ? AND event_id IN"  # noqa: S608 - constants
    " (SELECT event_id FROM deliveries WHERE subscriber = ? AND state < 2 AND state = 0"
    f" ORDER BY event_id LIMIT ?) RETURNING {DELIVERY_COLUMNS}"
)
INSERT_ATTEMPT = (
    "INSERT INTO attempts (event_id, subscriber, number, started_at, duration, outcome, error)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def insert_params(event: NewEvent, now: float) -> tuple[Any, ...]:
    """The parameters of `INSERT` for `event`, received at `now` (the event's row but for
    its id and digest: `params[:2] + params[3:7]`)."""
    return (
        event.source,
        event.dedup_key,
        digest(event.source, event.dedup_key),
        event.event_type,
        event.order_key,
        event.payload,
        now,
        event.headers,
    )


def chunks(items: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    """`items` in slices of at most `size` (SQLite binds at most 32,766 parameters)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class RecentEvents:
    """The rows of events read or stored lately, so that each subscriber's claim of an event
    does not read it from the file again (a backlog drained by three subscribers reads each
    event once, not three times). Bounded by the bytes of its payloads; used by one thread.
    Safe because an event's row never changes and its id is never used again."""

    def __init__(self, limit: int = 16 * 1024 * 1024) -> None:
        self.limit = limit
        # OrderedDict: a plain dict's oldest key is found by scanning past every deleted
        # slot, which makes a full cache quadratic.
        self._rows: OrderedDict[int, Sequence[Any]] = OrderedDict()
        self._bytes = 0

    def get(self, event_id: int) -> Sequence[Any] | None:
        """The row of `event_id` (`EVENT_COLUMNS`), if kept."""
        return self._rows.get(event_id)

    def put(self, row: Sequence[Any]) -> None:
        """Keep `row`, forgetting the oldest kept rows past the limit."""
        if row[0] in self._rows:
            return
        self._rows[row[0]] = row
        self._bytes += len(row[5])
        while self._bytes > self.limit:
            self._bytes -= len(self._rows.popitem(last=False)[1][5])

    def clear(self) -> None:
        """Forget every row."""
        self._rows.clear()
        self._bytes = 0


def with_events(
    conn: sqlite3.Connection, rows: Sequence[Sequence[Any]], recent: RecentEvents | None = None
) -> list[StoredEvent]:
    """Deliveries rows joined with their events, in arrival order; `recent` spares reading
    the events it keeps, and keeps those read."""
    events: dict[int, Sequence[Any]] = {}
    wanted: set[int] = set()
    for row in rows:
        kept = recent.get(row[0]) if recent is not None else None
        if kept is None:
            wanted.add(row[0])
        else:
            events[row[0]] = kept
    for part in chunks(sorted(wanted)):
        marks = ",".join("?" * len(part))
        query = f"SELECT {EVENT_COLUMNS} FROM events WHERE id IN ({marks})"  # noqa: S608 - placeholders
        for event_row in conn.execute(query, part):
            events[event_row[0]] = event_row
            if recent is not None:
                recent.put(event_row)
    found = [delivery(events[row[0]], row) for row in rows if row[0] in events]
    return sorted(found, key=lambda d: (d.id, d.subscriber))


def inbox_path(url: str) -> Path:
    """The SQLite file named by `url`: a plain path, or `sqlite:///relative` / `sqlite:////abs`."""
    if "://" not in url:
        return Path(url).expanduser()
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ConfigError(f"inbox {url!r} is not a sqlite:// URL")
    if parts.netloc:
        raise ConfigError(f"inbox {url!r}: write sqlite:///relative/path or sqlite:////absolute")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path:
        raise ConfigError(f"inbox {url!r} names no file")
    return Path(path).expanduser()


def connect(
    path: Path, *, synchronous: str = "FULL", busy_timeout: float = 2.0, private: bool = True
) -> sqlite3.Connection:
    """Open (and if needed create or upgrade) an inbox file with the project's pragmas.

    The folder must exist: a mistyped path is refused rather than created. With `private`,
    the file is made its owner's only first (`make_private`). Never pass it in a process that
    already has the inbox open: closing any other descriptor of the database or its `-shm`
    file drops every POSIX lock the process holds on it, SQLite's included (then another
    process can rebuild the shared memory under it: SIGBUS).
    """
    if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
        raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
    missing = missing_folder(path)
    if missing is not None:
        raise StorageError(f"cannot open inbox {path}: {missing}")
    try:
        if private:
            make_private(path)
        conn = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        conn.execute("PRAGMA foreign_keys = OFF")
        # What expiry and erasure remove is overwritten in the file, not only unlinked (some
        # builds of SQLite default to that, others not).
        conn.execute("PRAGMA secure_delete = ON")
        # The dedup index is touched at random places: keep it cached (64 MiB).
        conn.execute("PRAGMA cache_size = -65536")
        _prepare_schema(conn, path)
    except (sqlite3.Error, OSError) as exc:
        raise StorageError(f"cannot open inbox {path}: {exc}") from exc
    return conn


def _prepare_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create the schema, or upgrade a file written by an earlier version, in one transaction.

    Version 1 had no digest column, version 2 kept one state per event: their events keep
    their ids, and their state becomes that of a delivery to the subscriber `default` (what
    `--handler` configures), in progress made pending. Version 3 had no headers column (its
    events have none) nor the indexes of `recent_attempts`. Nothing is dropped.
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"inbox {path} has schema {version}, written by a newer version of the receiver"
        )
    conn.execute("BEGIN IMMEDIATE")
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
        upgrading = "state" in columns
        if upgrading:
            count = conn.execute("SELECT count(*) FROM events").fetchone()[0]
            log.warning("upgrading inbox %s (%d events) to schema %d", path, count, SCHEMA_VERSION)
            conn.execute("ALTER TABLE events RENAME TO events_old")
            conn.execute("DROP INDEX IF EXISTS events_open")
            conn.execute("DROP INDEX IF EXISTS events_dead")
        elif columns and "headers" not in columns:
            count = conn.execute("SELECT count(*) FROM events").fetchone()[0]
            log.warning("upgrading inbox %s (%d events) to schema %d", path, count, SCHEMA_VERSION)
            conn.execute("ALTER TABLE events ADD COLUMN headers BLOB")
        # executescript would commit the transaction this runs in.
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        if upgrading:
            conn.create_function("dedup_digest", 2, digest, deterministic=True)
            digest_of = "digest" if "digest" in columns else "dedup_digest(source, dedup_key)"
            conn.execute(
                "INSERT INTO events (id, source, dedup_key, digest, event_type, order_key,"  # noqa: S608 - constants
                f" payload, received_at) SELECT id, source, dedup_key, {digest_of}, event_type,"
                " order_key, payload, received_at FROM events_old"
            )
            conn.execute(
                "INSERT INTO deliveries (event_id, subscriber, state, attempts, next_attempt_at,"
                " last_error, finished_at) SELECT id, 'default', CASE state WHEN 1 THEN 0"
                " ELSE state END, attempts, next_attempt_at, last_error, finished_at"
                " FROM events_old"
            )
            conn.execute("DROP TABLE events_old")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def attempt_row(delivery: DeliveryKey, attempt: Attempt) -> tuple[Any, ...]:
    """The parameters of `INSERT_ATTEMPT` for `attempt` of `delivery`."""
    event_id, subscriber = delivery
    return (
        event_id, subscriber, attempt.number, attempt.started_at, attempt.duration,
        attempt.outcome, attempt.error,
    )  # fmt: skip


def finished_before(
    conn: sqlite3.Connection, after: int, chunk: int, cutoff: float, *, with_payload: bool = False
) -> tuple[list[int], int, bool]:
    """Among the `chunk` events after id `after`, those received before `cutoff` whose every
    delivery is finished (done or discarded), and with `with_payload` only those whose payload
    is still there; with the last id looked at and whether that was the end (of the events,
    or of those received before `cutoff`). What `purge` and `expire` each act on a chunk of."""
    rows = conn.execute(
        "SELECT id, received_at, length(payload) FROM events WHERE id > ? ORDER BY id LIMIT ?",
        (after, chunk),
    ).fetchall()
    if not rows:
        return [], after, True
    old = [r[0] for r in rows if r[1] < cutoff and (r[2] or not with_payload)]
    first, last = rows[0][0], rows[-1][0]
    unfinished = {
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT event_id FROM deliveries WHERE event_id BETWEEN ? AND ?"
            " AND state IN (0, 1, 3)",
            (first, last),
        )
    }
    finished = rows[-1][1] >= cutoff or len(rows) < chunk
    return [event_id for event_id in old if event_id not in unfinished], last, finished


def purge_chunk(
    conn: sqlite3.Connection, after: int, chunk: int, cutoff: float
) -> tuple[int, int, bool]:
    """Delete the finished events received before `cutoff` among the `chunk` after id `after`.

    Returns how many were deleted, the last id looked at, and whether that was the end.
    """
    doomed, last, finished = finished_before(conn, after, chunk, cutoff)
    for part in chunks(doomed):
        marks = ",".join("?" * len(part))
        for table, column in (
            ("attempts", "event_id"),
            ("deliveries", "event_id"),
            ("events", "id"),
        ):
            conn.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", part)  # noqa: S608 - constants and placeholders
    return len(doomed), last, finished

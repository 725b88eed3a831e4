"""The embedded inbox: one SQLite file in WAL mode, written by one group-commit thread.

Every write (appends from the request path, state changes from the dispatcher) is queued
to a dedicated thread that runs whatever is queued in one transaction the moment it is
idle: under load a commit covers many requests, when idle nothing waits for a timer.
Each caller gets an asyncio future that resolves after the commit, so a request is
acknowledged only once its event is on disk. A commit costs far more than the rows in it
(fsync, WAL frames), so a write nobody waits on (a done-mark) does not get its own: it
joins the next urgent write's commit, or waits at most LAZY_WAIT.

A dispatcher in the same process `attach`es an intake. While it has room and nothing older
is pending, a new event is stored already in progress and handed to the intake right after
its commit, so the common path costs no claim query and no second write of the row. The
room is granted inside the writer thread (by `pull`, once it has claimed every pending
event), which keeps each call's events in arrival order: an event stored as pending is
never overtaken by a later one handed over directly.

Copying the WAL back into the database file (a checkpoint) is not left to SQLite, which
would run it inside every thousandth page's commit and make the requests waiting on that
commit, and every one queued behind it, wait for its random writes and its fsync (about 4
ms here, the main part of the acknowledgement's p99). A checkpoint thread with its own
connection does it (PASSIVE: alongside the writer, never blocking it) every
CHECKPOINT_EVERY writes. So that the WAL starts over from its beginning rather than grow,
the writer itself runs a RESTART checkpoint, which has nearly nothing left to copy, after
RESTART_EVERY writes when it is idle, or after four times that in any case.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from hashlib import blake2b
from pathlib import Path
from typing import Any, TypeVar

from receiver.exceptions import StorageError
from receiver.inbox.base import Intake
from receiver.inbox.models import NewEvent, State, StoredEvent
from receiver.logs import RateLimitedLog

__all__ = ["SqliteInbox", "connect", "missing_folder"]

log = logging.getLogger("receiver.inbox")

T = TypeVar("T")

LAZY_WAIT = 0.05
"""Seconds a write nobody waits on (a done-mark) may wait to share another write's commit."""

CHECKPOINT_EVERY = 100
"""Writes between two of the checkpoint thread's passive checkpoints."""

RESTART_EVERY = 2000
"""Writes after which the writer, once idle, makes the WAL start over (4x: even if busy)."""

Op = Callable[[sqlite3.Connection], Any]

SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    digest BLOB NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    order_key TEXT,
    payload BLOB NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    received_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    finished_at REAL
);
-- Only open events are indexed by state, so the index stays small however much is kept.
CREATE INDEX IF NOT EXISTS events_open ON events (state, id) WHERE state < 2;
CREATE INDEX IF NOT EXISTS events_dead ON events (id) WHERE state = 3;
"""

COLUMNS = (
    "id, source, dedup_key, event_type, order_key, payload, state, attempts,"
    " received_at, next_attempt_at, last_error, finished_at"
)
INSERT = (
    "INSERT INTO events (source, dedup_key, digest, event_type, order_key, payload,"
    " received_at, next_attempt_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (digest) DO NOTHING"
)
CLAIM = (
    "UPDATE events SET state = 1 WHERE id IN (SELECT id FROM events"
    " WHERE state < 2 AND state = 0 ORDER BY id LIMIT ?) RETURNING id, source, dedup_key,"
    " event_type, order_key, payload, state, attempts, received_at, next_attempt_at,"
    " last_error, finished_at"
)


def digest(source: str, dedup_key: str) -> bytes:
    """The 16 bytes an event is deduplicated by: BLAKE2b of its source and dedup key.

    A fixed-size key keeps the unique index small enough to stay in the page cache with
    millions of events kept (a 36-character GUID per entry did not); a collision needs
    about 2**64 events.
    """
    return blake2b(f"{source}\0{dedup_key}".encode(), digest_size=16).digest()


def insert_params(event: NewEvent, now: float, state: State) -> tuple[Any, ...]:
    """The parameters of `INSERT` for `event`, received at `now`."""
    return (
        event.source,
        event.dedup_key,
        digest(event.source, event.dedup_key),
        event.event_type,
        event.order_key,
        event.payload,
        now,
        now,
        state,
    )


def row_to_event(row: Sequence[Any]) -> StoredEvent:
    """Build a `StoredEvent` from a row selected with `COLUMNS`."""
    return StoredEvent(
        id=row[0],
        source=row[1],
        dedup_key=row[2],
        event_type=row[3],
        order_key=row[4],
        payload=bytes(row[5]),
        state=State(row[6]),
        attempts=row[7],
        received_at=row[8],
        next_attempt_at=row[9],
        last_error=row[10],
        finished_at=row[11],
    )


def _claim(conn: sqlite3.Connection, limit: int) -> list[StoredEvent]:
    """Mark up to `limit` pending events in progress; they come back in arrival order."""
    rows = conn.execute(CLAIM, (limit,)).fetchall()
    return sorted((row_to_event(r) for r in rows), key=lambda e: e.id)


def missing_folder(path: Path) -> str | None:
    """Why the folder of inbox file `path` cannot hold it (`folder x does not exist`), or None."""
    folder = path.parent
    if folder.is_dir():
        return None
    if folder.exists():
        return f"{folder} is not a folder"
    return f"folder {folder} does not exist"


def connect(
    path: Path, *, synchronous: str = "FULL", busy_timeout: float = 2.0
) -> sqlite3.Connection:
    """Open (and if needed create or upgrade) an inbox file with the project's pragmas.

    The folder must exist: a mistyped path is refused rather than created.
    """
    if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
        raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
    missing = missing_folder(path)
    if missing is not None:
        raise StorageError(f"cannot open inbox {path}: {missing}")
    try:
        conn = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        conn.execute("PRAGMA foreign_keys = OFF")
        # The dedup index is touched at random places: keep it cached (64 MiB).
        conn.execute("PRAGMA cache_size = -65536")
        _prepare_schema(conn, path)
    except (sqlite3.Error, OSError) as exc:
        raise StorageError(f"cannot open inbox {path}: {exc}") from exc
    return conn


def _prepare_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create the schema, or upgrade a file written by an earlier version, in one transaction."""
    if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
        upgrading = bool(columns) and "digest" not in columns
        if upgrading:
            count = conn.execute("SELECT count(*) FROM events").fetchone()[0]
            log.warning("upgrading inbox %s (%d events) to schema %d", path, count, SCHEMA_VERSION)
            conn.execute("ALTER TABLE events RENAME TO events_v1")
            conn.execute("DROP INDEX IF EXISTS events_open")
            conn.execute("DROP INDEX IF EXISTS events_dead")
        # executescript would commit the transaction this runs in.
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        if upgrading:
            conn.create_function("dedup_digest", 2, digest, deterministic=True)
            conn.execute(
                f"INSERT INTO events ({COLUMNS}, digest) SELECT {COLUMNS},"  # noqa: S608 - constants
                " dedup_digest(source, dedup_key) FROM events_v1"
            )
            conn.execute("DROP TABLE events_v1")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class _Checkpointer(threading.Thread):
    """Copies the WAL into the database file when asked, off the writer's path."""

    def __init__(self, path: Path, *, synchronous: str, busy_timeout: float) -> None:
        super().__init__(name="inbox-checkpoint", daemon=True)
        self._conn = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        self._conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        self._busy_ms = round(busy_timeout * 1000)
        self._wake = threading.Event()
        self._closing = False
        self._lock = threading.Lock()  # one checkpoint at a time, this thread's or the writer's
        self._failures = RateLimitedLog(log)

    def request(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self._closing = True
        self._wake.set()

    def run(self) -> None:
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._closing:
                    break
                self.checkpoint(self._conn, "PASSIVE")
        finally:
            self._conn.close()

    def checkpoint(self, conn: sqlite3.Connection, mode: str) -> None:
        """Run a checkpoint on `conn` without waiting for other processes' readers (a RESTART
        would wait for them and hold up the writer). Failing (disk full, a reader) is logged
        or ignored and left to the next one: the events are safe in the WAL meanwhile."""
        with self._lock:
            try:
                conn.execute("PRAGMA busy_timeout = 0")
                busy = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()[0]
                if busy:
                    log.debug("inbox %s checkpoint incomplete: a reader holds the WAL", mode)
            except sqlite3.Error as exc:
                self._failures.warning("inbox checkpoint failed, will retry: %s", exc)
            finally:
                conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")


class _Writer(threading.Thread):
    """Runs queued operations in batches, one transaction per batch."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        loop: asyncio.AbstractEventLoop,
        checkpointer: _Checkpointer,
    ) -> None:
        super().__init__(name="inbox-writer", daemon=True)
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpointer's job
        self._conn = conn
        self._loop = loop
        self._checkpointer = checkpointer
        self._since_checkpoint = 0  # writes since the checkpointer was last asked
        self._since_restart = 0  # writes since the WAL was last made to start over
        self._cond = threading.Condition()
        self._queue: list[tuple[Op, asyncio.Future[Any]]] = []
        self._waiting = False
        self._closing = False
        self._urgent = False  # an urgent operation is queued
        self._lazy_since: float | None = None  # when the oldest queued lazy one was queued
        self.intake: Intake | None = None
        # Owned by the writer thread (operations run there), reported after each batch:
        self.handed: list[StoredEvent] = []  # stored in progress, for the intake
        self.pending = False  # stored an event as pending in this batch
        self.budget = 0  # how many more new events the intake takes directly
        self.backlog = True  # pending events may exist: hand nothing over until pulled

    def submit(self, op: Op, *, urgent: bool = True) -> asyncio.Future[Any]:
        """Queue `op`: an urgent one is committed as soon as the writer is idle, a lazy one
        within LAZY_WAIT, sharing the commit of whatever urgent write comes first."""
        future: asyncio.Future[Any] = self._loop.create_future()
        with self._cond:
            if self._closing:
                future.set_exception(StorageError("inbox is closed"))
                return future
            self._queue.append((op, future))
            if urgent:
                self._urgent = True
                if self._waiting:
                    self._cond.notify()
            elif self._lazy_since is None:
                self._lazy_since = time.monotonic()
                if self._waiting:
                    self._cond.notify()  # to wait no longer than LAZY_WAIT from now
        return future

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()

    def run(self) -> None:
        self._checkpointer.start()
        try:
            self._serve()
        finally:
            self._checkpointer.close()
            self._checkpointer.join()
            self._conn.close()  # the last connection: checkpoints and removes the WAL

    def _serve(self) -> None:
        while True:
            with self._cond:
                restart = self._since_restart >= RESTART_EVERY and (
                    not self._urgent or self._since_restart >= 4 * RESTART_EVERY
                )
                if not restart:
                    self._wait_for_work()
                    batch, self._queue = self._queue, []
                    self._urgent, self._lazy_since = False, None
                    if not batch and self._closing:
                        return
            if restart:
                self._since_restart = 0
                self._checkpointer.checkpoint(self._conn, "RESTART")
                continue
            results = self._run_batch(batch)
            handed, self.handed = self.handed, []
            pending, self.pending = self.pending, False
            try:
                self._loop.call_soon_threadsafe(self._settle, results, handed, pending)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                return
            self._since_restart += len(batch)
            self._since_checkpoint += len(batch)
            if self._since_checkpoint >= CHECKPOINT_EVERY:
                self._since_checkpoint = 0
                self._checkpointer.request()

    def _wait_for_work(self) -> None:
        # Called holding the condition's lock. Each commit costs far more than the writes
        # in it (fsync, WAL frames, header), so writes nobody waits on do not get their own.
        self._waiting = True
        try:
            while not (self._urgent or self._closing):
                if self._lazy_since is None:
                    self._cond.wait()
                    continue
                left = self._lazy_since + LAZY_WAIT - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)
        finally:
            self._waiting = False

    def _transaction(self, ops: Sequence[Op]) -> list[Any]:
        conn = self._conn
        # What the operations note for the intake must roll back with the transaction.
        handed, pending, budget, backlog = len(self.handed), self.pending, self.budget, self.backlog
        conn.execute("BEGIN IMMEDIATE")
        try:
            values = [op(conn) for op in ops]
            conn.execute("COMMIT")
        except BaseException:
            del self.handed[handed:]
            self.pending, self.budget, self.backlog = pending, budget, backlog
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.exception("rollback failed")
            raise
        return values

    def _run_batch(
        self, batch: list[tuple[Op, asyncio.Future[Any]]]
    ) -> list[tuple[asyncio.Future[Any], bool, Any]]:
        ops = [op for op, _ in batch]
        try:
            values = self._transaction(ops)
            return [(fut, True, value) for (_, fut), value in zip(batch, values, strict=True)]
        except sqlite3.Error as exc:
            if len(batch) == 1:
                return [(batch[0][1], False, exc)]
            log.warning("batch of %d writes failed (%s); retrying one by one", len(batch), exc)
        # One failing operation must not fail the others that shared its transaction.
        results: list[tuple[asyncio.Future[Any], bool, Any]] = []
        for op, fut in batch:
            try:
                results.append((fut, True, self._transaction([op])[0]))
            except sqlite3.Error as exc:
                results.append((fut, False, exc))
        return results

    def _settle(
        self,
        results: list[tuple[asyncio.Future[Any], bool, Any]],
        handed: list[StoredEvent],
        pending: bool,
    ) -> None:
        # The waiting requests first, so their acknowledgements are not queued behind the
        # handlers of the events handed over. Whoever awaits a `pull` still finds its events
        # admitted: a future's waiter runs after this callback returns.
        for future, ok, value in results:
            if future.cancelled():
                continue
            if ok:
                future.set_result(value)
            else:
                error = StorageError(f"inbox write failed: {value}")
                error.__cause__ = value
                future.set_exception(error)
        if (handed or pending) and self.intake is not None:
            self.intake(handed, pending)


class SqliteInbox:
    """The SQLite inbox as the server and dispatcher use it (one per process)."""

    kind = "sqlite"

    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 2.0,
        retention_days: float = 7.0,
    ) -> None:
        self.path = path
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.retention = retention_days * 86400.0
        self._writer: _Writer | None = None
        self._lock_fd: int | None = None

    def __repr__(self) -> str:
        return f"SqliteInbox({str(self.path)!r})"

    # -- lifecycle ----------------------------------------------------------------

    async def open(self) -> None:
        """Create the file if needed and start the writer thread."""
        conn = connect(self.path, synchronous=self.synchronous, busy_timeout=self.busy_timeout)
        checkpointer = _Checkpointer(
            self.path, synchronous=self.synchronous, busy_timeout=self.busy_timeout
        )
        self._writer = _Writer(conn, asyncio.get_running_loop(), checkpointer)
        self._writer.start()

    async def close(self) -> None:
        """Finish every queued write, then stop the writer thread."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the dispatch lock
            self._lock_fd = None
        writer, self._writer = self._writer, None
        if writer is None:
            return
        writer.close()
        await asyncio.to_thread(writer.join)

    def attach(self, intake: Intake) -> None:
        """Report to `intake`, on the event loop after each commit, what it should handle.

        Events reach it only through `pull` (and the room `pull` grants) until `detach`.
        """
        self._require().intake = intake

    async def detach(self) -> None:
        """Stop handing events over; returns once everything already handed was delivered."""
        writer = self._require()

        def op(conn: sqlite3.Connection) -> None:
            writer.budget, writer.backlog = 0, True

        await writer.submit(op)
        writer.intake = None

    def _require(self) -> _Writer:
        if self._writer is None:
            raise StorageError("inbox is not open")
        return self._writer

    # -- the request path ---------------------------------------------------------------

    def append(self, event: NewEvent) -> asyncio.Future[bool]:
        """Queue `event`; the future says True if stored, False if a duplicate, after commit."""
        now = time.time()
        pending = insert_params(event, now, State.PENDING)
        handed = (*pending[:-1], State.IN_PROGRESS)
        writer = self._require()

        def op(conn: sqlite3.Connection) -> bool:
            if writer.budget <= 0:
                if conn.execute(INSERT, pending).rowcount != 1:
                    return False
                writer.pending = writer.backlog = True
                return True
            cursor = conn.execute(INSERT, handed)
            if cursor.rowcount != 1:
                return False
            writer.budget -= 1
            stored = StoredEvent(
                cursor.lastrowid or 0, event.source, event.dedup_key, event.event_type,
                event.order_key, event.payload, State.IN_PROGRESS, 0, now, now, None, None,
            )  # fmt: skip
            writer.handed.append(stored)
            return True

        return writer.submit(op)

    # -- the dispatcher -------------------------------------------------------------------

    async def claim(self, limit: int) -> list[StoredEvent]:
        """Mark up to `limit` pending events in progress and return them in arrival order."""

        def op(conn: sqlite3.Connection) -> list[StoredEvent]:
            return _claim(conn, limit)

        result: list[StoredEvent] = await self._require().submit(op)
        return result

    async def pull(self, limit: int, room: int) -> int:
        """Claim up to `limit` pending events for the intake; how many there were.

        They reach the intake, in arrival order, before this returns. When no pending
        event is left, up to `room` minus that many new events are handed over as they
        are stored, without being pending first.
        """
        writer = self._require()

        def op(conn: sqlite3.Connection) -> int:
            claimed = _claim(conn, limit)
            writer.handed.extend(claimed)
            if len(claimed) < limit and writer.intake is not None:
                writer.budget, writer.backlog = room - len(claimed), False
            return len(claimed)

        count: int = await writer.submit(op)
        return count

    def complete(self, event_ids: Sequence[int]) -> asyncio.Future[None]:
        """Mark events done (their room goes back to the intake)."""
        now = time.time()
        params = [(now, event_id) for event_id in event_ids]
        writer = self._require()

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany("UPDATE events SET state = 2, finished_at = ? WHERE id = ?", params)
            if not writer.backlog:
                writer.budget += len(params)

        return writer.submit(op, urgent=False)

    def retry_later(
        self, event_id: int, attempts: int, next_attempt_at: float, error: str
    ) -> asyncio.Future[None]:
        """Record a failed attempt; the event stays claimed until its next attempt."""
        params = (attempts, next_attempt_at, error, event_id)

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE events SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
                params,
            )

        return self._require().submit(op)

    def bury(self, event_id: int, attempts: int, error: str) -> asyncio.Future[None]:
        """Make an event a dead letter with its last error."""
        params = (attempts, error, time.time(), event_id)

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE events SET state = 3, attempts = ?, last_error = ?, finished_at = ?"
                " WHERE id = ?",
                params,
            )

        return self._require().submit(op)

    async def release(self, event_ids: Sequence[int]) -> None:
        """Give claimed events back (pending) so they are handled after a restart."""
        ids = list(event_ids)

        def op(conn: sqlite3.Connection) -> None:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                conn.execute(
                    f"UPDATE events SET state = 0 WHERE state = 1 AND id IN ({marks})",  # noqa: S608 - only placeholders
                    chunk,
                )

        if ids:
            await self._require().submit(op)

    async def recover(self) -> int:
        """At start-up: give back everything a crashed process had claimed."""

        def op(conn: sqlite3.Connection) -> int:
            changed: int = conn.execute("UPDATE events SET state = 0 WHERE state = 1").rowcount
            return changed

        count: int = await self._require().submit(op)
        return count

    async def purge(self, *, now: float | None = None, chunk: int = 2000) -> int:
        """Delete done events received longer ago than the retention; returns how many."""
        cutoff = (time.time() if now is None else now) - self.retention
        removed = 0
        after = 0
        while True:

            def op(conn: sqlite3.Connection, after: int = after) -> tuple[int, int, bool]:
                rows = conn.execute(
                    "SELECT id, state, received_at FROM events WHERE id > ? ORDER BY id LIMIT ?",
                    (after, chunk),
                ).fetchall()
                doomed = [r[0] for r in rows if r[1] == State.DONE and r[2] < cutoff]
                finished = not rows or rows[-1][2] >= cutoff or len(rows) < chunk
                for start in range(0, len(doomed), 500):
                    part = doomed[start : start + 500]
                    marks = ",".join("?" * len(part))
                    conn.execute(f"DELETE FROM events WHERE id IN ({marks})", part)  # noqa: S608 - only placeholders
                last = rows[-1][0] if rows else after
                return len(doomed), last, finished

            count: int
            finished: bool
            count, after, finished = await self._require().submit(op)
            removed += count
            if finished:
                return removed

    # -- one dispatcher per file --------------------------------------------------------

    def try_lock_dispatch(self) -> bool:
        """Take the file's dispatch lock (held until exit, released by the kernel on a crash)."""
        import fcntl

        lock_path = self.path.with_name(self.path.name + ".dispatch.lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

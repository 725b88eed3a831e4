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

No exception raised by one operation stops the writer: that operation's caller gets a
`StorageError` and the others of its transaction run again without it (`_run_batch`). Should
the thread stop all the same (an error outside any operation, a rollback that fails), every
waiting and later write fails at once with a `StorageError`, `failure` says why, and the
callback given to `open` is told, so the process can exit and be restarted rather than hang.

The inbox file and the dispatch lock are their owner's only (`receiver.inbox.files`).
"""

from __future__ import annotations

import asyncio
import contextlib
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
from receiver.inbox.files import PRIVATE, keep_private, make_private
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

CLOSE_WAIT = 0.5
"""Seconds `close` waits for the writer to finish (it takes milliseconds); past that (another
process holds the lock) its last writes are left undone, as in a crash: their events are
handed out again at the next start."""

Op = Callable[[sqlite3.Connection], Any]
OnFailure = Callable[[BaseException], None]

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


def describe(error: BaseException) -> str:
    """`error` in a few words: SQLite's own message, else the exception's type and message."""
    if isinstance(error, sqlite3.Error):
        return str(error)
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def connect(
    path: Path, *, synchronous: str = "FULL", busy_timeout: float = 2.0
) -> sqlite3.Connection:
    """Open (and if needed create or upgrade) an inbox file with the project's pragmas.

    The folder must exist: a mistyped path is refused rather than created. The file is
    private to its owner (`make_private`).
    """
    if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
        raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
    missing = missing_folder(path)
    if missing is not None:
        raise StorageError(f"cannot open inbox {path}: {missing}")
    try:
        make_private(path)
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
            except Exception as exc:  # out of memory as well as disk full: never fatal
                self._failures.warning("inbox checkpoint failed, will retry: %s", describe(exc))
            finally:
                try:
                    conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
                except Exception as exc:
                    self._failures.warning("inbox busy timeout not restored: %s", describe(exc))


class _Failed(Exception):
    """A transaction failed and was rolled back: `error` is why, `index` the operation that
    raised it (None: BEGIN or COMMIT did, no operation is to blame), `begun` whether it began."""

    def __init__(self, error: Exception, index: int | None, *, begun: bool) -> None:
        super().__init__(error)
        self.error = error
        self.index = index
        self.begun = begun


Batch = list[tuple[Op, asyncio.Future[Any]]]
Outcome = tuple[asyncio.Future[Any], bool, Any]


class _Writer(threading.Thread):
    """Runs queued operations in batches, one transaction per batch."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        loop: asyncio.AbstractEventLoop,
        checkpointer: _Checkpointer,
        on_failure: OnFailure | None = None,
    ) -> None:
        super().__init__(name="inbox-writer", daemon=True)
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpointer's job
        self._conn = conn
        self._loop = loop
        self._checkpointer = checkpointer
        self._on_failure = on_failure
        self._since_checkpoint = 0  # writes since the checkpointer was last asked
        self._since_restart = 0  # writes since the WAL was last made to start over
        self._cond = threading.Condition()
        self._queue: Batch = []
        self._batch: Batch = []  # the last batch taken: failed if the thread stops unsettled
        self._waiting = False
        self._closing = False
        self._urgent = False  # an urgent operation is queued
        self._lazy_since: float | None = None  # when the oldest queued lazy one was queued
        self._failures = RateLimitedLog(log)
        self.failure: str | None = None
        """Why the thread stopped before it was closed, or None."""
        self.ended: asyncio.Future[None] = loop.create_future()
        """Resolved (on the loop) once the thread has finished."""
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
                future.set_exception(self._closed_error())
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

    def _closed_error(self) -> StorageError:
        if self.failure is not None:
            return StorageError(f"the inbox writer stopped: {self.failure}")
        return StorageError("inbox is closed")

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()

    def run(self) -> None:
        self._checkpointer.start()
        try:
            self._serve()
        except BaseException as exc:  # nothing may stop the writer silently
            self._stopped(exc)
        finally:
            self._checkpointer.close()
            self._checkpointer.join()
            try:
                self._conn.close()  # the last connection: checkpoints and removes the WAL
            except Exception as exc:
                log.warning("closing the inbox failed: %s", describe(exc))
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                self._loop.call_soon_threadsafe(self._end)

    def _end(self) -> None:
        if not self.ended.done():
            self.ended.set_result(None)

    def _stopped(self, error: BaseException) -> None:
        """The thread cannot go on: fail every write, now and later, and say why."""
        with self._cond:
            self.failure = describe(error)
            self._closing = True
            lost, self._batch, self._queue = [*self._batch, *self._queue], [], []
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._report_stop, lost, error)

    def _report_stop(self, lost: Batch, error: BaseException) -> None:
        for _, future in lost:
            if not future.done():
                future.set_exception(self._closed_error())
        if self._on_failure is not None:
            self._on_failure(error)
        else:
            log.critical("the inbox writer stopped: %s", self.failure, exc_info=error)

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
                    self._batch = batch
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
        """Run `ops` in one transaction; raise `_Failed`, rolled back, if it cannot commit.

        What is not an `Exception`, and a rollback that fails (the connection would stay in
        a transaction no later write could begin), is not absorbed: it stops the writer.
        """
        conn = self._conn
        # What the operations note for the intake must roll back with the transaction.
        handed, pending, budget, backlog = len(self.handed), self.pending, self.budget, self.backlog
        try:
            conn.execute("BEGIN IMMEDIATE")
        except Exception as exc:
            raise _Failed(exc, None, begun=False) from exc
        values: list[Any] = []
        committing = False
        try:
            for op in ops:
                values.append(op(conn))
            committing = True
            conn.execute("COMMIT")
        except BaseException as exc:
            del self.handed[handed:]
            self.pending, self.budget, self.backlog = pending, budget, backlog
            self._roll_back()
            if isinstance(exc, Exception):
                raise _Failed(exc, None if committing else len(values), begun=True) from exc
            raise
        return values

    def _roll_back(self) -> None:
        conn = self._conn
        if not conn.in_transaction:  # SQLite rolled it back itself (out of memory, disk full)
            return
        try:
            conn.execute("ROLLBACK")
        except Exception as exc:
            if conn.in_transaction:
                raise RuntimeError(f"cannot roll back a failed write: {describe(exc)}") from exc

    def _run_batch(self, batch: Batch) -> list[Outcome]:
        """Run `batch` in one transaction, or else give each operation its own outcome.

        An operation that raised fails alone; the others run again without it. A BEGIN that
        fails (another process held the lock past the busy timeout) fails them all, as trying
        again would only wait again. A COMMIT that fails (a full disk) makes the rest run one
        at a time, since a smaller transaction may still fit.
        """
        results: list[Outcome] = []
        todo = batch
        alone = False
        while todo:
            group = todo[:1] if alone else todo
            try:
                values = self._transaction([op for op, _ in group])
            except _Failed as failed:
                error = failed.error
                if failed.index is not None:
                    culprit = group[failed.index]
                    results.append((culprit[1], False, error))
                    todo = [item for item in todo if item is not culprit]
                    if todo:
                        self._failures.warning(
                            "a write failed (%s); the %d other(s) with it are tried again",
                            describe(error), len(todo),
                        )  # fmt: skip
                elif not failed.begun:
                    results.extend((future, False, error) for _, future in todo)
                    return results
                elif len(group) == 1:
                    results.append((group[0][1], False, error))
                    todo = todo[1:]
                else:
                    self._failures.warning(
                        "batch of %d writes failed (%s); retrying one by one",
                        len(group), describe(error),
                    )  # fmt: skip
                    alone = True
                continue
            results.extend(
                (future, True, value) for (_, future), value in zip(group, values, strict=True)
            )
            todo = todo[len(group) :]
        return results

    def _settle(
        self,
        results: list[Outcome],
        handed: list[StoredEvent],
        pending: bool,
    ) -> None:
        # The waiting requests first, so their acknowledgements are not queued behind the
        # handlers of the events handed over. Whoever awaits a `pull` still finds its events
        # admitted: a future's waiter runs after this callback returns.
        for future, ok, value in results:
            if future.done():  # cancelled, or failed when the writer stopped
                continue
            if ok:
                future.set_result(value)
            else:
                error = StorageError(f"inbox write failed: {describe(value)}")
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
        self._failure: str | None = None  # the writer's, kept once it is closed
        self._lock_fd: int | None = None

    def __repr__(self) -> str:
        return f"SqliteInbox({str(self.path)!r})"

    # -- lifecycle ----------------------------------------------------------------

    async def open(self, on_failure: OnFailure | None = None) -> None:
        """Create the file if needed and start the writer thread.

        Should the writer stop before `close`, `on_failure` is called on the event loop with
        the exception that stopped it (else that is logged).
        """
        conn = connect(self.path, synchronous=self.synchronous, busy_timeout=self.busy_timeout)
        checkpointer = _Checkpointer(
            self.path, synchronous=self.synchronous, busy_timeout=self.busy_timeout
        )
        self._writer = _Writer(conn, asyncio.get_running_loop(), checkpointer, on_failure)
        self._writer.start()

    @property
    def failure(self) -> str | None:
        """Why the writer stopped before it was closed (nothing can be stored), or None."""
        return self._failure if self._writer is None else self._writer.failure

    async def close(self) -> None:
        """Finish every queued write, then stop the writer thread.

        Waits at most CLOSE_WAIT seconds: what is left (writes held up by a lock another
        process keeps) is dropped, as in a crash, so that a stop is never held up for long.
        """
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the dispatch lock
            self._lock_fd = None
        writer, self._writer = self._writer, None
        if writer is None:
            return
        writer.close()
        self._failure = writer.failure
        try:
            await asyncio.wait_for(asyncio.shield(writer.ended), CLOSE_WAIT)
        except TimeoutError:
            log.warning(
                "the inbox writer had not finished after %gs (is the file locked?); "
                "what it had left to write is done again at the next start", CLOSE_WAIT,
            )  # fmt: skip

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
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, PRIVATE)
        try:
            keep_private(fd, lock_path)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

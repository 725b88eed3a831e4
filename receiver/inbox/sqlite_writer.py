"""The SQLite inbox's writer: one thread that commits whatever is queued, in one transaction.

Every write (appends from the request path, state changes from the dispatcher) is queued
to a dedicated thread that runs whatever is queued in one transaction the moment it is
idle: under load a commit covers many requests, when idle nothing waits for a timer.
Each caller gets an asyncio future that resolves after the commit, so a request is
acknowledged only once its event is on disk. A commit costs far more than the rows in it
(fsync, WAL frames), so a write nobody waits on (a done-mark) does not get its own: it
joins the next urgent write's commit, or waits at most LAZY_WAIT.

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

What the operations note for the dispatcher of this process (the deliveries they hand over)
lives in a `Handover` that the writer snapshots before each transaction, restores if it
rolls back, and reports on the event loop after each commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, Protocol

from receiver.exceptions import StorageError
from receiver.logs import RateLimitedLog

__all__ = ["Checkpointer", "Handover", "Writer", "describe", "missing_folder"]

log = logging.getLogger("receiver.inbox")

LAZY_WAIT = 0.05
"""Seconds a write nobody waits on (a done-mark) may wait to share another write's commit."""

CHECKPOINT_EVERY = 100
"""Writes between two of the checkpoint thread's passive checkpoints."""

RESTART_EVERY = 2000
"""Writes after which the writer, once idle, makes the WAL start over (4x: even if busy)."""

Op = Callable[[sqlite3.Connection], Any]
OnFailure = Callable[[BaseException], None]


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


class Checkpointer(threading.Thread):
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


class Handover(Protocol):
    """What operations note for the intake; owned by the writer thread while it runs them."""

    def snapshot(self) -> object:
        """The notes as they are before a transaction."""
        ...

    def restore(self, snapshot: object) -> None:
        """Forget what the operations of a rolled-back transaction noted."""

    def take(self) -> tuple[Sequence[Any], Collection[str]]:
        """What to report after a commit (handed deliveries, subscribers with new pending
        deliveries), leaving nothing noted."""
        ...

    def report(self, handed: Sequence[Any], pending: Collection[str]) -> None:
        """On the event loop, after the commit's callers were answered."""


class Writer(threading.Thread):
    """Runs queued operations in batches, one transaction per batch."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        loop: asyncio.AbstractEventLoop,
        checkpointer: Checkpointer,
        handover: Handover,
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
        self.handover = handover

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
            handed, pending = self.handover.take()
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
        noted = self.handover.snapshot()
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
            self.handover.restore(noted)
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
        handed: Sequence[Any],
        pending: Collection[str],
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
        if handed or pending:
            self.handover.report(handed, pending)

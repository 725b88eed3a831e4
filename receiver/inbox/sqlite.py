"""The embedded inbox: one SQLite file in WAL mode, written by one group-commit thread.

An event and its deliveries (`receiver.inbox.sqlite_schema`) are written in the append's
transaction, so an acknowledged event always has them. Every write goes through the writer
thread (`receiver.inbox.sqlite_writer`).

A dispatcher in the same process `attach`es an intake. While a subscriber has room and
nothing older of it is pending, its delivery of a new event is stored already in progress
and handed to the intake right after the commit, so the common path costs no claim query and
no second write of the row. The room is granted inside the writer thread (by `pull`, once it
has claimed every pending delivery of that subscriber), which keeps each call's events in
arrival order: a delivery stored as pending is never overtaken by a later one handed over.

One process at a time dispatches from a file (`try_lock_dispatch`, a lock the kernel releases
when the process dies); another that wants to takes over when it gets the lock, and gives
back (`recover`) whatever the previous one had in progress. Deliveries in progress also carry
their holder, whose lease its heartbeat renews (`reclaim`), as every backend's do.

The inbox file and the dispatch lock are their owner's only (`receiver.inbox.files`).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from receiver.exceptions import ConfigError, StorageError
from receiver.inbox.base import InboxOptions, Intake
from receiver.inbox.files import PRIVATE, keep_private
from receiver.inbox.models import (
    Attempt,
    Completion,
    DeliveryKey,
    Expired,
    NewEvent,
    State,
    StoredEvent,
)
from receiver.inbox.sqlite_expiry import drop_dead, scrub_chunk
from receiver.inbox.sqlite_schema import (
    CLAIM,
    INSERT,
    INSERT_ATTEMPT,
    INSERT_DELIVERY,
    RecentEvents,
    attempt_row,
    connect,
    digest,
    inbox_path,
    insert_params,
    purge_chunk,
    with_events,
)
from receiver.inbox.sqlite_writer import Checkpointer, Writer, log

__all__ = [
    "INSERT",
    "INSERT_DELIVERY",
    "SqliteInbox",
    "check",
    "connect",
    "describe_url",
    "digest",
    "inbox_path",
    "insert_params",
    "open_sqlite_admin",
    "open_sqlite_inbox",
]

_Writer = Writer  # the name tests patch

CLOSE_WAIT = 0.5
"""Seconds `close` waits for the writer to finish (it takes milliseconds); past that (another
process holds the lock) its last writes are left undone, as in a crash: their deliveries are
handed out again at the next start."""


class _Handover:
    """The fast path's notes, written by operations on the writer thread.

    Per subscriber: whether it is `open` (nothing of it pending) and, if so, its `budget`: how
    many more new deliveries the intake takes directly. Also the rows of events stored with a
    pending delivery, kept in `recent` once committed (before, their ids are not theirs yet).
    """

    def __init__(self, recent: RecentEvents) -> None:
        self.intake: Intake | None = None
        self.handed: list[StoredEvent] = []
        self.pending: set[str] = set()
        self.budget: dict[str, int] = {}
        self.open: set[str] = set()
        """Subscribers the intake has pulled every pending delivery of (any other may have
        pending deliveries: nothing of it is handed over until it is pulled again)."""
        self.kept: list[tuple[Any, ...]] = []
        self.recent = recent

    def snapshot(self) -> object:
        return (
            len(self.handed), len(self.kept), set(self.pending), dict(self.budget),
            set(self.open),
        )  # fmt: skip

    def restore(self, snapshot: object) -> None:
        handed: int
        kept: int
        pending: set[str]
        budget: dict[str, int]
        opened: set[str]
        handed, kept, pending, budget, opened = snapshot  # type: ignore[misc]
        del self.handed[handed:]
        del self.kept[kept:]
        self.pending, self.budget, self.open = pending, budget, opened

    def take(self) -> tuple[list[StoredEvent], set[str]]:
        for row in self.kept:
            self.recent.put(row)
        self.kept.clear()
        handed, self.handed = self.handed, []
        pending, self.pending = self.pending, set()
        return handed, pending

    def report(self, handed: Sequence[Any], pending: Collection[str]) -> None:
        if self.intake is not None:
            self.intake(handed, pending)


class SqliteInbox:
    """The SQLite inbox as the server and dispatcher use it (one per process)."""

    kind = "sqlite"
    exclusive = True

    def __init__(
        self,
        path: Path,
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 2.0,
        retention_days: float = 7.0,
        lease: float = 15.0,
        payload_retention_days: float = 3.0,
        dead_retention_days: float = 30.0,
    ) -> None:
        self.path = path
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.retention = retention_days * 86400.0
        self.payload_retention = payload_retention_days * 86400.0
        self.dead_retention = dead_retention_days * 86400.0
        self.lease = lease
        self.owner = secrets.token_hex(6)
        self._name = f"{socket.gethostname()}:{os.getpid()}"
        self._writer: Writer | None = None
        self._recent = RecentEvents()  # the writer thread's
        self._handover = _Handover(self._recent)
        self._failure: str | None = None  # the writer's, kept once it is closed
        self._leased = False
        self._lock_fd: int | None = None

    def __repr__(self) -> str:
        return f"SqliteInbox({str(self.path)!r})"

    # -- lifecycle ----------------------------------------------------------------

    async def open(self, on_failure: Callable[[BaseException], None] | None = None) -> None:
        """Create the file if needed and start the writer thread.

        Should the writer stop before `close`, `on_failure` is called on the event loop with
        the exception that stopped it (else that is logged).
        """
        conn = connect(self.path, synchronous=self.synchronous, busy_timeout=self.busy_timeout)
        checkpointer = Checkpointer(
            self.path, synchronous=self.synchronous, busy_timeout=self.busy_timeout
        )
        loop = asyncio.get_running_loop()
        self._writer = Writer(conn, loop, checkpointer, self._handover, on_failure)
        self._writer.start()
        await self.heartbeat()

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
        owner = self.owner

        def forget_lease(conn: sqlite3.Connection) -> None:
            # It no longer dispatches: readiness checks see that at once.
            conn.execute("DELETE FROM owners WHERE owner = ?", (owner,))

        writer.submit(forget_lease).add_done_callback(_ignore_failure)
        writer.close()
        self._failure = writer.failure
        try:
            await asyncio.wait_for(asyncio.shield(writer.ended), CLOSE_WAIT)
        except TimeoutError:
            log.warning(
                "the inbox writer had not finished after %gs (is the file locked?); "
                "what it had left to write is done again at the next start", CLOSE_WAIT,
            )  # fmt: skip

    def _require(self) -> Writer:
        if self._writer is None:
            raise StorageError("inbox is not open")
        return self._writer

    # -- the request path ---------------------------------------------------------------

    def append(
        self, event: NewEvent, subscribers: Sequence[str] = ("default",)
    ) -> asyncio.Future[bool]:
        """Queue `event` with a delivery per subscriber; the future says True if stored,
        False if a duplicate, after the commit."""
        now = time.time()
        params = insert_params(event, now)
        handover, owner = self._handover, self.owner
        # Routing names each subscriber once; a repeat would break the deliveries' key.
        wanted = subscribers if len(subscribers) < 2 else tuple(dict.fromkeys(subscribers))

        def op(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(INSERT, params)
            if cursor.rowcount != 1:
                return False
            event_id = cursor.lastrowid or 0
            kept: tuple[Any, ...] | None = None
            for subscriber in wanted:
                if subscriber in handover.open and handover.budget[subscriber] > 0:
                    handover.budget[subscriber] -= 1
                    conn.execute(
                        INSERT_DELIVERY, (event_id, subscriber, State.IN_PROGRESS, now, owner)
                    )
                    handover.handed.append(
                        StoredEvent(
                            event_id,
                            event.source,
                            event.dedup_key,
                            event.event_type,
                            event.order_key,
                            event.payload,
                            State.IN_PROGRESS,
                            0,
                            now,
                            now,
                            None,
                            None,
                            subscriber,
                        )
                    )
                else:
                    conn.execute(INSERT_DELIVERY, (event_id, subscriber, State.PENDING, now, None))
                    handover.open.discard(subscriber)
                    handover.pending.add(subscriber)
                    kept = (event_id, *params[:2], *params[3:7])  # its claims will not read it
            if kept is not None:
                handover.kept.append(kept)
            return True

        return self._require().submit(op)

    # -- the dispatcher -------------------------------------------------------------------

    def try_lock_dispatch(self) -> bool:
        """Take the file's dispatch lock (held until close, released by the kernel on a crash)."""
        import fcntl

        if self._lock_fd is not None:
            return True
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

    def attach(self, intake: Intake) -> None:
        """Report to `intake`, on the event loop after each commit, what it should handle.

        Deliveries reach it only through `pull` (and the room `pull` grants) until `detach`.
        """
        self._require()
        self._handover.intake = intake

    async def detach(self) -> None:
        """Stop handing deliveries over; returns once everything already handed was reported."""
        handover = self._handover

        def op(conn: sqlite3.Connection) -> None:
            handover.open.clear()
            handover.budget.clear()

        await self._require().submit(op)
        handover.intake = None

    def _claim(self, conn: sqlite3.Connection, subscriber: str, limit: int) -> list[StoredEvent]:
        rows = conn.execute(CLAIM, (self.owner, subscriber, subscriber, limit)).fetchall()
        return with_events(conn, rows, self._recent)

    async def claim(self, subscriber: str, limit: int) -> list[StoredEvent]:
        """Mark up to `limit` pending deliveries of `subscriber` in progress, oldest first."""

        def op(conn: sqlite3.Connection) -> list[StoredEvent]:
            return self._claim(conn, subscriber, limit)

        result: list[StoredEvent] = await self._require().submit(op)
        return result

    async def pull(self, subscriber: str, limit: int, room: int) -> int:
        """Claim up to `limit` pending deliveries of `subscriber` for the intake; how many.

        They reach the intake, in arrival order, before this returns. When none is left
        pending, up to `room` minus that many new deliveries of it are handed over as they
        are stored, without being pending first.
        """
        handover = self._handover

        def op(conn: sqlite3.Connection) -> int:
            claimed = self._claim(conn, subscriber, limit)
            handover.handed.extend(claimed)
            if len(claimed) < limit and handover.intake is not None:
                handover.budget[subscriber] = room - len(claimed)
                handover.open.add(subscriber)
            return len(claimed)

        count: int = await self._require().submit(op)
        return count

    def complete(self, done: Sequence[Completion]) -> asyncio.Future[None]:
        """Mark deliveries done (their room goes back to the intake)."""
        params = [(c.started_at + c.duration, c.duration, c.event_id, c.subscriber) for c in done]
        handover = self._handover

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE deliveries SET state = 2, finished_at = ?, duration = ?, owner = NULL,"
                " last_error = NULL WHERE event_id = ? AND subscriber = ? AND state = 1",
                params,
            )
            for c in done:
                if c.subscriber in handover.open:
                    handover.budget[c.subscriber] += 1

        return self._require().submit(op, urgent=False)

    def retry_later(
        self, delivery: DeliveryKey, attempt: Attempt, next_attempt_at: float
    ) -> asyncio.Future[None]:
        """Record a failed attempt; the delivery stays claimed until its next attempt."""
        event_id, subscriber = delivery
        params = (attempt.number, next_attempt_at, attempt.error, event_id, subscriber)
        record = attempt_row(delivery, attempt)

        def op(conn: sqlite3.Connection) -> None:
            # Only while it is in progress: a delivery erased or discarded meanwhile stays so.
            if conn.execute(
                "UPDATE deliveries SET attempts = ?, next_attempt_at = ?, last_error = ?"
                " WHERE event_id = ? AND subscriber = ? AND state = 1",
                params,
            ).rowcount:
                conn.execute(INSERT_ATTEMPT, record)

        return self._require().submit(op)

    def bury(self, delivery: DeliveryKey, attempt: Attempt) -> asyncio.Future[None]:
        """Record the last failed attempt and make the delivery a dead letter."""
        event_id, subscriber = delivery
        params = (attempt.number, attempt.error, time.time(), event_id, subscriber)
        record = attempt_row(delivery, attempt)

        def op(conn: sqlite3.Connection) -> None:
            if conn.execute(
                "UPDATE deliveries SET state = 3, attempts = ?, last_error = ?, finished_at = ?,"
                " owner = NULL WHERE event_id = ? AND subscriber = ? AND state = 1",
                params,
            ).rowcount:
                conn.execute(INSERT_ATTEMPT, record)

        return self._require().submit(op)

    async def release(self, deliveries: Sequence[DeliveryKey]) -> None:
        """Give claimed deliveries back (pending) so they are handled after a restart."""
        keys = list(deliveries)

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE deliveries SET state = 0, owner = NULL"
                " WHERE state = 1 AND event_id = ? AND subscriber = ?",
                keys,
            )

        if keys:
            await self._require().submit(op)

    async def recover(self) -> int:
        """On taking the dispatch lock: give back what any other process had in progress."""
        owner = self.owner

        def op(conn: sqlite3.Connection) -> int:
            changed: int = conn.execute(
                "UPDATE deliveries SET state = 0, owner = NULL"
                " WHERE state < 2 AND state = 1 AND owner IS NOT ?",
                (owner,),
            ).rowcount
            conn.execute("DELETE FROM owners WHERE owner != ?", (owner,))
            return changed

        count: int = await self._require().submit(op)
        return count

    async def heartbeat(self) -> bool:
        """Keep this process's claims leased for another `lease` seconds; False if the lease
        had run out before (only the dispatch lock's holder dispatches from a file, so that
        matters to shared inboxes only)."""
        now = time.time()
        params = (self.owner, self._name, now + self.lease)
        first = not self._leased
        self._leased = True

        def op(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT expires_at FROM owners WHERE owner = ?", (self.owner,))
            before = row.fetchone()
            conn.execute(
                "INSERT INTO owners (owner, name, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (owner) DO UPDATE SET expires_at = excluded.expires_at",
                params,
            )
            return first if before is None else bool(before[0] >= now)

        alive: bool = await self._require().submit(op)
        return alive

    async def probe(self) -> None:
        """Write and commit a row through the writer thread, and take it back in the same
        transaction: a full disk, a lost lock or a dead writer fails it."""

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO owners (owner, name, expires_at) VALUES ('probe', 'probe', 0)"
                " ON CONFLICT (owner) DO UPDATE SET expires_at = 0"
            )
            conn.execute("DELETE FROM owners WHERE owner = 'probe'")

        await self._require().submit(op)

    async def owned(self) -> set[DeliveryKey]:
        """Every delivery this process holds in progress."""
        owner = self.owner

        def op(conn: sqlite3.Connection) -> set[DeliveryKey]:
            rows = conn.execute(
                "SELECT event_id, subscriber FROM deliveries"
                " WHERE state < 2 AND state = 1 AND owner = ?",
                (owner,),
            )
            return {(int(r[0]), str(r[1])) for r in rows}

        result: set[DeliveryKey] = await self._require().submit(op)
        return result

    async def held(self, deliveries: Sequence[DeliveryKey]) -> set[DeliveryKey]:
        """Those of `deliveries` this process still holds in progress."""
        keys = list(deliveries)
        owner = self.owner

        def op(conn: sqlite3.Connection) -> set[DeliveryKey]:
            found: set[DeliveryKey] = set()
            for event_id, subscriber in keys:
                row = conn.execute(
                    "SELECT 1 FROM deliveries WHERE event_id = ? AND subscriber = ?"
                    " AND state = 1 AND owner = ?",
                    (event_id, subscriber, owner),
                ).fetchone()
                if row is not None:
                    found.add((event_id, subscriber))
            return found

        result: set[DeliveryKey] = await self._require().submit(op)
        return result

    async def reclaim(self) -> int:
        """Give back the deliveries held by processes whose lease expired (never this one's,
        which its lanes still hold); how many."""
        now = time.time()

        def op(conn: sqlite3.Connection) -> int:
            changed: int = conn.execute(
                "UPDATE deliveries SET state = 0, owner = NULL WHERE state < 2 AND state = 1"
                " AND (owner IS NULL OR owner != ? AND owner NOT IN"
                " (SELECT owner FROM owners WHERE expires_at >= ?))",
                (self.owner, now),
            ).rowcount
            conn.execute("DELETE FROM owners WHERE expires_at < ?", (now,))
            return changed

        count: int = await self._require().submit(op)
        return count

    async def purge(self, *, now: float | None = None, chunk: int = 2000) -> int:
        """Delete events past retention whose every delivery is finished; how many."""
        cutoff = (time.time() if now is None else now) - self.retention
        removed = 0
        after = 0
        while True:

            def op(conn: sqlite3.Connection, after: int = after) -> tuple[int, int, bool]:
                return purge_chunk(conn, after, chunk, cutoff)

            count: int
            finished: bool
            count, after, finished = await self._require().submit(op)
            removed += count
            if finished:
                return removed

    async def expire(self, *, now: float | None = None, chunk: int = 2000) -> Expired:
        """Discard dead letters past dead retention; remove old finished events' payloads
        (a chunk per write, so requests are not held up behind it)."""
        now = time.time() if now is None else now
        dead_cutoff, cutoff = now - self.dead_retention, now - self.payload_retention
        dropped: list[DeliveryKey] = await self._require().submit(
            lambda conn: drop_dead(conn, dead_cutoff)
        )
        scrubbed, after = 0, 0
        while True:

            def op(conn: sqlite3.Connection, after: int = after) -> tuple[int, int, bool]:
                return scrub_chunk(conn, after, chunk, cutoff)

            count: int
            finished: bool
            count, after, finished = await self._require().submit(op)
            scrubbed += count
            if finished:
                return Expired(scrubbed, tuple(dropped))


# -- the registry's entry points (`receiver.inbox.base.BACKENDS`) ----------------------------


def open_sqlite_inbox(url: str, options: InboxOptions) -> SqliteInbox:
    """The inbox of SQLite URL or path `url`."""
    return SqliteInbox(
        inbox_path(url),
        retention_days=options.retention_days,
        lease=options.lease,
        payload_retention_days=options.payload_retention_days,
        dead_retention_days=options.dead_retention_days,
    )


def open_sqlite_admin(url: str, options: InboxOptions) -> Any:
    """The admin side of the SQLite inbox at `url`; StorageError if there is none."""
    from receiver.inbox.sqlite_admin import SqliteAdmin

    return SqliteAdmin(inbox_path(url), options)


def check(url: str) -> None:
    """Refuse, before serving, an inbox file that cannot be opened (ConfigError, one line)."""
    try:
        connect(inbox_path(url)).close()
    except StorageError as exc:
        raise ConfigError(str(exc)) from exc


def describe_url(url: str) -> str:
    """The inbox file, for messages."""
    return str(inbox_path(url))


def _ignore_failure(future: asyncio.Future[Any]) -> None:
    """Retrieve a best-effort write's error (the lease runs out by itself)."""
    if not future.cancelled():
        future.exception()

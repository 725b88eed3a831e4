"""The shared inbox: PostgreSQL through psycopg 3, for several receivers and workers.

Appends are batched: whatever arrives while a batch is being committed goes into the next,
which stores all its events and their deliveries in one statement and one commit, so a
receiver pays one round trip per batch, not per request. A request is answered only once
PostgreSQL confirmed that commit (with `synchronous_commit` as the server sets it: see
docs/scaling.md for what survives the loss of the primary). Dedup is the unique digest index:
the same event arriving at two receivers at once is stored once.

Any number of processes dispatch (`exclusive` is False). A claim takes a subscriber's oldest
pending deliveries whose call no other process has in progress, under a per-subscriber
advisory lock so that two claims cannot split a call between them: a call's events are
handled by one process at a time, in order. Claims are held by the process's lease in
`receiver_owners`, renewed by its heartbeat on the server's clock; the deliveries of a process
whose lease ran out are taken back by the others (`reclaim`). Storing or making a delivery
pending notifies `receiver_deliveries` (triggers), so dispatchers LISTEN rather than poll;
they also look every poll interval, in case a notification was lost with a connection.

Nothing is handed over at commit as the SQLite inbox does: another process may hold the same
call, so every delivery is claimed. While PostgreSQL is unreachable every write fails at once
with a `StorageError` (a 503 to the sender); the pool reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
import zlib
from collections.abc import Callable, Collection, Sequence
from typing import Any

from receiver.exceptions import ConfigError, StorageError
from receiver.inbox.base import InboxOptions, Intake
from receiver.inbox.models import (
    Attempt,
    Completion,
    DeliveryKey,
    Expired,
    NewEvent,
    StoredEvent,
)
from receiver.inbox.postgres_expiry import DROP_DEAD, SCRUB, SCRUB_SCAN
from receiver.inbox.postgres_schema import (
    NOTIFY_CHANNEL,
    SCHEMA_VERSION,
    check_url,
    describe_url,
    migrate,
    schema_version,
)
from receiver.inbox.rows import DELIVERY_COLUMNS, EVENT_COLUMNS, delivery, digest
from receiver.logs import RateLimitedLog

__all__ = ["PostgresInbox", "check", "describe", "open_postgres_admin", "open_postgres_inbox"]

log = logging.getLogger("receiver.inbox")

BATCH_LIMIT = 1000
"""Most events stored by one statement."""

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for a new connection to the server (libpq's connect_timeout, rounded)."""

POOL_WAIT = 1.0
"""Seconds a write waits for a pooled connection: while PostgreSQL is unreachable the pool
has none, and the write fails (a 503) rather than hold its request."""

UNREACHABLE_FOR = 0.5
"""Seconds after a write found PostgreSQL unreachable during which writes fail at once (a
503, the reason repeated) instead of each waiting POOL_WAIT; then one tries again."""

STORE_TIMEOUT = 5.0
"""Seconds a batch of appends may take to commit before its requests are answered 503 (a
PostgreSQL that hangs, or waits for a synchronous standby that is gone). The batch may still
commit after: the senders retry and the copies are duplicates; nothing unstored gets a 200."""

KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}
"""libpq settings so that a connection to a server that vanished (a failed-over primary's
address) is found dead within seconds, not the kernel's two hours."""


APPEND = """
WITH input AS (
    SELECT * FROM unnest(
        %(source)s::text[], %(dedup_key)s::text[], %(digest)s::bytea[], %(event_type)s::text[],
        %(order_key)s::text[], %(payload)s::bytea[], %(received_at)s::float8[],
        %(subscribers)s::text[], %(headers)s::bytea[]
    ) WITH ORDINALITY AS t(source, dedup_key, digest, event_type, order_key, payload,
                           received_at, subscribers, headers, n)
), new AS (
    INSERT INTO receiver_events (source, dedup_key, digest, event_type, order_key, payload,
                                 received_at, headers)
    SELECT source, dedup_key, digest, event_type, order_key, payload, received_at, headers
    FROM input ORDER BY n
    ON CONFLICT (digest) DO NOTHING
    RETURNING id, digest
), stored AS (
    INSERT INTO receiver_deliveries (event_id, subscriber, order_key, state, next_attempt_at)
    SELECT new.id, s.subscriber, input.order_key, 0, input.received_at
    FROM new JOIN input ON input.digest = new.digest,
         unnest(string_to_array(input.subscribers, ',')) AS s(subscriber)
    WHERE input.subscribers <> ''
    RETURNING 1
)
SELECT new.digest, (SELECT count(*) FROM stored) FROM new
"""

CLAIM = f"""
UPDATE receiver_deliveries d SET state = 1, owner = %(owner)s
WHERE d.subscriber = %(subscriber)s AND d.event_id IN (
    SELECT p.event_id FROM receiver_deliveries p
    WHERE p.subscriber = %(subscriber)s AND p.state = 0
      AND NOT EXISTS (
          SELECT 1 FROM receiver_deliveries r
          WHERE r.subscriber = p.subscriber AND r.state = 1 AND r.order_key = p.order_key
            AND r.owner <> %(owner)s)
    ORDER BY p.event_id LIMIT %(limit)s)
RETURNING {DELIVERY_COLUMNS}
"""  # noqa: S608 - constants

RECORD_ATTEMPT = """
WITH changed AS (
    UPDATE receiver_deliveries SET attempts = %(number)s, last_error = %(error)s,
        next_attempt_at = coalesce(%(next)s, next_attempt_at),
        state = CASE WHEN %(dead)s THEN 3 ELSE state END,
        finished_at = CASE WHEN %(dead)s THEN %(now)s ELSE finished_at END,
        owner = CASE WHEN %(dead)s THEN NULL ELSE owner END
    WHERE event_id = %(event_id)s AND subscriber = %(subscriber)s AND owner = %(owner)s
    RETURNING 1
)
INSERT INTO receiver_attempts (event_id, subscriber, number, started_at, duration, outcome, error)
SELECT %(event_id)s, %(subscriber)s, %(number)s, %(started_at)s, %(duration)s, %(outcome)s,
       %(error)s
FROM changed
"""

NOW = "extract(epoch FROM clock_timestamp())"


def describe_error(error: BaseException) -> str:
    """A database error in a few words, on one line."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:300]


class _Pending:
    """An append waiting for its batch."""

    __slots__ = ("event", "future", "now", "subscribers")

    def __init__(self, event: NewEvent, subscribers: str, future: asyncio.Future[bool]) -> None:
        self.event = event
        self.subscribers = subscribers
        self.future = future
        self.now = time.time()


class PostgresInbox:
    """The PostgreSQL inbox as a receiver or worker process uses it."""

    kind = "postgresql"
    exclusive = False

    def __init__(self, url: str, options: InboxOptions) -> None:
        check_url(url)
        self.url = url
        self.retention = options.retention_days * 86400.0
        self.options = options
        self.lease = options.lease
        self.migrate_on_open = options.migrate
        self.owner = secrets.token_hex(6)
        self._name = f"{socket.gethostname()}:{os.getpid()}"
        self._pool: Any = None
        self._queue: list[_Pending] = []
        self._flushing: asyncio.Task[None] | None = None
        self._intake: Intake | None = None
        self._listener: asyncio.Task[None] | None = None
        self._errors = RateLimitedLog(log)
        self._closed = False
        self._leased = False  # a heartbeat has leased this owner: a missing row is a loss
        self._unreachable: tuple[float, str] | None = None  # until when, and why

    def __repr__(self) -> str:
        return f"PostgresInbox({describe_url(self.url)!r})"

    # -- lifecycle ----------------------------------------------------------------

    async def open(self, on_failure: Callable[[BaseException], None] | None = None) -> None:
        """Migrate the schema if allowed (else check it), then open the connection pool."""
        from psycopg_pool import AsyncConnectionPool

        await asyncio.to_thread(self._prepare_schema)
        self._pool = AsyncConnectionPool(
            self.url,
            min_size=2,
            max_size=8,
            open=False,
            kwargs={"autocommit": True, **KEEPALIVES},
            timeout=POOL_WAIT,
            reconnect_timeout=365 * 86400.0,  # keep trying for as long as PostgreSQL is away
            name="receiver-inbox",
        )
        await self._pool.open(wait=False)
        await self.heartbeat()

    def _prepare_schema(self) -> None:
        import psycopg

        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
                if self.migrate_on_open:
                    before, after = migrate(conn)
                    if before != after:
                        log.warning(
                            "migrated the inbox schema from version %d to %d", before, after
                        )
                    return
                version = schema_version(conn)
        except psycopg.Error as exc:
            raise StorageError(
                f"cannot open inbox {describe_url(self.url)}: {describe_error(exc)}"
            ) from exc
        if version != SCHEMA_VERSION:
            raise ConfigError(
                f"inbox {describe_url(self.url)} has schema {version}, this receiver needs "
                f"{SCHEMA_VERSION}: run `receiver inbox migrate`"
            )

    @property
    def failure(self) -> str | None:
        """Never set: while PostgreSQL is away writes fail, and work again once it is back."""
        return None

    async def close(self) -> None:
        """Commit what is queued, stop listening, close the pool."""
        self._closed = True
        if self._flushing is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._flushing), CONNECT_TIMEOUT)
        for pending in self._queue:
            if not pending.future.done():
                pending.future.set_exception(StorageError("inbox is closed"))
        self._queue.clear()
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.wait([self._listener])
            self._listener = None
        if self._pool is not None:
            await self._forget_lease(self._pool)
            await self._pool.close()
            self._pool = None

    async def _forget_lease(self, pool: Any) -> None:
        """Delete this process's lease row: it no longer dispatches (readiness checks see it
        at once, and its leftover claims are taken over without waiting for the lease)."""
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                async with pool.connection() as conn:
                    await conn.execute(
                        "DELETE FROM receiver_owners WHERE owner = %s", (self.owner,)
                    )
        except Exception as exc:  # the lease runs out by itself
            log.debug("could not delete this process's lease at close: %s", exc)

    def _require(self) -> Any:
        if self._pool is None or self._closed:
            raise StorageError("inbox is not open")
        return self._pool

    @contextlib.asynccontextmanager
    async def _connection(self) -> Any:
        """A pooled connection; any failure to get or use it is a StorageError."""
        import psycopg
        from psycopg_pool import PoolTimeout

        pool = self._require()
        if self._unreachable is not None and time.monotonic() < self._unreachable[0]:
            raise StorageError(f"inbox write failed: {self._unreachable[1]}")
        try:
            async with pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            reason = f"PostgreSQL unreachable (no connection within {POOL_WAIT:g}s)"
            self._unreachable = (time.monotonic() + UNREACHABLE_FOR, reason)
            raise StorageError(f"inbox write failed: {reason}") from exc
        except psycopg.OperationalError as exc:
            self._unreachable = (time.monotonic() + UNREACHABLE_FOR, describe_error(exc))
            raise StorageError(f"inbox write failed: {describe_error(exc)}") from exc
        except psycopg.Error as exc:
            raise StorageError(f"inbox write failed: {describe_error(exc)}") from exc
        self._unreachable = None

    # -- the request path ---------------------------------------------------------------

    def append(
        self, event: NewEvent, subscribers: Sequence[str] = ("default",)
    ) -> asyncio.Future[bool]:
        """Queue `event` for the next batch; True once stored, False if a duplicate."""
        self._require()
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(event, ",".join(dict.fromkeys(subscribers)), future))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush(), name="inbox-batches")
        return future

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:BATCH_LIMIT], self._queue[BATCH_LIMIT:]
                await self._store(batch)
        finally:
            self._flushing = None

    async def _store(self, batch: list[_Pending]) -> None:
        first: dict[bytes, _Pending] = {}
        later: list[tuple[_Pending, bytes]] = []
        for pending in batch:
            key = digest(pending.event.source, pending.event.dedup_key)
            if key in first:
                later.append((pending, key))  # a copy in the same batch: a duplicate
            else:
                first[key] = pending
        columns: dict[str, list[Any]] = {
            name: []
            for name in (
                "source", "dedup_key", "digest", "event_type", "order_key", "payload",
                "received_at", "subscribers", "headers",
            )
        }  # fmt: skip
        for key, pending in first.items():
            event = pending.event
            columns["source"].append(event.source)
            columns["dedup_key"].append(event.dedup_key)
            columns["digest"].append(key)
            columns["event_type"].append(event.event_type)
            columns["order_key"].append(event.order_key)
            columns["payload"].append(event.payload)
            columns["received_at"].append(pending.now)
            columns["subscribers"].append(pending.subscribers)
            columns["headers"].append(event.headers)
        try:
            rows = await asyncio.wait_for(self._append_batch(columns), STORE_TIMEOUT)
        except TimeoutError:
            exc = StorageError(f"the inbox did not commit within {STORE_TIMEOUT:g}s")
            self._errors.error("could not store %d event(s): %s", len(batch), exc)
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(StorageError(str(exc)))
            return
        except StorageError as exc:
            self._errors.error("could not store %d event(s): %s", len(batch), exc)
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(StorageError(str(exc)))
            return
        new = {bytes(row[0]) for row in rows}
        for key, pending in first.items():
            if not pending.future.done():
                pending.future.set_result(key in new)
        for pending, _ in later:
            if not pending.future.done():
                pending.future.set_result(False)

    async def _append_batch(self, columns: dict[str, list[Any]]) -> list[Any]:
        async with self._connection() as conn:
            rows: list[Any] = await (await conn.execute(APPEND, columns)).fetchall()
            return rows

    # -- the dispatcher -------------------------------------------------------------------

    def try_lock_dispatch(self) -> bool:
        """Any number of processes dispatch from a shared inbox."""
        return True

    def attach(self, intake: Intake) -> None:
        """Tell `intake` which subscribers have new pending deliveries, as notified."""
        self._require()
        self._intake = intake
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="inbox-listen")

    async def detach(self) -> None:
        """Stop telling the intake anything."""
        self._intake = None
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.wait([self._listener])
            self._listener = None

    async def _listen(self) -> None:
        import psycopg
        from psycopg.conninfo import make_conninfo

        delay = 0.5
        while True:
            try:
                conninfo = make_conninfo(self.url, **KEEPALIVES)
                conn = await psycopg.AsyncConnection.connect(
                    conninfo, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT)
                )
                async with conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    delay = 0.5
                    # What was stored before LISTEN took effect (at first, or while it was
                    # reconnecting) notified nobody: any subscriber may have some.
                    self._tell(None)
                    async for notify in conn.notifies():
                        self._tell(notify.payload)
            except psycopg.Error as exc:
                self._errors.warning(
                    "inbox notifications lost (%s); reconnecting", describe_error(exc)
                )
            await asyncio.sleep(delay)
            delay = min(5.0, delay * 2)

    def _tell(self, payload: str | None) -> None:
        intake = self._intake
        if intake is None:
            return
        names: Collection[str] = payload.split(",") if payload else ("*",)
        intake((), names)

    async def _claim(self, conn: Any, subscriber: str, limit: int) -> list[StoredEvent]:
        async with conn.transaction():
            lock = zlib.crc32(f"receiver:claim:{subscriber}".encode())
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
            cursor = await conn.execute(
                CLAIM, {"owner": self.owner, "subscriber": subscriber, "limit": limit}
            )
            rows = await cursor.fetchall()
        if not rows:
            return []
        ids = sorted({row[0] for row in rows})
        cursor = await conn.execute(
            f"SELECT {EVENT_COLUMNS} FROM receiver_events WHERE id = ANY(%s)",  # noqa: S608
            (ids,),
        )
        events = {row[0]: row for row in await cursor.fetchall()}
        found = [delivery(events[row[0]], row) for row in rows if row[0] in events]
        return sorted(found, key=lambda d: d.id)

    async def claim(self, subscriber: str, limit: int) -> list[StoredEvent]:
        """Take up to `limit` pending deliveries of `subscriber`, oldest first, whose calls no
        other process has in progress."""
        async with self._connection() as conn:
            return await self._claim(conn, subscriber, limit)

    async def pull(self, subscriber: str, limit: int, room: int) -> int:
        """Claim up to `limit` deliveries of `subscriber` and hand them to the intake."""
        claimed = await self.claim(subscriber, limit)
        if claimed and self._intake is not None:
            self._intake(claimed, ())
        return len(claimed)

    def _write(self, query: str, params: Any) -> asyncio.Future[None]:
        async def run() -> None:
            async with self._connection() as conn:
                await conn.execute(query, params)

        self._require()
        return asyncio.ensure_future(run())

    def complete(self, done: Sequence[Completion]) -> asyncio.Future[None]:
        """Mark deliveries done, with when and how long their successful attempt ran."""
        return self._write(
            "UPDATE receiver_deliveries d SET state = 2, finished_at = v.started + v.duration,"
            " duration = v.duration, owner = NULL, last_error = NULL"
            " FROM unnest(%s::bigint[], %s::text[], %s::float8[], %s::float8[])"
            " AS v(event_id, subscriber, started, duration)"
            " WHERE d.event_id = v.event_id AND d.subscriber = v.subscriber AND d.owner = %s",
            (
                [c.event_id for c in done],
                [c.subscriber for c in done],
                [c.started_at for c in done],
                [c.duration for c in done],
                self.owner,  # a delivery another process took over is not ours to finish
            ),
        )

    def _record(
        self, delivery: DeliveryKey, attempt: Attempt, *, dead: bool, next_at: float | None
    ) -> asyncio.Future[None]:
        event_id, subscriber = delivery
        return self._write(
            RECORD_ATTEMPT,
            {
                "event_id": event_id,
                "subscriber": subscriber,
                "owner": self.owner,
                "number": attempt.number,
                "error": attempt.error,
                "next": next_at,
                "dead": dead,
                "now": time.time(),
                "started_at": attempt.started_at,
                "duration": attempt.duration,
                "outcome": attempt.outcome,
            },
        )

    def retry_later(
        self, delivery: DeliveryKey, attempt: Attempt, next_attempt_at: float
    ) -> asyncio.Future[None]:
        """Record a failed attempt; the delivery stays claimed until its next attempt."""
        return self._record(delivery, attempt, dead=False, next_at=next_attempt_at)

    def bury(self, delivery: DeliveryKey, attempt: Attempt) -> asyncio.Future[None]:
        """Record the last failed attempt and make the delivery a dead letter."""
        return self._record(delivery, attempt, dead=True, next_at=None)

    async def release(self, deliveries: Sequence[DeliveryKey]) -> None:
        """Return claimed deliveries to pending."""
        if not deliveries:
            return
        async with self._connection() as conn:
            await conn.execute(
                f"WITH released AS ({RELEASE} RETURNING d.subscriber) {NOTIFY_PENDING}",
                ([k[0] for k in deliveries], [k[1] for k in deliveries], self.owner),
            )

    async def recover(self) -> int:
        """Return to pending every delivery another process holds (for a process that knows
        them gone); how many."""
        async with self._connection() as conn:
            cursor = await conn.execute(
                "WITH released AS (UPDATE receiver_deliveries SET state = 0, owner = NULL"  # noqa: S608 - constants
                " WHERE state = 1 AND owner IS DISTINCT FROM %s"
                f" RETURNING subscriber) {NOTIFY_PENDING}",
                (self.owner,),
            )
            row = await cursor.fetchone()
            return int(row[0]) if row else 0

    async def heartbeat(self) -> bool:
        """Keep this process's claims leased for another `lease` seconds (server clock);
        False if the lease had already run out (others may have taken its claims)."""
        async with self._connection() as conn:
            cursor = await conn.execute(
                "WITH before AS (SELECT expires_at FROM receiver_owners WHERE owner = %s)"  # noqa: S608 - constants
                " INSERT INTO receiver_owners (owner, name, expires_at)"
                f" VALUES (%s, %s, {NOW} + %s) ON CONFLICT (owner)"
                " DO UPDATE SET expires_at = excluded.expires_at"
                f" RETURNING (SELECT bool_and(expires_at >= {NOW}) FROM before)",
                (self.owner, self.owner, self._name, self.lease),
            )
            row = await cursor.fetchone()
        alive = row[0] if row is not None and row[0] is not None else not self._leased
        self._leased = True
        return bool(alive)

    async def probe(self) -> None:
        """Ask the server whether it takes writes now (not a standby, not read-only)."""
        async with self._connection() as conn:
            cursor = await conn.execute(
                "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')"
            )
            row = await cursor.fetchone()
        if row is None or row[0] or row[1] != "off":
            raise StorageError(
                f"inbox {describe_url(self.url)} is read-only (a standby, or read-only)"
            )

    async def owned(self) -> set[DeliveryKey]:
        """Every delivery this process holds in progress."""
        async with self._connection() as conn:
            cursor = await conn.execute(
                "SELECT event_id, subscriber FROM receiver_deliveries"
                " WHERE state = 1 AND owner = %s",
                (self.owner,),
            )
            return {(int(row[0]), str(row[1])) for row in await cursor.fetchall()}

    async def held(self, deliveries: Sequence[DeliveryKey]) -> set[DeliveryKey]:
        """Those of `deliveries` this process still holds (after its lease ran out, others
        may have taken some)."""
        if not deliveries:
            return set()
        async with self._connection() as conn:
            cursor = await conn.execute(
                "SELECT d.event_id, d.subscriber FROM receiver_deliveries d"
                " JOIN unnest(%s::bigint[], %s::text[]) AS v(event_id, subscriber)"
                " ON d.event_id = v.event_id AND d.subscriber = v.subscriber"
                " WHERE d.state = 1 AND d.owner = %s",
                ([k[0] for k in deliveries], [k[1] for k in deliveries], self.owner),
            )
            return {(int(row[0]), str(row[1])) for row in await cursor.fetchall()}

    async def reclaim(self) -> int:
        """Give back the deliveries of processes whose lease ran out; how many."""
        async with self._connection() as conn:
            cursor = await conn.execute(
                "WITH released AS (UPDATE receiver_deliveries SET state = 0, owner = NULL"  # noqa: S608 - constants
                " WHERE state = 1 AND (owner IS NULL OR owner <> %s AND owner NOT IN"
                f" (SELECT owner FROM receiver_owners WHERE expires_at >= {NOW}))"
                f" RETURNING subscriber) {NOTIFY_PENDING}",
                (self.owner,),
            )
            row = await cursor.fetchone()
            count = int(row[0]) if row else 0
            await conn.execute(
                f"DELETE FROM receiver_owners WHERE expires_at < {NOW} - 3600"  # noqa: S608
            )
            return count

    async def purge(self, *, now: float | None = None, chunk: int = 2000) -> int:
        """Delete events past retention whose every delivery is finished; how many.

        In chunks of `chunk` events by id from the oldest, each in a transaction: the
        finished deliveries of the old events go first (a delivery replayed meanwhile is no
        longer finished and stays), then the events left without deliveries.
        """
        cutoff = (time.time() if now is None else now) - self.retention
        removed, after = 0, 0
        while True:
            async with self._connection() as conn, conn.transaction():
                cursor = await conn.execute(PURGE_SCAN, {"after": after, "chunk": chunk})
                scanned = await cursor.fetchall()
                if not scanned:
                    return removed
                old = [row[0] for row in scanned if row[1] < cutoff]
                await conn.execute(PURGE_DELIVERIES, (old,))
                cursor = await conn.execute(PURGE_EVENTS, (old,))
                removed += int(cursor.rowcount)
            after = scanned[-1][0]
            if scanned[-1][1] >= cutoff or len(scanned) < chunk:
                return removed

    async def expire(self, *, now: float | None = None, chunk: int = 2000) -> Expired:
        """Discard dead letters past dead retention; remove old finished events' payloads."""
        now = time.time() if now is None else now
        async with self._connection() as conn, conn.transaction():
            cursor = await conn.execute(
                DROP_DEAD, (now - self.options.dead_retention_days * 86400.0,)
            )
            dropped = sorted((int(e), str(s)) for e, s in await cursor.fetchall())
        cutoff = now - self.options.payload_retention_days * 86400.0
        scrubbed, after = 0, 0
        while True:
            async with self._connection() as conn, conn.transaction():
                cursor = await conn.execute(SCRUB_SCAN, {"after": after, "chunk": chunk})
                scanned = await cursor.fetchall()
                if not scanned:
                    break
                old = [row[0] for row in scanned if row[1] < cutoff and row[2]]
                if old:
                    cursor = await conn.execute(SCRUB, (old,))
                    row = await cursor.fetchone()
                    scrubbed += int(row[0]) if row else 0
            after = scanned[-1][0]
            if scanned[-1][1] >= cutoff or len(scanned) < chunk:
                break
        return Expired(scrubbed, tuple(dropped))


RELEASE = (
    "UPDATE receiver_deliveries d SET state = 0, owner = NULL"
    " FROM unnest(%s::bigint[], %s::text[]) AS v(event_id, subscriber)"
    " WHERE d.state = 1 AND d.event_id = v.event_id AND d.subscriber = v.subscriber"
    " AND d.owner = %s"
)

NOTIFY_PENDING = (
    "SELECT count(*), pg_notify('receiver_deliveries', string_agg(DISTINCT subscriber, ','))"
    " FROM released"
)
"""Tell the dispatchers which subscribers have deliveries pending again (`released`)."""

PURGE_SCAN = (
    "SELECT id, received_at FROM receiver_events WHERE id > %(after)s ORDER BY id LIMIT %(chunk)s"
)
"""The next chunk of events by id (a start point, so that old open events are passed once)."""

PURGE_DELIVERIES = """
WITH finished AS (
    SELECT e.id FROM receiver_events e
    WHERE e.id = ANY(%s)
      AND NOT EXISTS (SELECT 1 FROM receiver_deliveries d
                      WHERE d.event_id = e.id AND d.state IN (0, 1, 3))
), gone_attempts AS (
    DELETE FROM receiver_attempts WHERE event_id IN (SELECT id FROM finished)
)
DELETE FROM receiver_deliveries
WHERE event_id IN (SELECT id FROM finished) AND state IN (2, 4)
"""
"""Delete the finished deliveries (and attempts) of the old events among `%s` whose every
delivery is finished; a delivery replayed meanwhile is re-checked (`state IN (2, 4)`)."""

PURGE_EVENTS = """
DELETE FROM receiver_events e
WHERE e.id = ANY(%s)
  AND NOT EXISTS (SELECT 1 FROM receiver_deliveries d WHERE d.event_id = e.id)
"""
"""Then delete those of the events among `%s` left without deliveries."""


# -- the registry's entry points (`receiver.inbox.base.BACKENDS`) ----------------------------


def open_postgres_inbox(url: str, options: InboxOptions) -> PostgresInbox:
    """The inbox at PostgreSQL URL `url`."""
    return PostgresInbox(url, options)


def open_postgres_admin(url: str, options: InboxOptions) -> Any:
    """The admin side of the PostgreSQL inbox at `url`."""
    from receiver.inbox.postgres_admin import PostgresAdmin

    return PostgresAdmin(url, options)


def check(url: str) -> None:
    """Refuse, before serving, a URL that cannot work or a server that cannot be reached."""
    check_url(url)
    try:
        import psycopg
    except ImportError:
        raise ConfigError(
            "a postgresql:// inbox needs psycopg: pip install 'cc-webhook-receiver[postgres]'"
        ) from None
    try:
        psycopg.connect(url, connect_timeout=10).close()
    except psycopg.Error as exc:
        raise ConfigError(f"cannot reach inbox {describe_url(url)}: {describe_error(exc)}") from exc


def describe(url: str) -> str:
    """The URL without a password."""
    return describe_url(url)

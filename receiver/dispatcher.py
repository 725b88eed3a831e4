"""Hands stored events to each subscriber's handler, off the request path.

Every subscriber is dispatched on its own (`receiver.lanes.SubscriberDispatch`): its own
lanes, worker tasks, room, retries and dead letters, so that one subscriber failing never
delays, repeats or buries another's deliveries, and per-call order holds per subscriber.
The `Dispatcher` holds the subscribers of one process: it routes what the inbox hands over
to them, and keeps this process's claims leased (`WorkQueue.heartbeat`) while taking back
those of processes that stopped renewing theirs (`WorkQueue.reclaim`). Should one of its
tasks end before `stop`, it reports that (`failure`, the `on_failure` callback): nothing
would be handled any more. Nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Collection, Iterable, Sequence

from receiver.exceptions import StorageError
from receiver.inbox.base import WorkQueue
from receiver.inbox.models import StoredEvent
from receiver.lanes import (
    AttemptObserver,
    DispatchPolicy,
    DispatchStats,
    SubscriberDispatch,
    Subscription,
    backoff_delay,
    error_text,
)

__all__ = ["DispatchPolicy", "DispatchStats", "Dispatcher", "Subscription", "backoff_delay"]

log = logging.getLogger("receiver.dispatcher")


class Dispatcher:
    """Runs every subscriber of this process against one work queue."""

    def __init__(
        self,
        inbox: WorkQueue,
        subscriptions: Sequence[Subscription],
        *,
        policy: DispatchPolicy | None = None,
        rng: random.Random | None = None,
        secrets: Iterable[str] = (),
        on_failure: Callable[[BaseException], None] | None = None,
        observer: AttemptObserver | None = None,
    ) -> None:
        """`secrets` are masked in the error texts it stores and logs; `on_failure` is called
        if one of its tasks ends before `stop` (else that is logged); `observer` is told of
        every attempt's end."""
        names = [s.name for s in subscriptions]
        if len(set(names)) != len(names):
            raise ValueError("two subscriptions share a name")
        self.inbox = inbox
        self.policy = policy or DispatchPolicy()
        self.failure: str | None = None
        """What ended before `stop` was called (nothing is handled any more), or None."""
        self._on_failure = on_failure
        self._stopping = False
        self._secrets = masked = sorted({s for s in secrets if s}, key=len, reverse=True)
        shared_rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._claiming = asyncio.Lock()
        """Held by every claim, and by the look for orphaned claims, which must not run
        while a claim's deliveries are on their way to the lanes."""
        self.subscribers = {
            s.name: SubscriberDispatch(
                inbox,
                s,
                self.policy,
                shared_rng,
                masked,
                self._ended,
                self.leased,
                self._claiming,
                self._unreachable,
                observer,
            )
            for s in subscriptions
        }
        self._keeper: asyncio.Task[None] | None = None
        self._lease_until = time.monotonic() + self.policy.lease
        self._connected_since: float | None = time.monotonic()
        """Since when the heartbeats succeed (None: the last one failed)."""

    @property
    def stats(self) -> DispatchStats:
        """Counts of every subscriber together."""
        total = DispatchStats()
        for subscriber in self.subscribers.values():
            total.add(subscriber.stats)
        return total

    async def start(self) -> None:
        """Lease, take back what stopped processes left in progress, then start feeding."""
        inbox = self.inbox
        renewing = time.monotonic()
        await inbox.heartbeat()
        self._lease_until = renewing + self.policy.lease
        recovered = await (inbox.recover() if inbox.exclusive else inbox.reclaim())
        if recovered:
            log.info("recovered %d delivery(ies) left in progress by a stopped process", recovered)
        inbox.attach(self._intake)
        for subscriber in self.subscribers.values():
            subscriber.start()
        self._keeper = asyncio.create_task(self._keep_leases(), name="dispatch-leases")
        self._keeper.add_done_callback(self._ended)

    def wake(self) -> None:
        """Tell every subscriber's feeder that new deliveries may be waiting."""
        for subscriber in self.subscribers.values():
            subscriber.wake()

    def _intake(self, deliveries: Sequence[StoredEvent], pending: Collection[str]) -> None:
        subscribers = self.subscribers
        for delivery in deliveries:
            subscribers[delivery.subscriber].admit(delivery)
        if "*" in pending:
            self.wake()
            return
        for name in pending:
            subscriber = subscribers.get(name)
            if subscriber is not None:
                subscriber.wake()

    def leased(self) -> bool:
        """Whether this process's lease is surely alive: a shared inbox's other processes
        take a lapsed one's claims over, so no attempt may start past it."""
        return self.inbox.exclusive or time.monotonic() < self._lease_until

    async def _keep_leases(self) -> None:
        interval = self.policy.lease / 3
        while True:
            renewing = time.monotonic()
            try:
                alive = await self.inbox.heartbeat()
            except StorageError as exc:
                log.error("could not renew the dispatch lease: %s", exc)
                self._connected_since = None
                await asyncio.sleep(min(1.0, interval))  # try again soon: the lease runs on
                continue
            if not alive and not self.inbox.exclusive:
                await self._lease_lapsed()
            self._lease_until = renewing + self.policy.lease
            if self._connected_since is None:
                self._connected_since = renewing
                if not self.inbox.exclusive:
                    await self._release_orphans()
            # After an outage every lease has run out: others get one lease to renew theirs
            # and record what they finished meanwhile before their claims are taken back.
            settled = renewing - self._connected_since >= self.policy.lease
            try:
                # Where one process dispatches at a time, it took back everything at start.
                if not self.inbox.exclusive and settled and await self.inbox.reclaim():
                    self.wake()
            except StorageError as exc:
                log.error("could not look for deliveries of stopped processes: %s", exc)
            await asyncio.sleep(max(0.0, renewing + interval - time.monotonic()))

    def _unreachable(self) -> None:
        """A write or claim failed: once the inbox answers again, look for lost claims."""
        self._connected_since = None

    async def _release_orphans(self) -> None:
        """After the inbox was unreachable: give back the deliveries it says this process
        holds that no lane has (a claim committed whose answer was lost with the
        connection): nobody else would ever take them, this process's lease being alive."""
        try:
            async with self._claiming:
                owned = await self.inbox.owned()
                known = {k for s in self.subscribers.values() for k in s.known()}
                orphans = sorted(owned - known)
                if orphans:
                    await self.inbox.release(orphans)
        except StorageError as exc:
            log.error("could not look for claims lost with a connection: %s", exc)
            self._connected_since = None  # look again after the next renewal
            return
        if orphans:
            log.warning(
                "gave back %d claimed delivery(ies) whose claim was lost with a connection",
                len(orphans),
            )
            self.wake()

    async def _lease_lapsed(self) -> None:
        """The lease ran out before this renewal (the process was paused, or cut off from the
        inbox, for longer than it): keep what this process still holds, drop what others took
        over, and go on."""
        waiting = [key for s in self.subscribers.values() for key in s.queued()]
        mine = await self.inbox.held(waiting)
        lost = set(waiting) - mine
        for subscriber in self.subscribers.values():
            subscriber.forget(lost)
        log.warning(
            "this process's dispatch lease ran out (it was paused or cut off for more than "
            "%gs): %d delivery(ies) were taken over by other processes and are dropped here, "
            "%d kept", self.policy.lease, len(lost), len(mine),
        )  # fmt: skip

    def _ended(self, task: asyncio.Task[None]) -> None:
        """A task of the dispatcher ended: fine while stopping, for a replaced worker or when
        cancelled (the loop is closing), else the dispatcher has stopped working."""
        if task.cancelled():
            return
        error = task.exception()  # retrieved even while stopping, so asyncio does not log it
        if self._stopping or self.failure is not None:
            return
        if error is None:
            error = RuntimeError("it returned")
        self.failure = f"{task.get_name()} ended: {error_text(error, self._secrets)}"
        if self._on_failure is not None:
            self._on_failure(error)
        else:
            log.critical("the dispatcher stopped: %s", self.failure, exc_info=error)

    async def stop(self, timeout: float) -> None:  # noqa: ASYNC109 - a bound, not a cancel scope
        """Stop claiming, let running handlers finish for up to `timeout`, release the rest.

        Returns within `timeout` plus ABANDON_AFTER (plus a tenth of a second) whatever the
        inbox does (locked by another process, stopped): handlers cut off at `timeout` get
        ABANDON_AFTER to honour their cancellation, meanwhile the last state writes are
        recorded; what could not be recorded by then is handed out again at the next start.
        """
        deadline = time.monotonic() + timeout
        self._stopping = True
        subscribers = list(self.subscribers.values())
        for subscriber in subscribers:
            subscriber.stopping = True
        helpers = [self._keeper] if self._keeper is not None else []
        for subscriber in subscribers:
            helpers.extend(subscriber.helpers())
        for helper in helpers:
            helper.cancel()
        if helpers:
            await asyncio.wait(helpers)  # unlike `await helper`, raises nothing
        try:  # what it already handed over is in the lanes once this returns
            await asyncio.wait_for(self.inbox.detach(), max(0.1, deadline - time.monotonic()))
        except (StorageError, TimeoutError) as exc:
            log.error("could not detach from the inbox: %s", exc or "timed out")
        await asyncio.gather(*(s.finish(deadline, timeout) for s in subscribers))

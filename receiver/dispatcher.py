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
    DispatchPolicy,
    DispatchStats,
    SubscriberDispatch,
    Subscription,
    backoff_delay,
    error_text,
)

__all__ = ["DispatchPolicy", "DispatchStats", "Dispatcher", "Subscription", "backoff_delay"]

log = logging.getLogger("receiver.dispatcher")


class LeaseLost(RuntimeError):
    """This process's lease on a shared inbox ran out: it must stop dispatching."""


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
    ) -> None:
        """`secrets` are masked in the error texts it stores and logs; `on_failure` is called
        if one of its tasks ends before `stop` (else that is logged)."""
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
        self.subscribers = {
            s.name: SubscriberDispatch(
                inbox, s, self.policy, shared_rng, masked, self._ended, self.leased
            )
            for s in subscriptions
        }
        self._keeper: asyncio.Task[None] | None = None
        self._lease_until = time.monotonic() + self.policy.lease

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
            await asyncio.sleep(interval)
            renewing = time.monotonic()
            try:
                alive = await self.inbox.heartbeat()
                if not alive and not self.inbox.exclusive:
                    raise LeaseLost(
                        f"this process's lease ran out (it was paused or cut off for more than "
                        f"{self.policy.lease:g}s): other processes may have taken its "
                        "deliveries over, so it stops rather than handle them twice"
                    )
                self._lease_until = renewing + self.policy.lease
                # Where one process dispatches at a time, it took back everything at start.
                if not self.inbox.exclusive and await self.inbox.reclaim():
                    self.wake()
            except StorageError as exc:
                log.error("could not renew the dispatch lease: %s", exc)

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

"""Hands stored events to handlers, off the request path.

Events that share an order key (`CallId`, else `EntityId`) form a lane and are handled
one at a time in arrival order; different lanes run in parallel on `workers` tasks. A
failed attempt is retried with exponential backoff and jitter while its lane waits, so
order holds; after `max_attempts` the event becomes a dead letter and the lane moves on.
Nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from receiver.exceptions import DecodeError, StorageError
from receiver.handling import EventHandler
from receiver.inbox.base import Inbox
from receiver.inbox.models import StoredEvent
from receiver.logs import RateLimitedLog

__all__ = ["DispatchStats", "Dispatcher", "backoff_delay"]

log = logging.getLogger("receiver.dispatcher")


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Delay before retry number `attempt` (1-based): exponential, capped, half jittered."""
    ceiling = min(cap, base * (2.0 ** (attempt - 1)))
    jitter: float = rng.random()
    return ceiling / 2 + jitter * ceiling / 2


@dataclass(slots=True)
class _Item:
    event: StoredEvent
    attempts: int
    not_before: float


@dataclass(slots=True)
class DispatchStats:
    """Counts since start, for the shutdown summary and tests."""

    handled: int = 0
    failed_attempts: int = 0
    dead: int = 0
    released: int = 0


class Dispatcher:
    """Claims events from an inbox and runs each through the handler of its source."""

    def __init__(
        self,
        inbox: Inbox,
        handlers: Mapping[str, EventHandler],
        default: EventHandler,
        *,
        workers: int = 16,
        max_attempts: int = 8,
        backoff_base: float = 1.0,
        backoff_max: float = 300.0,
        handler_timeout: float = 30.0,
        capacity: int = 2000,
        poll_interval: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("a dispatcher needs at least one worker")
        self.inbox = inbox
        self.handlers = dict(handlers)
        self.default = default
        self.workers = workers
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.handler_timeout = handler_timeout
        self.capacity = capacity
        self.poll_interval = poll_interval
        self.stats = DispatchStats()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._lanes: dict[str, deque[_Item]] = {}
        self._ready: asyncio.Queue[str | None] = asyncio.Queue()
        self._held = 0
        self._wake = asyncio.Event()
        self._full = False
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._feeder: asyncio.Task[None] | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._writes: set[asyncio.Future[None]] = set()
        self._done: list[int] = []
        self._deadlines: dict[asyncio.Task[Any], float] = {}
        self._overdue: set[asyncio.Task[Any]] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self._fail_log = RateLimitedLog(log)

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Give back what a previous run left claimed, then start feeding and working."""
        recovered = await self.inbox.recover()
        if recovered:
            log.info("recovered %d event(s) left in progress by a previous run", recovered)
        self._feeder = asyncio.create_task(self._feed(), name="dispatch-feeder")
        self._watchdog = asyncio.create_task(self._watch(), name="dispatch-watchdog")
        self._tasks = [
            asyncio.create_task(self._work(), name=f"dispatch-worker-{i}")
            for i in range(self.workers)
        ]

    def wake(self) -> None:
        """Tell the feeder that new events may be waiting."""
        self._wake.set()

    async def stop(self, timeout: float) -> None:  # noqa: ASYNC109 - a bound, not a cancel scope
        """Stop claiming, let running handlers finish for up to `timeout`, release the rest."""
        self._stopping = True
        for helper in (self._feeder, self._watchdog):
            if helper is not None:
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for _ in self._tasks:
            self._ready.put_nowait(None)
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=timeout)
            for task in late:
                task.cancel()
            if late:
                log.warning("%d handler(s) still running after %.1fs; cut off", len(late), timeout)
                await asyncio.wait(late)
        self._flush_done()
        if self._writes:
            await asyncio.wait(self._writes)
        leftover = [item.event.id for lane in self._lanes.values() for item in lane]
        self._lanes.clear()
        if leftover:
            try:
                await self.inbox.release(leftover)
            except StorageError as exc:
                log.error("could not release %d event(s): %s", len(leftover), exc)
            else:
                self.stats.released += len(leftover)
                log.info("released %d unfinished event(s) for the next start", len(leftover))

    # -- feeding ----------------------------------------------------------------------

    async def _feed(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()
            try:
                await self._fill()
            except StorageError as exc:
                log.error("could not claim events: %s", exc)

    async def _fill(self) -> None:
        while not self._stopping:
            if self._held >= self.capacity:
                self._full = True  # _advance wakes the feeder when there is room again
                return
            want = min(500, self.capacity - self._held)
            batch = await self.inbox.claim(want)
            for event in batch:
                self._admit(event)
            if len(batch) < want:
                return

    async def _watch(self) -> None:
        interval = min(1.0, max(0.01, self.handler_timeout / 20))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for task, deadline in list(self._deadlines.items()):
                if deadline <= now and task not in self._overdue:
                    self._overdue.add(task)
                    task.cancel()

    def _admit(self, event: StoredEvent) -> None:
        key = event.order_key or f"#{event.id}"
        item = _Item(event, event.attempts, event.next_attempt_at)
        self._held += 1
        lane = self._lanes.get(key)
        if lane is None:
            self._lanes[key] = deque([item])
            self._ready.put_nowait(key)
        else:
            lane.append(item)

    # -- working ----------------------------------------------------------------------

    async def _work(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        while True:
            key = await self._ready.get()
            if key is None or self._stopping:
                return
            lane = self._lanes[key]
            item = lane[0]
            delay = item.not_before - time.time()
            if delay > 0:
                self._later(delay, key)
                continue
            await self._attempt(task, key, lane, item)

    async def _attempt(
        self, task: asyncio.Task[Any], key: str, lane: deque[_Item], item: _Item
    ) -> None:
        event = item.event
        if event.attempts != item.attempts:
            event = item.event = dataclasses.replace(event, attempts=item.attempts)
        handler = self.handlers.get(event.source, self.default)
        # A deadline the watchdog enforces: far cheaper than a timeout context per event.
        self._deadlines[task] = time.monotonic() + self.handler_timeout
        try:
            await handler.handle(event)
        except asyncio.CancelledError:
            if task not in self._overdue:
                raise
            self._overdue.discard(task)
            task.uncancel()
            error: Exception = TimeoutError(f"handler timed out after {self.handler_timeout:g}s")
            await self._failed(key, lane, item, handler, event, error)
            return
        except Exception as exc:
            await self._failed(key, lane, item, handler, event, exc)
            return
        finally:
            self._deadlines.pop(task, None)
            if task in self._overdue:  # the handler swallowed the cancellation
                self._overdue.discard(task)
                task.uncancel()
        lane.popleft()
        self._held -= 1
        self.stats.handled += 1
        self._done.append(event.id)
        if len(self._done) == 1:
            # One write for everything completed in this turn of the event loop.
            asyncio.get_running_loop().call_soon(self._flush_done)
        self._advance(key, lane)

    async def _failed(
        self,
        key: str,
        lane: deque[_Item],
        item: _Item,
        handler: EventHandler,
        event: StoredEvent,
        error: Exception,
    ) -> None:
        item.attempts += 1
        self.stats.failed_attempts += 1
        text = f"{type(error).__name__}: {error}"[:2000]
        final = isinstance(error, DecodeError) or item.attempts >= self.max_attempts
        if final:
            lane.popleft()
            self._held -= 1
            self.stats.dead += 1
            self._track(self.inbox.bury(event.id, item.attempts, text))
            self._fail_log.warning(
                "event %d (%s) is a dead letter after %d attempt(s): %s",
                event.id, event.event_type, item.attempts, text,
            )  # fmt: skip
        else:
            delay = backoff_delay(item.attempts, self.backoff_base, self.backoff_max, self._rng)
            item.not_before = time.time() + delay
            self._track(self.inbox.retry_later(event.id, item.attempts, item.not_before, text))
            self._fail_log.warning(
                "event %d (%s) attempt %d failed, retrying in %.1fs: %s",
                event.id, event.event_type, item.attempts, delay, text,
            )  # fmt: skip
        try:
            await handler.failed(event, error, final=final)
        except Exception:
            log.exception("the handler's failure hook raised for event %d", event.id)
        if final:
            self._advance(key, lane)
        else:
            self._later(item.not_before - time.time(), key)

    def _flush_done(self) -> None:
        done, self._done = self._done, []
        if done:
            self._track(self.inbox.complete(done))

    def _advance(self, key: str, lane: deque[_Item]) -> None:
        if lane:
            self._ready.put_nowait(key)
        else:
            del self._lanes[key]
        if self._full and self._held <= self.capacity // 2:
            self._full = False
            self._wake.set()

    def _later(self, delay: float, key: str) -> None:
        loop = asyncio.get_running_loop()

        def ready() -> None:
            self._timers.discard(timer)
            if not self._stopping:
                self._ready.put_nowait(key)

        timer = loop.call_later(max(0.0, delay), ready)
        self._timers.add(timer)

    def _track(self, write: asyncio.Future[None]) -> None:
        self._writes.add(write)
        write.add_done_callback(self._written)

    def _written(self, write: asyncio.Future[None]) -> None:
        self._writes.discard(write)
        if not write.cancelled() and write.exception() is not None:
            log.error("could not record an event's state: %s", write.exception())

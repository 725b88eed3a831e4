"""Hands stored events to handlers, off the request path.

Events that share an order key (`CallId`, else `EntityId`) form a lane and are handled
one at a time in arrival order; different lanes run in parallel on `workers` tasks. A
failed attempt is retried with exponential backoff and jitter while its lane waits, so
order holds; after `max_attempts` the event becomes a dead letter and the lane moves on.
Nothing here knows about HTTP.

Whatever a handler raises (any exception, an exception that cannot even be printed, a
cancellation of its own) is a failed attempt; the error text that is logged and stored has the
configured secrets masked. Should a task of the dispatcher end all the same before `stop`, it
reports that (`failure`, the `on_failure` callback): nothing would be handled any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from receiver.exceptions import DecodeError, StorageError
from receiver.handling import EventHandler
from receiver.inbox.base import Inbox
from receiver.inbox.models import StoredEvent
from receiver.logs import RateLimitedLog

__all__ = ["DispatchStats", "Dispatcher", "backoff_delay"]

ABANDON_AFTER = 1.0  # seconds a timed-out handler gets to honour its cancellation
ERROR_TEXT_LIMIT = 2000  # characters of a failure's text kept with its event

log = logging.getLogger("receiver.dispatcher")


def _passes_through(exc: BaseException) -> bool:
    """Whether `exc`, raised by integrator code, must go on up rather than count as a failed
    attempt: a request to end the process, the cancellation of the task running it, or the
    closing of its coroutine (a task destroyed while the loop closes)."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
        return True
    if isinstance(exc, asyncio.CancelledError):
        task = asyncio.current_task()
        return task is not None and task.cancelling() > 0
    return False


def _error_text(error: BaseException, secrets: Sequence[str] = ()) -> str:
    """`Type: message` of `error`, fit to store and log: each of `secrets` masked, cut to
    ERROR_TEXT_LIMIT characters, characters that are not text (lone surrogates) escaped."""
    try:
        text = f"{type(error).__name__}: {error}"
    except Exception:  # an exception whose message cannot be made
        text = f"{type(error).__name__}: (its message could not be printed)"
    for secret in secrets:
        text = text.replace(secret, "[secret]")
    return text[:ERROR_TEXT_LIMIT].encode("utf-8", "backslashreplace").decode("utf-8")


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
        secrets: Iterable[str] = (),
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        """`secrets` are masked in the error texts it stores and logs; `on_failure` is called
        if one of its tasks ends before `stop` (else that is logged)."""
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
        self.failure: str | None = None
        """What ended before `stop` was called (nothing is handled any more), or None."""
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._on_failure = on_failure
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._lanes: dict[str, deque[_Item]] = {}
        self._ready: deque[str | None] = deque()  # lanes whose head may run; None: stop
        self._idle: deque[asyncio.Future[None]] = deque()  # parked workers
        self._waking = False  # a parked worker was woken and has not run yet
        self._held = 0
        self._wake = asyncio.Event()
        self._full = False
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._feeder: asyncio.Task[None] | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._writes: set[asyncio.Future[None]] = set()
        self._done: list[int] = []
        self._closed = False
        self._helpers: set[asyncio.Task[None]] = set()
        self._deadlines: dict[asyncio.Task[Any], float] = {}
        self._overdue: dict[asyncio.Task[Any], float] = {}  # task → when it was cancelled
        self._running: dict[asyncio.Task[Any], tuple[str, deque[_Item], _Item]] = {}
        self._abandoned: set[asyncio.Task[Any]] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self._fail_log = RateLimitedLog(log)

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Give back what a previous run left claimed, then start feeding and working."""
        recovered = await self.inbox.recover()
        if recovered:
            log.info("recovered %d event(s) left in progress by a previous run", recovered)
        self.inbox.attach(self._intake)
        self._feeder = self._spawn(self._feed(), "dispatch-feeder")
        self._watchdog = self._spawn(self._watch(), "dispatch-watchdog")
        self._tasks = [
            self._spawn(self._work(), f"dispatch-worker-{i}") for i in range(self.workers)
        ]

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=name)
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[None]) -> None:
        """A task of the dispatcher ended: fine while stopping, for a replaced worker or when
        cancelled (the loop is closing), else the dispatcher has stopped working."""
        if task in self._abandoned:
            self._abandoned.discard(task)
            return
        if task.cancelled():
            return
        error = task.exception()  # retrieved even while stopping, so asyncio does not log it
        if self._stopping or self.failure is not None:
            return
        if error is None:
            error = RuntimeError("it returned")
        self.failure = f"{task.get_name()} ended: {_error_text(error, self._secrets)}"
        if self._on_failure is not None:
            self._on_failure(error)
        else:
            log.critical("the dispatcher stopped: %s", self.failure, exc_info=error)

    def wake(self) -> None:
        """Tell the feeder that new events may be waiting."""
        self._wake.set()

    def _intake(self, events: Sequence[StoredEvent], pending: bool) -> None:
        for event in events:
            self._admit(event)
        if pending:
            self._wake.set()

    async def stop(self, timeout: float) -> None:  # noqa: ASYNC109 - a bound, not a cancel scope
        """Stop claiming, let running handlers finish for up to `timeout`, release the rest.

        Returns within `timeout` plus ABANDON_AFTER (plus a tenth of a second) whatever the
        inbox does (locked by another process, stopped): handlers cut off at `timeout` get
        ABANDON_AFTER to honour their cancellation, meanwhile the last state writes are
        recorded; what could not be recorded by then is handed out again at the next start.
        """
        deadline = time.monotonic() + timeout
        self._stopping = True
        for helper in (self._feeder, self._watchdog):
            if helper is not None:
                helper.cancel()
                await asyncio.wait([helper])  # unlike `await helper`, raises nothing
        try:  # what it already handed over is in the lanes once this returns
            await asyncio.wait_for(self.inbox.detach(), max(0.1, deadline - time.monotonic()))
        except (StorageError, TimeoutError) as exc:
            log.error("could not detach from the inbox: %s", exc or "timed out")
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._ready.extend(None for _ in self._tasks)
        while self._idle:
            self._wake_one()
        late: set[asyncio.Task[None]] = set()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=max(0.0, deadline - time.monotonic()))
            for task in late:
                task.cancel()
            if late:
                log.warning("%d handler(s) still running after %.1fs; cut off", len(late), timeout)
        grace_end = time.monotonic() + ABANDON_AFTER
        if late:
            _, stuck = await asyncio.wait(late, timeout=ABANDON_AFTER)
            if stuck:  # a handler that ignores cancellation must not hold the stop
                log.error("%d handler(s) ignored cancellation; abandoned", len(stuck))
        self._flush_done()
        while self._writes and time.monotonic() < grace_end:
            await asyncio.wait(self._writes, timeout=max(0.0, grace_end - time.monotonic()))
        if self._writes:
            log.error(
                "%d state write(s) still failing at stop; those events run again", len(self._writes)
            )
        self._closed = True  # no more state writes (or retries of them) after this point
        leftover = [item.event.id for lane in self._lanes.values() for item in lane]
        self._lanes.clear()
        if leftover:
            wait = max(0.1, grace_end - time.monotonic())
            try:
                await asyncio.wait_for(self.inbox.release(leftover), wait)
            except (StorageError, TimeoutError) as exc:
                log.error("could not release %d event(s): %s", len(leftover), exc or "timed out")
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
            room = self.capacity - self._held
            if room <= 0:
                self._full = True  # _advance wakes the feeder when there is room again
                return
            want = min(500, room)
            if await self.inbox.pull(want, room) < want:  # the events came through _intake
                return

    async def _watch(self) -> None:
        interval = min(1.0, max(0.01, self.handler_timeout / 20))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for task, deadline in list(self._deadlines.items()):
                if deadline > now:
                    continue
                cancelled_at = self._overdue.get(task)
                if cancelled_at is None:
                    self._overdue[task] = now
                    task.cancel()
                elif now - cancelled_at >= ABANDON_AFTER:
                    self._abandon(task)

    def _abandon(self, task: asyncio.Task[Any]) -> None:
        """Give up on a handler that ignores cancellation: fail its event, replace its worker."""
        self._deadlines.pop(task, None)
        self._overdue.pop(task, None)
        running = self._running.pop(task, None)
        self._abandoned.add(task)
        worker = self._spawn(self._work(), "dispatch-worker-replacement")
        self._tasks.append(worker)
        if running is None:
            return
        key, lane, item = running
        event = item.event
        log.error("the handler of event %d ignored cancellation; abandoned it", event.id)
        handler = self.handlers.get(event.source, self.default)
        error = TimeoutError(f"handler timed out after {self.handler_timeout:g}s")
        failing = asyncio.create_task(self._failed(key, lane, item, handler, event, error))
        self._helpers.add(failing)
        failing.add_done_callback(self._helpers.discard)

    def _admit(self, event: StoredEvent) -> None:
        key = event.order_key or f"#{event.id}"
        item = _Item(event, event.attempts, event.next_attempt_at)
        self._held += 1
        lane = self._lanes.get(key)
        if lane is None:
            self._lanes[key] = deque([item])
            self._put(key)
        else:
            lane.append(item)

    # -- working ----------------------------------------------------------------------

    def _put(self, key: str) -> None:
        self._ready.append(key)
        if not self._waking:
            self._wake_one()

    def _wake_one(self) -> None:
        # One parked worker at a time: a worker whose handler returns without waiting goes
        # on to the next ready lane itself, so a burst of events costs one wake-up, not one
        # per event; a worker that takes a lane while more are ready wakes the next one, so
        # handlers that wait still run `workers` at a time.
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._waking = True
                return

    async def _next_key(self) -> str | None:
        while not self._ready:
            waiter = asyncio.get_running_loop().create_future()
            self._idle.append(waiter)
            try:
                await waiter
            finally:
                self._waking = False
        key = self._ready.popleft()
        if self._ready and not self._waking:
            self._wake_one()
        return key

    async def _work(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        while True:
            key = await self._next_key()
            if key is None or self._stopping:
                return
            lane = self._lanes[key]
            item = lane[0]
            delay = item.not_before - time.time()
            if delay > 0:
                self._later(delay, key)
                continue
            await self._attempt(task, key, lane, item)
            if task in self._abandoned:  # replaced while stuck in a handler: bow out
                return

    async def _attempt(
        self, task: asyncio.Task[Any], key: str, lane: deque[_Item], item: _Item
    ) -> None:
        event = item.event
        if event.attempts != item.attempts:
            event = item.event = dataclasses.replace(event, attempts=item.attempts)
        handler = self.handlers.get(event.source, self.default)
        # A deadline the watchdog enforces: far cheaper than a timeout context per event.
        self._deadlines[task] = time.monotonic() + self.handler_timeout
        self._running[task] = (key, lane, item)
        try:
            await handler.handle(event)
        except BaseException as exc:
            if task in self._abandoned:
                return
            error: BaseException = exc
            if task in self._overdue:  # the watchdog's cancellation (or what it caused)
                self._overdue.pop(task)
                task.uncancel()
                if isinstance(exc, asyncio.CancelledError):
                    error = TimeoutError(f"handler timed out after {self.handler_timeout:g}s")
            elif _passes_through(exc):
                raise
            await self._failed(key, lane, item, handler, event, error)
            return
        finally:
            self._deadlines.pop(task, None)
            self._running.pop(task, None)
            if task in self._overdue:  # the handler swallowed the cancellation
                self._overdue.pop(task)
                task.uncancel()
        if task in self._abandoned:
            return  # its event was already failed and its lane moved on
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
        error: BaseException,
    ) -> None:
        item.attempts += 1
        self.stats.failed_attempts += 1
        text = _error_text(error, self._secrets)
        final = isinstance(error, DecodeError) or item.attempts >= self.max_attempts
        if final:
            lane.popleft()
            self._held -= 1
            self.stats.dead += 1
            attempts = item.attempts
            self._track(lambda: self.inbox.bury(event.id, attempts, text))
            self._fail_log.warning(
                "event %d (%s) is a dead letter after %d attempt(s): %s",
                event.id, event.event_type, item.attempts, text,
            )  # fmt: skip
        else:
            delay = backoff_delay(item.attempts, self.backoff_base, self.backoff_max, self._rng)
            item.not_before = time.time() + delay
            attempts, due = item.attempts, item.not_before
            self._track(lambda: self.inbox.retry_later(event.id, attempts, due, text))
            self._fail_log.warning(
                "event %d (%s) attempt %d failed, retrying in %.1fs: %s",
                event.id, event.event_type, item.attempts, delay, text,
            )  # fmt: skip
        try:
            await handler.failed(event, error, final=final)
        except BaseException as exc:
            if _passes_through(exc):
                raise
            log.exception("the handler's failure hook raised for event %d", event.id)
        if final:
            self._advance(key, lane)
        else:
            self._later(item.not_before - time.time(), key)

    def _flush_done(self) -> None:
        done, self._done = self._done, []
        if done:
            self._track(lambda: self.inbox.complete(done))

    def _advance(self, key: str, lane: deque[_Item]) -> None:
        if lane:
            self._put(key)
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
                self._put(key)

        timer = loop.call_later(max(0.0, delay), ready)
        self._timers.add(timer)

    def _track(self, write: Callable[[], asyncio.Future[None]], attempt: int = 1) -> None:
        """Start a state write and keep retrying it (with backoff) until it is recorded.

        A lost write would leave a handled event `in_progress`, to be handled again after
        the next restart; a storage fault must only delay it.
        """
        if self._closed:
            return
        try:
            future = write()
        except StorageError as exc:
            log.error("could not record an event's state: %s", exc)
            return
        self._writes.add(future)

        def written(done: asyncio.Future[None]) -> None:
            self._writes.discard(done)
            if done.cancelled() or done.exception() is None:
                return
            if self.inbox.failure is not None:  # it will never store anything again
                return
            delay = min(5.0, 0.1 * 2 ** (attempt - 1))
            self._fail_log.warning(
                "could not record an event's state (%s); retrying in %.1fs", done.exception(), delay
            )
            loop = asyncio.get_running_loop()
            pending: asyncio.Future[None] = loop.create_future()
            self._writes.add(pending)  # stop() waits for the retry as well

            def again() -> None:
                self._writes.discard(pending)
                pending.set_result(None)
                self._track(write, attempt + 1)

            loop.call_later(delay, again)

        future.add_done_callback(written)

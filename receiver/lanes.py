"""One subscriber's dispatch: its lanes, workers, room, retries and dead letters.

Deliveries whose events share an order key (`CallId`, else `EntityId`, and the other
providers' keys) form a lane and are handled one at a time in arrival order; different lanes
run in parallel on the subscriber's `workers` tasks. A failed attempt is retried with
exponential backoff and jitter (at least a `RetryLater`'s `retry_after`, up to the longest
backoff) while its lane waits, so order holds; after `max_attempts`, or at once for a
`PermanentError`, the delivery becomes a dead letter and the lane moves on. Every failed
attempt is recorded with its time, duration and error (with its traceback for an error raised
by integrator code); a successful one with its time and duration.

Whatever a handler raises (any exception, an exception that cannot even be printed, a
cancellation of its own) is a failed attempt; the error text that is logged and stored has the
configured secrets masked. Should a task end all the same before the stop, the `Dispatcher`
that owns the subscriber is told (`on_ended`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from receiver.exceptions import PermanentError, ReceiverError, RetryLater, StorageError
from receiver.handling import EventHandler
from receiver.inbox.base import WorkQueue
from receiver.inbox.models import Attempt, Completion, StoredEvent
from receiver.logs import RateLimitedLog

__all__ = [
    "ABANDONED",
    "AttemptObserver",
    "DispatchPolicy",
    "DispatchStats",
    "SubscriberDispatch",
    "Subscription",
    "backoff_delay",
    "error_text",
]

log = logging.getLogger("receiver.dispatcher")
attempt_log = logging.getLogger("receiver.deliveries")
"""One line per successful delivery attempt (failed ones are warnings of the dispatcher)."""

LEASE_WAIT = 0.2  # seconds an attempt waits for a lease that is being renewed
ABANDON_AFTER = 1.0  # seconds a timed-out handler gets to honour its cancellation
ABANDONED: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
"""Handlers' tasks given up at a stop: `receiver.server.run_loop` does not wait for them again."""
ERROR_TEXT_LIMIT = 2000  # characters of a failure's first line kept with its delivery
TRACEBACK_LIMIT = 8000  # characters of its traceback kept besides

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


def error_text(error: BaseException, secrets: Sequence[str] = ()) -> str:
    """`Type: message` of `error`, fit to store and log: each of `secrets` masked, cut to
    ERROR_TEXT_LIMIT characters, characters that are not text (lone surrogates) escaped."""
    try:
        text = f"{type(error).__name__}: {error}"
    except Exception:  # an exception whose message cannot be made
        text = f"{type(error).__name__}: (its message could not be printed)"
    for secret in secrets:
        text = text.replace(secret, "[secret]")
    return text[:ERROR_TEXT_LIMIT].encode("utf-8", "backslashreplace").decode("utf-8")


def _error_record(error: BaseException, first_line: str, secrets: Sequence[str]) -> str:
    """What is stored for a failed attempt: `first_line`, then (for an error raised by
    integrator code, not the receiver's own `RetryLater`/`PermanentError` verdicts) the
    traceback, with `secrets` masked, cut to TRACEBACK_LIMIT characters."""
    if isinstance(error, ReceiverError) or error.__traceback__ is None:
        return first_line
    try:
        lines = traceback.format_exception(error)
    except Exception:  # an exception that cannot be formatted: its first line will do
        return first_line
    text = "".join(lines).rstrip()
    for secret in secrets:
        text = text.replace(secret, "[secret]")
    text = text[-TRACEBACK_LIMIT:].encode("utf-8", "backslashreplace").decode("utf-8")
    return f"{first_line}\n{text}"


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Delay before retry number `attempt` (1-based): exponential, capped, half jittered."""
    ceiling = min(cap, base * (2.0 ** (attempt - 1)))
    jitter: float = rng.random()
    return ceiling / 2 + jitter * ceiling / 2


class AttemptObserver(Protocol):
    """Told of every delivery attempt as it ends (metrics, alerts); must not raise or block."""

    def __call__(
        self, subscriber: str, event: StoredEvent, outcome: str, duration: float, error: str | None
    ) -> None:
        """`outcome`: done, retry or dead; `error`: the failure's first line, secrets masked."""


def _attempt_fields(
    subscriber: str, event: StoredEvent, outcome: str, attempt: int, duration: float
) -> dict[str, Any]:
    """The fields of an attempt's log line."""
    return {
        "subscriber": subscriber,
        "event_id": event.id,
        "dedup_key": event.dedup_key,
        "event_type": event.event_type,
        "call_id": event.order_key,
        "outcome": outcome,
        "attempt": attempt,
        "duration_ms": round(duration * 1000, 3),
    }


@dataclass(slots=True)
class _Item:
    event: StoredEvent
    attempts: int
    not_before: float
    dropped: bool = False
    """Another process took it over: passed over, never attempted or written."""


@dataclass(slots=True)
class DispatchStats:
    """Counts since start, for the shutdown summary and tests."""

    handled: int = 0
    failed_attempts: int = 0
    dead: int = 0
    released: int = 0

    def add(self, other: DispatchStats) -> None:
        """Add `other`'s counts to these."""
        self.handled += other.handled
        self.failed_attempts += other.failed_attempts
        self.dead += other.dead
        self.released += other.released


@dataclass(frozen=True, slots=True)
class DispatchPolicy:
    """How every subscriber retries: the dispatch settings, declared once (`Settings`)."""

    max_attempts: int = 8
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    handler_timeout: float = 30.0
    workers: int = 16
    """Concurrent handler tasks per subscriber, unless the subscriber sets its own."""
    capacity: int = 2000
    """Deliveries held in memory per subscriber."""
    poll_interval: float = 1.0
    """Seconds between looks for deliveries stored by other processes."""
    lease: float = 15.0
    """Seconds this process's claims outlive its last heartbeat (renewed every third)."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """One subscriber as the dispatcher runs it: its handler for each source it takes."""

    name: str
    handlers: Mapping[str, EventHandler] = field(default_factory=dict)
    """By source (endpoint name)."""
    default: EventHandler | None = None
    """For a source with no handler of its own (None: such a delivery is a dead letter)."""
    workers: int | None = None
    """Concurrent handler tasks (None: the policy's)."""
    timeout: float | None = None
    """Seconds a handler may take (None: the policy's)."""

    def handler_for(self, source: str) -> EventHandler | None:
        """The handler of deliveries from `source`."""
        return self.handlers.get(source, self.default)


class SubscriberDispatch:
    """One subscriber's lanes, workers, feeder and watchdog."""

    def __init__(
        self,
        inbox: WorkQueue,
        subscription: Subscription,
        policy: DispatchPolicy,
        rng: random.Random,
        secrets: Sequence[str],
        on_ended: Callable[[asyncio.Task[None]], None],
        leased: Callable[[], bool] = lambda: True,
        claiming: asyncio.Lock | None = None,
        unreachable: Callable[[], None] = lambda: None,
        observer: AttemptObserver | None = None,
    ) -> None:
        """`leased` says whether an attempt may start (the process's lease is alive);
        `observer` is told of each attempt's end."""
        self.inbox = inbox
        self.subscription = subscription
        self.name = subscription.name
        self._handlers = dict(subscription.handlers)
        self._default = subscription.default
        self.workers = subscription.workers or policy.workers
        if self.workers < 1:
            raise ValueError(f"subscriber {self.name!r} needs at least one worker")
        self.max_attempts = policy.max_attempts
        self.backoff_base = policy.backoff_base
        self.backoff_max = policy.backoff_max
        self.handler_timeout = subscription.timeout or policy.handler_timeout
        self.capacity = policy.capacity
        self.poll_interval = policy.poll_interval
        self.stats = DispatchStats()
        self.stopping = False
        self._secrets = secrets
        self._on_ended = on_ended
        self._leased = leased
        self._claiming = claiming or asyncio.Lock()
        self._unreachable = unreachable
        self._observer = observer
        self._unwritten: set[tuple[int, str]] = set()
        """Deliveries handled (done or dead) whose new state is not recorded yet."""
        self._rng = rng
        self._lanes: dict[str, deque[_Item]] = {}
        self._ready: deque[str | None] = deque()  # lanes whose head may run; None: stop
        self._idle: deque[asyncio.Future[None]] = deque()  # parked workers
        self._waking = False  # a parked worker was woken and has not run yet
        self._held = 0
        self._wake = asyncio.Event()
        self._full = False
        self._tasks: list[asyncio.Task[None]] = []
        self._feeder: asyncio.Task[None] | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._writes: set[asyncio.Future[None]] = set()
        self._done: list[Completion] = []
        self._closed = False
        self._helpers: set[asyncio.Task[None]] = set()
        self._deadlines: dict[asyncio.Task[Any], float] = {}
        self._overdue: dict[asyncio.Task[Any], float] = {}  # task → when it was cancelled
        self._running: dict[asyncio.Task[Any], tuple[str, deque[_Item], _Item, float]] = {}
        self._abandoned: set[asyncio.Task[Any]] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self._fail_log = RateLimitedLog(log)
        """For failed writes, which repeat while the inbox is away (each attempt's own line
        is not limited: one line per attempt, as one per request)."""

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Start feeding and working."""
        self._feeder = self._spawn(self._feed(), f"dispatch-feeder ({self.name})")
        self._watchdog = self._spawn(self._watch(), f"dispatch-watchdog ({self.name})")
        self._tasks = [
            self._spawn(self._work(), f"dispatch-worker-{i} ({self.name})")
            for i in range(self.workers)
        ]

    def helpers(self) -> list[asyncio.Task[None]]:
        """The feeder and the watchdog, which stop first."""
        return [t for t in (self._feeder, self._watchdog) if t is not None]

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=name)
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task in self._abandoned:
            self._abandoned.discard(task)
            return
        self._on_ended(task)

    def wake(self) -> None:
        """Tell the feeder that new deliveries may be waiting."""
        self._wake.set()

    async def finish(self, deadline: float, allowed: float) -> None:
        """Let running handlers finish until `deadline`, then release what is left."""
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
                log.warning(
                    "%s: %d handler(s) still running after %.1fs; cut off",
                    self.name, len(late), allowed,
                )  # fmt: skip
        grace_end = time.monotonic() + ABANDON_AFTER
        if late:
            _, stuck = await asyncio.wait(late, timeout=ABANDON_AFTER)
            if stuck:  # a handler that ignores cancellation must not hold the stop
                ABANDONED.update(stuck)
                log.error(
                    "%s: %d handler(s) ignored cancellation; abandoned", self.name, len(stuck)
                )
        self._flush_done()
        while self._writes and time.monotonic() < grace_end:
            await asyncio.wait(self._writes, timeout=max(0.0, grace_end - time.monotonic()))
        if self._writes:
            log.error(
                "%s: %d state write(s) still failing at stop; those deliveries run again",
                self.name, len(self._writes),
            )  # fmt: skip
        self._closed = True  # no more state writes (or retries of them) after this point
        leftover = [i.event.key for lane in self._lanes.values() for i in lane if not i.dropped]
        self._lanes.clear()
        if leftover:
            wait = max(0.1, grace_end - time.monotonic())
            try:
                await asyncio.wait_for(self.inbox.release(leftover), wait)
            except (StorageError, TimeoutError) as exc:
                log.error(
                    "%s: could not release %d delivery(ies): %s",
                    self.name, len(leftover), exc or "timed out",
                )  # fmt: skip
            else:
                self.stats.released += len(leftover)
                log.info(
                    "%s: released %d unfinished delivery(ies) for the next start",
                    self.name, len(leftover),
                )  # fmt: skip

    # -- feeding ----------------------------------------------------------------------

    async def _feed(self) -> None:
        while not self.stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()
            try:
                await self._fill()
            except StorageError as exc:
                log.error("%s: could not claim deliveries: %s", self.name, exc)
                self._unreachable()  # a claim may have committed unanswered

    async def _fill(self) -> None:
        while not self.stopping:
            room = self.capacity - self._held
            if room <= 0:
                self._full = True  # _advance wakes the feeder when there is room again
                return
            want = min(500, room)
            # The deliveries come through `admit`; no look for orphans meanwhile.
            async with self._claiming:
                claimed = await self.inbox.pull(self.name, want, room)
            if claimed < want:
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
        """Give up on a handler that ignores cancellation: fail its delivery, replace its
        worker."""
        self._deadlines.pop(task, None)
        self._overdue.pop(task, None)
        running = self._running.pop(task, None)
        self._abandoned.add(task)
        worker = self._spawn(self._work(), f"dispatch-worker-replacement ({self.name})")
        self._tasks.append(worker)
        if running is None:
            return
        key, lane, item, started = running
        event = item.event
        log.error(
            "%s: the handler of event %d ignored cancellation; abandoned it", self.name, event.id
        )
        error = TimeoutError(f"handler timed out after {self.handler_timeout:g}s")
        failing = asyncio.create_task(self._failed(key, lane, item, event, error, started))
        self._helpers.add(failing)
        failing.add_done_callback(self._helpers.discard)

    def known(self) -> set[tuple[int, str]]:
        """Every delivery in the lanes, running or not (dropped ones excepted)."""
        lanes = {i.event.key for lane in self._lanes.values() for i in lane if not i.dropped}
        done = {(c.event_id, c.subscriber) for c in self._done}
        return lanes | done | self._unwritten

    def queued(self) -> list[tuple[int, str]]:
        """The deliveries in the lanes that are not running (each `(event id, subscriber)`)."""
        running = {id(item) for _, _, item, _ in self._running.values()}
        return [
            item.event.key
            for lane in self._lanes.values()
            for item in lane
            if id(item) not in running
        ]

    def forget(self, keys: set[tuple[int, str]]) -> None:
        """Drop the queued deliveries among `keys` (another process holds them now): each is
        passed over when it reaches the head of its lane."""
        if not keys:
            return
        running = {id(item) for _, _, item, _ in self._running.values()}
        for lane in self._lanes.values():
            for item in lane:
                if id(item) not in running and item.event.key in keys:
                    item.dropped = True

    def admit(self, event: StoredEvent) -> None:
        """Take a delivery into its lane."""
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
            if key is None or self.stopping:
                return
            lane = self._lanes[key]
            item = lane[0]
            if item.dropped:
                lane.popleft()
                self._held -= 1
                self._advance(key, lane)
                continue
            delay = item.not_before - time.time()
            if delay > 0:
                self._later(delay, key)
                continue
            if not self._leased():  # renewed in a moment, or lost: then the process stops
                self._later(LEASE_WAIT, key)
                continue
            if item.attempts and not await self._still_held(item):
                lane.popleft()
                self._held -= 1
                self._advance(key, lane)
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
        handler = self._handlers.get(event.source, self._default)
        started = time.time()
        if handler is None:
            error = PermanentError(
                f"subscriber {self.name!r} has no handler for events from {event.source!r}"
            )
            await self._failed(key, lane, item, event, error, started)
            return
        # A deadline the watchdog enforces: far cheaper than a timeout context per event.
        self._deadlines[task] = time.monotonic() + self.handler_timeout
        self._running[task] = (key, lane, item, started)
        try:
            await handler.handle(event)
        except BaseException as exc:
            if task in self._abandoned:
                return
            failure: BaseException = exc
            if task in self._overdue:  # the watchdog's cancellation (or what it caused)
                self._overdue.pop(task)
                task.uncancel()
                if isinstance(exc, asyncio.CancelledError):
                    failure = TimeoutError(f"handler timed out after {self.handler_timeout:g}s")
            elif _passes_through(exc):
                raise
            await self._failed(key, lane, item, event, failure, started)
            return
        finally:
            self._deadlines.pop(task, None)
            self._running.pop(task, None)
            if task in self._overdue:  # the handler swallowed the cancellation
                self._overdue.pop(task)
                task.uncancel()
        if task in self._abandoned:
            return  # its delivery was already failed and its lane moved on
        lane.popleft()
        self._held -= 1
        self.stats.handled += 1
        duration = time.time() - started
        self._done.append(Completion(event.id, self.name, started, duration))
        self._observe(event, "done", item.attempts + 1, duration, None)
        if len(self._done) == 1:
            # One write for everything completed in this turn of the event loop.
            asyncio.get_running_loop().call_soon(self._flush_done)
        self._advance(key, lane)

    async def _still_held(self, item: _Item) -> bool:
        """Whether this process still holds a delivery it is about to retry: an operator may
        have erased it meanwhile (`receiver inbox erase` discards it), or, on a shared inbox,
        another process taken it over. A query on the retry path only; True when the inbox
        cannot tell (the write of the outcome is guarded anyway)."""
        where = (item.event.id, self.name)
        try:
            held = where in await self.inbox.held([where])
        except StorageError:
            return True
        if not held:
            log.info(
                "%s: event %d is no longer held by this process (erased, discarded or taken "
                "over); not retried here", self.name, item.event.id,
            )  # fmt: skip
        return held

    async def _failed(
        self,
        key: str,
        lane: deque[_Item],
        item: _Item,
        event: StoredEvent,
        error: BaseException,
        started: float,
    ) -> None:
        item.attempts += 1
        self.stats.failed_attempts += 1
        text = error_text(error, self._secrets)
        record = _error_record(error, text, self._secrets)
        duration = max(0.0, time.time() - started)
        final = isinstance(error, PermanentError) or item.attempts >= self.max_attempts
        where = (event.id, self.name)
        if final:
            lane.popleft()
            self._held -= 1
            self.stats.dead += 1
            attempt = Attempt(item.attempts, started, duration, "dead", record, self.name)
            self._track(lambda: self.inbox.bury(where, attempt), (where,))
            log.warning(
                "%s: event %d (%s) is a dead letter after %d attempt(s): %s",
                self.name, event.id, event.event_type, item.attempts, text,
                extra=_attempt_fields(self.name, event, "dead", item.attempts, duration),
            )  # fmt: skip
            self._observe(event, "dead", item.attempts, duration, text)
        else:
            delay = backoff_delay(item.attempts, self.backoff_base, self.backoff_max, self._rng)
            if isinstance(error, RetryLater) and error.retry_after:
                delay = min(max(delay, error.retry_after), max(self.backoff_max, delay))
            item.not_before = time.time() + delay
            due = item.not_before
            attempt = Attempt(item.attempts, started, duration, "retry", record, self.name)
            self._track(lambda: self.inbox.retry_later(where, attempt, due))
            log.warning(
                "%s: event %d (%s) attempt %d failed, retrying in %.1fs: %s",
                self.name, event.id, event.event_type, item.attempts, delay, text,
                extra=_attempt_fields(self.name, event, "retry", item.attempts, duration),
            )  # fmt: skip
            self._observe(event, "retry", item.attempts, duration, text)
        handler = self.subscription.handler_for(event.source)
        if handler is not None:
            try:
                await handler.failed(event, error, final=final)
            except BaseException as exc:
                if _passes_through(exc):
                    raise
                log.exception(
                    "%s: the handler's failure hook raised for event %d", self.name, event.id
                )
        if final:
            self._advance(key, lane)
        else:
            self._later(item.not_before - time.time(), key)

    def _observe(
        self, event: StoredEvent, outcome: str, attempt: int, duration: float, error: str | None
    ) -> None:
        if outcome == "done" and attempt_log.isEnabledFor(logging.INFO):
            attempt_log.info(
                "%s: event %d (%s) delivered in %.1f ms (attempt %d)",
                self.name, event.id, event.event_type, duration * 1000, attempt,
                extra=_attempt_fields(self.name, event, outcome, attempt, duration),
            )  # fmt: skip
        if self._observer is not None:
            try:
                self._observer(self.name, event, outcome, duration, error)
            except Exception:
                log.exception("%s: observing an attempt failed", self.name)

    def _flush_done(self) -> None:
        done, self._done = self._done, []
        if done:
            self._track(
                lambda: self.inbox.complete(done), [(c.event_id, c.subscriber) for c in done]
            )

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
            if not self.stopping:
                self._put(key)

        timer = loop.call_later(max(0.0, delay), ready)
        self._timers.add(timer)

    def _track(
        self,
        write: Callable[[], asyncio.Future[None]],
        keys: Sequence[tuple[int, str]] = (),
        attempt: int = 1,
    ) -> None:
        """Start a state write and keep retrying it (with backoff) until it is recorded.

        A lost write would leave a handled delivery `in_progress`, to be handled again after
        the next restart; a storage fault must only delay it.
        """
        if self._closed:
            return
        self._unwritten.update(keys)
        try:
            future = write()
        except StorageError as exc:
            log.error("could not record a delivery's state: %s", exc)
            return
        self._writes.add(future)

        def written(done: asyncio.Future[None]) -> None:
            self._writes.discard(done)
            if done.cancelled() or done.exception() is None:
                self._unwritten.difference_update(keys)
                return
            self._unreachable()
            if getattr(self.inbox, "failure", None) is not None:  # it never stores again
                return
            delay = min(5.0, 0.1 * 2 ** (attempt - 1))
            self._fail_log.warning(
                "could not record a delivery's state (%s); retrying in %.1fs",
                done.exception(), delay,
            )  # fmt: skip
            loop = asyncio.get_running_loop()
            pending: asyncio.Future[None] = loop.create_future()
            self._writes.add(pending)  # stop() waits for the retry as well

            def again() -> None:
                self._writes.discard(pending)
                pending.set_result(None)
                self._track(write, keys, attempt + 1)

            loop.call_later(delay, again)

        future.add_done_callback(written)

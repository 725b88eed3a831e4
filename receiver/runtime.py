"""One process's inbox, subscribers, dispatcher and maintenance, wired in one place.

`receiver serve` runs a `Runtime` under its HTTP app, `receiver worker` runs one alone, and
the in-process test receiver runs one around the integrator's handler object: the same
start, takeover and stop everywhere.

Dispatching: when the inbox lets one process at a time dispatch (SQLite) and another holds
that right, this process waits and tries again every `TAKEOVER_INTERVAL`: when the holder
stops or dies, one of the others takes over within seconds and gives back what it left in
progress. Where any number may dispatch (leases), every dispatching process starts at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence

from receiver.alerts import build_alerts
from receiver.config import EndpointConfig, Settings, SubscriberConfig
from receiver.dispatcher import Dispatcher, DispatchPolicy, Subscription
from receiver.exceptions import ConfigError
from receiver.handling import EventHandler, LoggingHandler, check_handler
from receiver.inbox.base import Inbox, describe_inbox, open_admin, open_inbox
from receiver.inbox.models import Expired, StoredEvent
from receiver.metrics import DeliveryMetrics

__all__ = [
    "Routing",
    "Runtime",
    "dispatch_policy",
    "load_subscriptions",
    "secret_texts",
]

log = logging.getLogger("receiver.runtime")

PURGE_INTERVAL = 3600.0
"""Seconds between two purges of events past retention."""

TAKEOVER_INTERVAL = 1.0
"""Seconds between two tries of a waiting process to become the dispatcher."""

ROUTING_CACHE = 1024
"""Event types whose subscribers an endpoint remembers (event types come from requests)."""


def secret_texts(settings: Settings) -> list[str]:
    """Every configured secret in each form it could be written in: as configured, in base64
    (a Basic `Authorization` header) and URL-encoded; what logs and stored errors must mask.

    The endpoints' credentials, the forwarding subscribers' signing secrets, the admin
    listener's tokens and the inbox's encryption keys alike.
    """
    import base64
    from urllib.parse import quote, quote_plus

    forms: dict[str, None] = {}
    groups = [list(settings.admin_tokens)]
    if settings.inbox_keyring is not None:
        groups.append(list(settings.inbox_keyring.secrets))
    for endpoint in settings.endpoints:
        texts = [*endpoint.secret_texts]
        for subscriber in endpoint.subscribers:
            texts.extend(subscriber.secrets)
        groups.append(texts)
    for texts in groups:
        for text in texts:
            encoded = base64.b64encode(text.encode()).decode()
            forms.update(dict.fromkeys((text, encoded, quote(text, safe=""), quote_plus(text))))
    return list(forms)


def dispatch_policy(settings: Settings) -> DispatchPolicy:
    """The dispatch settings as the dispatcher takes them."""
    return DispatchPolicy(
        max_attempts=settings.max_attempts,
        backoff_base=settings.backoff_base,
        backoff_max=settings.backoff_max,
        handler_timeout=settings.handler_timeout,
        workers=max(1, settings.workers),
        lease=settings.lease,
    )


class Routing:
    """Which subscribers of one endpoint want an event type (its `events` filters)."""

    def __init__(self, subscribers: Sequence[SubscriberConfig]) -> None:
        self.subscribers = tuple(subscribers)
        self._everyone = tuple(s.name for s in subscribers)
        self._filtered = any(s.events for s in subscribers)
        self._cache: dict[str, tuple[str, ...]] = {}

    def __call__(self, event_type: str) -> tuple[str, ...]:
        """The names of the subscribers that get an event of `event_type`."""
        if not self._filtered:
            return self._everyone
        names = self._cache.get(event_type)
        if names is None:
            names = tuple(s.name for s in self.subscribers if s.wants(event_type))
            if len(self._cache) < ROUTING_CACHE:
                self._cache[event_type] = names
        return names


def _build_handler(
    endpoint: EndpointConfig,
    subscriber: SubscriberConfig,
    settings: Settings,
    default: Callable[[], EventHandler],
) -> EventHandler:
    from receiver.loading import load_handler

    if subscriber.forward is not None:
        from receiver.forward import ForwardHandler

        try:
            return ForwardHandler(
                subscriber.name,
                subscriber.forward,
                subscriber.secrets,
                ca_file=subscriber.ca_file,
                timeout=subscriber.timeout or settings.handler_timeout,
                concurrency=subscriber.concurrency or max(1, settings.workers),
            )
        except ConfigError as exc:
            raise ConfigError(f"endpoint {endpoint.name!r}: {exc}") from None
    handler = load_handler(subscriber.handler) if subscriber.handler else default()
    kind = getattr(handler, "source_kind", None)
    if kind and kind != endpoint.kind:
        raise ConfigError(
            f"endpoint {endpoint.name!r} receives {endpoint.kind} events but its subscriber "
            f"{subscriber.name!r} ({type(handler).__name__}) handles {kind} events"
        )
    return handler


def load_subscriptions(settings: Settings) -> list[Subscription]:
    """Every subscriber of every endpoint with its handlers loaded and checked.

    A subscriber name used on several endpoints is one subscriber (one set of workers) with
    a handler per endpoint. Without a handler of its own, a subscriber gets `--handler` (one
    instance for all), else a handler that logs each event.
    """
    from receiver.loading import load_handler

    shared: list[EventHandler] = []

    def default() -> EventHandler:
        if not shared:
            shared.append(load_handler(settings.handler) if settings.handler else LoggingHandler())
        return shared[0]

    handlers: dict[str, dict[str, EventHandler]] = {}
    options: dict[str, SubscriberConfig] = {}
    instances: dict[int, EventHandler] = {}
    # A method is of use when any endpoint served by its class configures its event type.
    event_types: dict[type, list[str]] = {}
    for endpoint in settings.endpoints:
        for subscriber in endpoint.subscriber_configs:
            handler = _build_handler(endpoint, subscriber, settings, default)
            handlers.setdefault(subscriber.name, {})[endpoint.name] = handler
            options.setdefault(subscriber.name, subscriber)
            instances[id(handler)] = handler
            event_types.setdefault(type(handler), []).extend(endpoint.event_types)
    warnings: dict[str, None] = {}
    for handler in instances.values():
        warnings.update(dict.fromkeys(check_handler(handler, event_types[type(handler)])))
    for warning in warnings:
        log.warning("%s", warning)
    return [
        Subscription(
            name,
            by_source,
            workers=options[name].concurrency,
            timeout=options[name].timeout,
        )
        for name, by_source in handlers.items()
    ]


def report_expired(expired: Expired, settings: Settings) -> None:
    """Log what `Inbox.expire` did: dead letters dropped (a warning naming them: each was an
    event nobody handled) and payloads removed."""
    if expired.dropped:
        shown = ", ".join(
            f"{event_id} ({subscriber})" for event_id, subscriber in expired.dropped[:20]
        )
        more = len(expired.dropped) - 20
        log.warning(
            "dropped %d dead letter(s) older than dead_retention_days (%g) without a replay: %s%s",
            len(expired.dropped), settings.dead_retention_days, shown,
            f" and {more} more" if more > 0 else "",
        )  # fmt: skip
    if expired.scrubbed:
        log.info(
            "removed the payload of %d finished event(s) past payload_retention_days (%g); "
            "their dedup keys stay until retention_days",
            expired.scrubbed, settings.payload_retention_days,
        )  # fmt: skip


class Runtime:
    """The inbox, and when this process dispatches, the dispatcher and its subscribers."""

    def __init__(
        self,
        settings: Settings,
        subscriptions: Sequence[Subscription] | None = None,
        *,
        inbox: Inbox | None = None,
    ) -> None:
        """`subscriptions` default to those of `settings`, their handlers imported now (none
        when `settings` say not to dispatch)."""
        self.settings = settings
        dispatching = settings.dispatch and settings.workers > 0
        if subscriptions is None:  # a process that never dispatches imports no handler
            subscriptions = load_subscriptions(settings) if dispatching else []
        self.subscriptions = list(subscriptions)
        alerts = build_alerts(settings) if dispatching else None  # callables imported now
        self.inbox: Inbox = inbox or open_inbox(settings.inbox, settings.inbox_options)
        self.routes = {e.name: Routing(e.subscriber_configs) for e in settings.endpoints}
        self.dispatcher: Dispatcher | None = None
        self.stopped: tuple[str, str] | None = None
        """The part that stopped (`inbox writer`, `dispatcher`) and why, once one has."""
        self.on_stopped: Callable[[str, str], None] | None = None
        """Called once with `stopped` when a part stops: the process cannot work on."""
        self._tasks: list[asyncio.Task[None]] = []
        self.delivery_metrics = {s.name: DeliveryMetrics() for s in self.subscriptions}
        """Each subscriber's attempts in this process, for `/metrics`."""
        self.attempt_hooks: list[Callable[[str, StoredEvent, str, float, str | None], None]] = []
        """Also told of every attempt's end (`receiver.lanes.AttemptObserver`)."""
        self.alerts = alerts
        """The subscribers' `on_dead` alerts, when any has one."""
        if alerts is not None:
            self.attempt_hooks.append(alerts)

    def _attempted(
        self, subscriber: str, event: StoredEvent, outcome: str, duration: float, error: str | None
    ) -> None:
        metrics = self.delivery_metrics.get(subscriber)
        if metrics is None:
            metrics = self.delivery_metrics[subscriber] = DeliveryMetrics()
        metrics.attempted(outcome, duration)
        for hook in self.attempt_hooks:
            hook(subscriber, event, outcome, duration, error)

    @property
    def wants_dispatch(self) -> bool:
        """Whether this process is configured to dispatch."""
        return self.settings.dispatch and self.settings.workers > 0 and bool(self.subscriptions)

    def _stop(self, part: str, reason: str, error: BaseException) -> None:
        if self.stopped is not None:
            return
        self.stopped = (part, reason)
        log.critical(
            "the %s stopped (%s); the receiver stops so that it can be restarted",
            part, reason, exc_info=error,
        )  # fmt: skip
        if self.on_stopped is not None:
            self.on_stopped(part, reason)

    def _inbox_failed(self, error: BaseException) -> None:
        self._stop("inbox writer", self.inbox.failure or repr(error), error)

    def _dispatcher_failed(self, error: BaseException) -> None:
        reason = self.dispatcher.failure if self.dispatcher is not None else None
        self._stop("dispatcher", reason or repr(error), error)

    async def start(self) -> None:
        """Open the inbox; dispatch now, or take over once the process dispatching stops."""
        await self.inbox.open(on_failure=self._inbox_failed)
        if self.wants_dispatch:
            if self.inbox.try_lock_dispatch():
                await self._dispatch()
            else:
                log.warning(
                    "another process dispatches from %s; this one takes over if it stops",
                    describe_inbox(self.settings.inbox),
                )
                self._spawn(self._wait_for_turn(), "dispatch-takeover")
        self._spawn(self._maintain(), "inbox-maintenance")

    def _spawn(self, work: object, name: str) -> None:
        self._tasks.append(asyncio.create_task(work, name=name))  # type: ignore[arg-type]

    async def _dispatch(self) -> None:
        self.dispatcher = Dispatcher(
            self.inbox,
            self.subscriptions,
            policy=dispatch_policy(self.settings),
            secrets=secret_texts(self.settings),
            on_failure=self._dispatcher_failed,
            observer=self._attempted,
        )
        await self.dispatcher.start()
        self._spawn(self._warn_of_strays(), "stray-deliveries")

    async def _warn_of_strays(self) -> None:
        """Warn of open deliveries to subscribers no longer configured: nobody handles them
        (an inbox upgraded from one state per event holds them for `default`)."""
        configured = {s.name for s in self.subscriptions}

        def counts() -> dict[str, dict[str, int]]:
            admin = open_admin(self.settings.inbox)
            try:
                return admin.stats().by_subscriber
            finally:
                admin.close()

        loop = asyncio.get_running_loop()
        answer: asyncio.Future[dict[str, dict[str, int]]] = loop.create_future()

        def look() -> None:
            result: dict[str, dict[str, int]] | None = None
            error: Exception | None = None
            try:
                result = counts()
            except Exception as exc:
                error = exc

            def settle() -> None:
                if answer.done():
                    return
                if error is not None:
                    answer.set_exception(error)
                else:
                    answer.set_result(result or {})

            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
                loop.call_soon_threadsafe(settle)

        # A thread of its own, not the loop's executor: a stop must not wait for a look
        # held up by a lock another process keeps on the inbox.
        threading.Thread(target=look, name="stray-deliveries", daemon=True).start()
        try:
            by_subscriber = await answer
        except Exception as exc:  # a look, not a duty: the dispatcher works without it
            log.debug("could not look for deliveries to unconfigured subscribers: %s", exc)
            return
        for name, states in sorted(by_subscriber.items()):
            waiting = {s: states.get(s, 0) for s in ("pending", "in_progress", "dead")}
            if name in configured or not any(waiting.values()):
                continue
            log.warning(
                "the inbox holds %d pending and %d dead delivery(ies) for subscriber %r, which is "
                "not configured: they wait until it is (dead letters can be discarded with "
                "`receiver inbox discard --subscriber %s`)",
                waiting["pending"] + waiting["in_progress"], waiting["dead"], name, name,
            )  # fmt: skip

    async def _wait_for_turn(self) -> None:
        while not self.inbox.try_lock_dispatch():  # noqa: ASYNC110 - a kernel lock, no event to wait on
            await asyncio.sleep(TAKEOVER_INTERVAL)
        log.warning("the process that dispatched has stopped; this one dispatches now")
        await self._dispatch()

    async def _maintain(self) -> None:
        while True:
            try:
                expired = await self.inbox.expire()
                removed = await self.inbox.purge()
            except Exception:
                log.exception("purging old events failed")
            else:
                report_expired(expired, self.settings)
                if removed:
                    log.info("purged %d finished event(s) past retention_days", removed)
            await asyncio.sleep(PURGE_INTERVAL)

    async def stop(self) -> None:
        """Stop dispatching (handlers get `shutdown_timeout`), then close the inbox."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.dispatcher is not None:
            await self.dispatcher.stop(self.settings.shutdown_timeout)
        for subscription in self.subscriptions:
            for handler in {id(h): h for h in subscription.handlers.values()}.values():
                close = getattr(handler, "aclose", None)
                if close is not None:
                    try:
                        await close()
                    except Exception:
                        log.exception("closing subscriber %s failed", subscription.name)
        if self.alerts is not None:  # after the dispatcher: its last dead letters are alerted
            await self.alerts.aclose()
        await self.inbox.close()
        if self.dispatcher is not None:
            for name, subscriber in self.dispatcher.subscribers.items():
                stats = subscriber.stats
                log.info(
                    "subscriber %s: handled %d, failed attempts %d, dead %d, released %d",
                    name, stats.handled, stats.failed_attempts, stats.dead, stats.released,
                )  # fmt: skip

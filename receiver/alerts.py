"""Dead-letter alerts: a subscriber's `on_dead` hears of each delivery that became a dead letter.

`on_dead` is a URL that gets a JSON POST (`receiver.alert_senders.WebhookAlert`) or a Python
callable (`module:function`, sync or async) that gets a `DeadLetter`. A flood of dead letters
must not flood the ops channel: each subscriber's alerts pass at most `limit` per `window`
seconds, then one `DeadLettersSuppressed` says how many more there were in that window.

What an alert carries is what an operator needs to find the event in the inbox (ids, types,
times, the error's first line), never the payload: callers' data stays in the inbox, and phone
numbers in the call id or error are masked. Alerts run in background tasks: they never block
or fail the dispatcher, and their failures are logged, rate-limited.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from receiver.exceptions import ConfigError
from receiver.logs import RateLimitedLog, printable
from receiver.redaction import mask_personal

if TYPE_CHECKING:
    from receiver.config import Settings
    from receiver.inbox.models import StoredEvent

__all__ = [
    "CONSOLE_EVENT_PATH",
    "Alert",
    "DeadLetter",
    "DeadLetterAlerts",
    "DeadLettersSuppressed",
    "Notifier",
    "OnDead",
    "build_alerts",
    "parse_on_dead",
]

log = logging.getLogger("receiver.alerts")

CONSOLE_EVENT_PATH = "/events/{id}"
"""Where the admin console shows one event (joined to the admin listener's address)."""
DEFAULT_LIMIT = 10
DEFAULT_WINDOW = 60.0
CLOSE_TIMEOUT = 5.0
"""Seconds a stopping process gives alerts still in flight (and the last summaries)."""
ON_DEAD_KEYS = ("on_dead", "on_dead_ca_file", "on_dead_limit", "on_dead_window")
"""The subscriber table's keys read here."""


def _utc(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One delivery that became a dead letter, as an `on_dead` hook gets it."""

    subscriber: str
    event_id: str
    """The inbox's id of the event (`receiver inbox show ID`)."""
    source: str
    """The endpoint that received it."""
    event_type: str
    call_id: str | None
    """The event's order key (Enreach's CallId), phone numbers masked."""
    attempts: int
    """Attempts made, the last one included."""
    error: str
    """The last attempt's error, first line only, secrets and phone numbers masked."""
    received_at: float
    """Unix time the receiver stored the event."""
    died_at: float
    """Unix time its last attempt ended."""
    console_url: str | None = None
    """The event's page in the admin console, when the listener's address is known."""

    def as_json(self) -> dict[str, Any]:
        """The JSON body POSTed to an `on_dead` URL (times in ISO 8601, UTC)."""
        body: dict[str, Any] = {"kind": "dead_letter", **asdict(self)}
        body["received_at"], body["died_at"] = _utc(self.received_at), _utc(self.died_at)
        if self.console_url is None:
            del body["console_url"]
        return body


@dataclass(frozen=True, slots=True)
class DeadLettersSuppressed:
    """How many more dead letters a subscriber had in a window than its alerts let through."""

    subscriber: str
    suppressed: int
    """Dead letters in the window that were not alerted one by one."""
    window_start: float
    """Unix time of the window's first dead letter."""
    window_end: float
    limit: int
    """Alerts that pass per window."""

    def as_json(self) -> dict[str, Any]:
        """The JSON body POSTed to an `on_dead` URL (times in ISO 8601, UTC)."""
        body: dict[str, Any] = {"kind": "dead_letters_suppressed", **asdict(self)}
        body["window_start"], body["window_end"] = _utc(self.window_start), _utc(self.window_end)
        return body


Alert = DeadLetter | DeadLettersSuppressed
"""What an `on_dead` hook gets: one dead letter, or how many more a window had."""


class Notifier(Protocol):
    """Where one subscriber's alerts go."""

    shown: str
    """What messages call it (a URL without its path, or the callable's name)."""

    async def notify(self, alert: Alert) -> None:
        """Send `alert`; raise (any exception, logged) when it could not be sent."""

    async def aclose(self) -> None:
        """Release connections."""


@dataclass(frozen=True, slots=True)
class OnDead:
    """A subscriber's `on_dead` settings, checked as the config is read."""

    target: str
    """An `https://` URL (`http://` to a loopback host only), or `module:function`."""
    ca_file: Path | None = None
    """The CAs the URL's certificate is verified with, instead of the system's."""
    limit: int = DEFAULT_LIMIT
    window: float = DEFAULT_WINDOW

    @property
    def is_url(self) -> bool:
        """Whether `target` is a URL (else a callable)."""
        return "://" in self.target


def parse_on_dead(table: Mapping[str, Any], where: str) -> OnDead | None:
    """The `on_dead*` keys of a subscriber table, or None without `on_dead`; ConfigError (one
    line) for a URL that is not allowed or a value of the wrong kind."""
    target = table.get("on_dead")
    if target is None:
        extra = [k for k in ON_DEAD_KEYS[1:] if k in table]
        if extra:
            raise ConfigError(f"{where}: {extra[0]} needs on_dead")
        return None
    if not isinstance(target, str) or not target.strip():
        raise ConfigError(f"{where}: on_dead must be an https:// URL or module:function")
    target = target.strip()
    if "://" in target:
        check_url(target, where)
    else:
        module, sep, name = target.rpartition(":")
        if not sep or not module or not name:
            raise ConfigError(
                f"{where}: on_dead {printable(target, 80)!r} is neither an https:// URL nor "
                "module:function"
            )
    ca_file = None
    if "on_dead_ca_file" in table:
        value = table["on_dead_ca_file"]
        if "://" not in target:
            raise ConfigError(f"{where}: on_dead_ca_file is for an on_dead URL")
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: on_dead_ca_file must be the path of a PEM file")
        ca_file = Path(value).expanduser()
    limit = table.get("on_dead_limit", DEFAULT_LIMIT)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ConfigError(f"{where}: on_dead_limit must be a positive integer (alerts per window)")
    window = table.get("on_dead_window", DEFAULT_WINDOW)
    if not isinstance(window, int | float) or isinstance(window, bool) or not 0 < window < math.inf:
        raise ConfigError(f"{where}: on_dead_window must be a positive number of seconds")
    return OnDead(target, ca_file, limit, float(window))


def check_url(url: str, where: str) -> str:
    """`url` without its path and query, for messages (an ops hook's path often holds its
    token); ConfigError unless the receiver may send to it, as to a forwarding subscriber
    (`receiver.access.outbound_url`)."""
    from receiver.access import outbound_url

    parts = outbound_url(url, where, "the on_dead URL")
    return f"{parts.scheme.lower()}://{parts.netloc}/"


@dataclass(slots=True)
class _Window:
    """One subscriber's current rate-limit window."""

    start: float
    sent: int = 0
    suppressed: int = 0
    timer: asyncio.TimerHandle | None = None


class DeadLetterAlerts:
    """An attempt hook (`Runtime.attempt_hooks`) that alerts each subscriber's notifier of
    its dead letters, rate-limited, in background tasks."""

    def __init__(
        self,
        notifiers: Mapping[str, Notifier],
        limits: Mapping[str, tuple[int, float]],
        *,
        console: str | None = None,
    ) -> None:
        """`limits`: each subscriber's (alerts per window, window seconds); `console`: the
        admin listener's `https://host:port`, for `DeadLetter.console_url`."""
        self.notifiers = dict(notifiers)
        self.limits = dict(limits)
        self.console = console
        self._windows: dict[str, _Window] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._failures = {name: RateLimitedLog(log, burst=5, interval=60.0) for name in notifiers}
        self._closed = False

    def __call__(
        self, subscriber: str, event: StoredEvent, outcome: str, duration: float, error: str | None
    ) -> None:
        """After each attempt: a dead one is alerted, or counted when over the limit."""
        if outcome != "dead" or self._closed or subscriber not in self.notifiers:
            return
        try:
            self._dead(subscriber, event, error)
        except Exception:  # an alert must never fail the dispatcher
            log.exception("%s: could not alert of a dead letter", subscriber)

    def _dead(self, subscriber: str, event: StoredEvent, error: str | None) -> None:
        now = time.time()
        limit, seconds = self.limits.get(subscriber, (DEFAULT_LIMIT, DEFAULT_WINDOW))
        window = self._windows.get(subscriber)
        if window is None:
            window = self._windows[subscriber] = _Window(now)
            window.timer = asyncio.get_running_loop().call_later(
                seconds, self._window_ended, subscriber
            )
        if window.sent >= limit:
            window.suppressed += 1
            return
        window.sent += 1
        first = (error or "").split("\n", 1)[0].strip()
        letter = DeadLetter(
            subscriber=subscriber,
            event_id=str(event.id),
            source=event.source,
            event_type=event.event_type,
            call_id=mask_personal(event.order_key) if event.order_key else None,
            # The running attempt is number attempts + 1 (StoredEvent.attempts).
            attempts=event.attempts + 1,
            error=mask_personal(first),
            received_at=event.received_at,
            died_at=now,
            console_url=(
                self.console.rstrip("/") + CONSOLE_EVENT_PATH.format(id=event.id)
                if self.console
                else None
            ),
        )
        self._send(subscriber, letter)

    def _window_ended(self, subscriber: str) -> None:
        window = self._windows.pop(subscriber, None)
        if window is not None and window.suppressed:
            self._send(subscriber, self._summary(subscriber, window))

    def _summary(self, subscriber: str, window: _Window) -> DeadLettersSuppressed:
        limit, seconds = self.limits.get(subscriber, (DEFAULT_LIMIT, DEFAULT_WINDOW))
        end = min(time.time(), window.start + seconds)
        return DeadLettersSuppressed(subscriber, window.suppressed, window.start, end, limit)

    def _send(self, subscriber: str, alert: Alert) -> None:
        task = asyncio.get_running_loop().create_task(
            self._deliver(subscriber, alert), name=f"on-dead-{subscriber}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, subscriber: str, alert: Alert) -> None:
        notifier = self.notifiers[subscriber]
        try:
            await notifier.notify(alert)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            what = (
                f"dead letter {alert.event_id}"
                if isinstance(alert, DeadLetter)
                else f"{alert.suppressed} suppressed dead letter(s)"
            )
            self._failures[subscriber].warning(
                "%s: on_dead %s failed for %s: %s",
                subscriber, notifier.shown, what,
                printable(f"{type(exc).__name__}: {exc}".split("\n", 1)[0], 300),
                extra={"subscriber": subscriber},
            )  # fmt: skip

    async def aclose(self, timeout: float = CLOSE_TIMEOUT) -> None:  # noqa: ASYNC109 - a bound, not a cancel scope
        """Send each open window's summary, give alerts in flight `timeout` seconds, then
        cancel what is left and close the notifiers."""
        self._closed = True
        for subscriber, window in list(self._windows.items()):
            if window.timer is not None:
                window.timer.cancel()
            self._window_ended(subscriber)
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
                log.warning("%d on_dead alert(s) still in flight were cancelled", len(late))
        for name, notifier in self.notifiers.items():
            try:
                await notifier.aclose()
            except Exception:
                log.exception("%s: closing on_dead %s failed", name, notifier.shown)


def build_alerts(settings: Settings) -> DeadLetterAlerts | None:
    """The alert hook of every subscriber with `on_dead`, callables imported now (ConfigError,
    one line, for one that cannot be); None when no subscriber has one.

    A subscriber under several endpoints is one subscriber: its tables may give `on_dead`
    once, or the same one each time.
    """
    from receiver.alert_senders import CallableAlert, WebhookAlert

    chosen: dict[str, OnDead] = {}
    for endpoint in settings.endpoints:
        for subscriber in endpoint.subscribers:
            on_dead = subscriber.on_dead
            if on_dead is None:
                continue
            known = chosen.setdefault(subscriber.name, on_dead)
            if known != on_dead:
                raise ConfigError(
                    f"subscriber {subscriber.name!r}: two endpoints give it different on_dead "
                    "settings; give them once, or the same in each"
                )
    if not chosen:
        return None
    notifiers: dict[str, Notifier] = {}
    for name, on_dead in chosen.items():
        where = f"subscriber {name!r}"
        if on_dead.is_url:
            notifiers[name] = WebhookAlert(on_dead.target, where, ca_file=on_dead.ca_file)
        else:
            notifiers[name] = CallableAlert(on_dead.target, where)
    limits = {name: (o.limit, o.window) for name, o in chosen.items()}
    return DeadLetterAlerts(notifiers, limits, console=_console(settings))


def _console(settings: Settings) -> str | None:
    """The admin listener's address when the settings alone tell it (a fixed port on a
    named host); else None (`DeadLetterAlerts.console` may be set once it is bound)."""
    host, port = settings.admin_host, settings.admin_port
    if not settings.admin or not port or host in ("", "0.0.0.0", "::"):  # noqa: S104
        return None
    shown = f"[{host}]" if ":" in host else host
    return f"https://{shown}:{port}"

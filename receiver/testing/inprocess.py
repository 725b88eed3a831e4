"""The receiver on uvicorn in a thread of the test process, around a handler object."""

from __future__ import annotations

import difflib
import shutil
import socket
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from receiver.app import ReceiverApp
from receiver.auth import SecretSet
from receiver.catalogs.samples import ENREACH_EVENT_TYPES, enreach_sample
from receiver.certs import DevCertificates
from receiver.config import EndpointConfig, Settings
from receiver.dispatcher import Subscription
from receiver.engines.uvicorn_engine import uvicorn_server
from receiver.exceptions import ConfigError
from receiver.handling import EventHandler, check_handler
from receiver.inbox.models import StoredEvent
from receiver.runtime import Runtime
from receiver.sender import Delivery, EnreachWire, Sender, SyncSender, WireFormat
from receiver.server import run_loop
from receiver.testing.process import throwaway_certificates
from receiver.tls import ServerTLS

__all__ = ["HandlerFailure", "InProcessReceiver"]


@dataclass(frozen=True, slots=True)
class HandlerFailure:
    """One failed attempt to handle an event, as an `InProcessReceiver` saw it."""

    event: StoredEvent
    error: BaseException
    final: bool
    """True when the event became a dead letter: no attempt follows."""

    def __str__(self) -> str:
        what = "dead letter" if self.final else "failed attempt"
        return (
            f"{what}: {self.event.event_type or 'event'} #{self.event.id} "
            f"(attempt {self.event.attempts + 1}): {type(self.error).__name__}: {self.error}"
        )


def _refuse_unknown_fields(event_type: str, fields: Mapping[str, Any]) -> None:
    """Raise ValueError naming each of `fields` that `event_type` does not have."""
    known = {name.lower(): name for name in enreach_sample(event_type, seed=0)}
    unknown = []
    for name in fields:
        if name.lower() not in known:
            close = difflib.get_close_matches(name.lower(), known, n=1)
            unknown.append(f"{name} (did you mean {known[close[0]]}?)" if close else name)
    if unknown:
        raise ValueError(
            f"not a field of {event_type}: {', '.join(unknown)}; "
            "pass allow_extra=True to send it anyway"
        )


class _Watched:
    """The integrator's handler, with every outcome counted for the test thread to read."""

    def __init__(self, inner: EventHandler) -> None:
        self.inner = inner
        self.handled = 0
        self.failures: list[HandlerFailure] = []

    async def handle(self, event: StoredEvent) -> None:
        await self.inner.handle(event)
        self.handled += 1

    async def failed(self, event: StoredEvent, error: BaseException, *, final: bool) -> None:
        self.failures.append(HandlerFailure(event, error, final))
        await self.inner.failed(event, error, final=final)


class InProcessReceiver:
    """The real receiver on uvicorn in a background thread, handing events to `handler`.

    The same application, TLS and SQLite inbox as `receiver serve`, with one endpoint on an
    ephemeral 127.0.0.1 port, a throwaway CA and retry delays of milliseconds, so a handler
    that keeps failing becomes a dead letter at once. The handler object runs on the
    receiver's own event loop; the test reads what it recorded after `wait_for_handled`.

    The endpoint is Enreach's with `secret` unless `endpoint` gives another (any kind, e.g. an
    `engage_wfm` endpoint for a `WfmHandler`); `sender(wire)` then needs that provider's wire.
    """

    def __init__(
        self,
        handler: EventHandler,
        *,
        workdir: Path | None = None,
        certs: DevCertificates | None = None,
        secret: str = "test-secret",  # noqa: S107 - a throwaway secret for a throwaway server
        path: str = "/enreach",
        workers: int = 4,
        max_attempts: int = 3,
        backoff_base: float = 0.01,
        backoff_max: float = 0.05,
        handler_timeout: float = 10.0,
        shutdown_timeout: float = 5.0,
        endpoint: EndpointConfig | None = None,
    ) -> None:
        if not isinstance(handler, EventHandler):
            raise TypeError(
                f"{handler!r} is not a handler: subclass handlers.EnreachHandler "
                "(or give an object with async handle() and failed())"
            )
        if endpoint is None:
            endpoint = EndpointConfig("enreach", "enreach", path, secrets=SecretSet([secret]))
        kind = getattr(handler, "source_kind", None)
        if kind and kind != endpoint.kind:
            raise ConfigError(
                f"{type(handler).__name__} handles {kind} events, not {endpoint.kind}"
            )
        if not endpoint.path.startswith("/"):
            raise ConfigError(f"path {endpoint.path!r} must start with '/'")
        for warning in check_handler(handler, endpoint.event_types):
            warnings.warn(warning, UserWarning, stacklevel=2)
        self.endpoint = endpoint
        self.handler = handler
        self.secret = secret
        self.path = endpoint.path
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="receiver-")) if workdir is None else workdir
        self.certs = certs or throwaway_certificates(self.workdir / "certs")
        self.inbox = self.workdir / "inbox.db"
        self.settings = Settings(
            host="127.0.0.1",
            port=0,
            cert=self.certs.cert,
            key=self.certs.key,
            inbox=str(self.inbox),
            workers=workers,
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            handler_timeout=handler_timeout,
            shutdown_timeout=shutdown_timeout,
            endpoints=(endpoint,),
        )
        self.port = 0
        self._watched = _Watched(handler)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._crash: BaseException | None = None
        self._stopped: str | None = None  # what stopped it (the inbox writer, the dispatcher)
        self._sender: SyncSender | None = None

    # -- where and how to reach it ----------------------------------------------------

    @property
    def ca(self) -> Path:
        """The CA file a client must trust."""
        return self.certs.ca

    @property
    def base_url(self) -> str:
        """`https://127.0.0.1:PORT` (known once started)."""
        if not self.port:
            raise RuntimeError("the receiver has no port until it is started")
        return f"https://127.0.0.1:{self.port}"

    def url(self, path: str | None = None) -> str:
        """The full URL of `path`, by default the Enreach endpoint's."""
        return self.base_url + (self.path if path is None else path)

    def _wire(self, wire: WireFormat | None) -> WireFormat:
        if wire is not None:
            return wire
        if self.endpoint.kind != "enreach":
            raise ValueError(f"give the wire format of the {self.endpoint.kind} endpoint")
        return EnreachWire(secret=self.secret)

    def sender(
        self,
        wire: WireFormat | None = None,
        *,
        retries: int = 2,
        retry_delay: float = 0.05,
        timeout: float = 5.0,
    ) -> SyncSender:
        """A blocking sender to the endpoint, trusting the CA; `wire` defaults to Enreach's."""
        return SyncSender(
            self.url(),
            provider=self._wire(wire),
            verify=self.ca,
            retries=retries,
            retry_delay=retry_delay,
            timeout=timeout,
        )

    def async_sender(
        self,
        wire: WireFormat | None = None,
        *,
        retries: int = 2,
        retry_delay: float = 0.05,
        timeout: float = 5.0,
    ) -> Sender:
        """The asyncio twin of `sender()` (for `run_stream` and async tests)."""
        return Sender(
            self.url(),
            provider=self._wire(wire),
            verify=self.ca,
            retries=retries,
            retry_delay=retry_delay,
            timeout=timeout,
        )

    def send(
        self, event: str | Mapping[str, Any], /, *, allow_extra: bool = False, **fields: Any
    ) -> Delivery:
        """Send one event as Enreach would; raise AssertionError unless it is acknowledged.

        `event` is an event type, sent as the catalog's realistic sample with `fields`
        (PascalCase names) overridden, or a whole payload, sent with `fields` added.
        A field the event type does not have (names match ignoring case, as the receiver
        decodes them) raises ValueError, a misspelling being likelier than intent;
        `allow_extra=True` sends it anyway (it arrives in `event.extra`).
        """
        event_type = event if isinstance(event, str) else event.get("EventType")
        if not allow_extra and isinstance(event_type, str) and event_type in ENREACH_EVENT_TYPES:
            _refuse_unknown_fields(event_type, fields)
        if isinstance(event, str):
            payload = enreach_sample(event, overrides=fields)
        else:
            payload = {**event, **fields}
        if self._sender is None:
            self._sender = self.sender()
        delivery = self._sender.send(payload)
        if not delivery.acknowledged:
            answer = f"status {delivery.status}" if delivery.status else delivery.error
            raise AssertionError(f"{payload.get('EventType')} was not acknowledged: {answer}")
        return delivery

    # -- what the handler did ---------------------------------------------------------

    @property
    def handled(self) -> int:
        """Events the handler returned from normally, since start."""
        return self._watched.handled

    @property
    def failures(self) -> list[HandlerFailure]:
        """Every failed attempt so far, oldest first (`final` ones are dead letters)."""
        return list(self._watched.failures)

    def report(self) -> str:
        """What the handler did so far, in one line, for failure messages."""
        failures = self.failures
        dead = sum(f.final for f in failures)
        return f"handled {self.handled}, failed attempts {len(failures)}, dead letters {dead}"

    def wait_until(
        self, predicate: Callable[[], object], timeout: float = 10.0, *, what: str = "condition"
    ) -> None:
        """Poll `predicate` until it is true; raise TimeoutError with the handler's record."""
        deadline = time.monotonic() + timeout
        while not predicate():
            self._check_running()
            if time.monotonic() >= deadline:
                failures = self.failures
                raise TimeoutError(f"{what} not met after {timeout:g}s ({self.report()})") from (
                    failures[-1].error if failures else None
                )
            time.sleep(0.01)

    def wait_for_handled(self, count: int, timeout: float = 10.0) -> None:
        """Wait until `count` events were handled; a dead letter on the way fails at once."""

        def done() -> bool:
            if self.handled >= count:
                return True
            dead = [failure for failure in self.failures if failure.final]
            if dead:
                raise AssertionError(
                    f"waiting for {count} handled event(s), got a {dead[0]} ({self.report()})"
                ) from dead[0].error
            return False

        self.wait_until(done, timeout, what=f"{count} handled event(s)")

    # -- lifecycle --------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between a successful `start` and `stop`."""
        server, thread = self._server, self._thread
        return server is not None and thread is not None and thread.is_alive() and server.started

    def start(self, *, timeout: float = 10.0) -> InProcessReceiver:
        """Serve in a background thread; return (self) once requests are accepted."""
        if self._thread is not None:
            raise RuntimeError("an InProcessReceiver starts once; make a new one")
        watched = Subscription("default", {self.endpoint.name: self._watched}, self._watched)
        app = ReceiverApp(self.settings, Runtime(self.settings, [watched]))
        tls = ServerTLS(self.certs.cert, self.certs.key, client_cas=self.settings.client_cas)
        server = uvicorn_server(app, tls, self.settings)

        def stopped(part: str, reason: str) -> None:
            # As `receiver serve` exits: a receiver without its writer or dispatcher is of
            # no use, and the test's next wait says why it stopped.
            self._stopped = f"its {part} stopped ({reason})"
            server.should_exit = True

        app.on_stopped = stopped
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._server = server
        self._thread = threading.Thread(
            target=self._serve, args=(server, sock), name=f"receiver:{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive():
                self._thread.join()
                self._remove_workdir()
                raise RuntimeError("the receiver failed to start (see the log)") from self._crash
            if time.monotonic() >= deadline:
                self.stop()
                raise TimeoutError(f"the receiver did not start within {timeout:g}s")
            time.sleep(0.005)
        return self

    def stop(self, *, timeout: float = 15.0) -> None:
        """Shut down gracefully through uvicorn, join the thread, remove a temporary workdir."""
        if self._sender is not None:
            self._sender.close()
            self._sender = None
        server, thread = self._server, self._thread
        if server is not None and thread is not None and thread.is_alive():
            server.should_exit = True  # uvicorn's main loop checks this every 0.1 s
            thread.join(timeout)
            if thread.is_alive():
                server.force_exit = True
                thread.join(timeout)
            if thread.is_alive():
                raise RuntimeError(f"the receiver thread did not stop within {timeout:g}s")
        self._remove_workdir()

    def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        # Not in the main thread, uvicorn installs no signal handlers: should_exit stops it.
        try:
            run_loop(server.serve(sockets=[sock]))
        except BaseException as exc:  # SystemExit from a failed start-up; start() re-raises
            self._crash = exc
        finally:
            sock.close()

    def _check_running(self) -> None:
        if self._stopped is not None:
            raise RuntimeError(f"the receiver is not running: {self._stopped}") from self._crash
        if self._thread is None or not self._thread.is_alive():
            raise RuntimeError("the receiver is not running") from self._crash

    def _remove_workdir(self) -> None:
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> InProcessReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

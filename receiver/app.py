"""The ASGI application: webhook paths served by raw-ASGI endpoints, the rest by Starlette.

Its lifespan starts and stops a `receiver.runtime.Runtime` (the inbox, dispatcher and
maintenance). The inbox writer and the dispatcher must keep running for the receiver to be
of any use: if either stops (a fault no error handling absorbed), the runtime logs that once,
`/healthz` answers 503 naming the part, appends fail at once with 503, and `on_stopped` is
called so that whoever runs the app can stop it (`receiver serve` exits with status 1, to be
restarted).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from receiver.access import client_access
from receiver.config import Settings
from receiver.endpoint import CLOSE, Endpoint, Message, Receive, Scope, Send, declares_body
from receiver.logs import RateLimitedLog, printable
from receiver.runtime import Runtime, secret_texts
from receiver.sources import build_source

__all__ = ["ReceiverApp", "secret_texts"]

log = logging.getLogger("receiver.app")

PURGE_INTERVAL = 3600.0

_REASONS = {404: "no endpoint at this path", 405: "method not allowed"}


def _closing(send: Send) -> Send:
    """`send` with `Connection: close` added to the response head."""

    async def send_closing(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), CLOSE]}
        await send(message)

    return send_closing


def _refusals_logged(scope: Scope, send: Send, refusals: RateLimitedLog) -> Send:
    """`send` that logs an answer of 400 or more (a 404, or a 405 at /healthz)."""

    async def send_logging(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] >= 400:
            status: int = message["status"]
            client = scope.get("client")
            refusals.warning(
                "%s: refused a request from %s with %d: %s",
                printable(scope["path"]),
                client[0] if client else "?",
                status,
                _REASONS.get(status, "refused"),
            )
        await send(message)

    return send_logging


class ReceiverApp:
    """Every configured endpoint plus the inbox and dispatcher they share.

    Webhook paths are looked up in a dict and go straight to their endpoint; anything
    else (health check, 404s, lifespan) goes to a Starlette app.
    """

    def __init__(self, settings: Settings, runtime: Runtime | None = None) -> None:
        """`runtime` defaults to one for `settings` (its handlers imported now)."""
        self.settings = settings
        self.runtime = runtime or Runtime(settings)
        self.inbox = self.runtime.inbox
        self.endpoints: dict[str, Endpoint] = {}
        for config in settings.endpoints:
            endpoint = Endpoint(
                config.name,
                build_source(config),
                self.inbox,
                routes=self.runtime.routes[config.name],
                max_body=config.max_body,
                access=client_access(config, settings),
            )
            path = config.path.rstrip("/") or "/"
            self.endpoints[path] = endpoint
            self.endpoints[path + "/"] = endpoint
        # /healthz is the admin listener's; here only when asked (`public_healthz`).
        routes = (
            [Route("/healthz", self._health, methods=["GET"])] if settings.public_healthz else []
        )
        self.starlette = Starlette(routes=routes, lifespan=self._lifespan)
        self._refusals = RateLimitedLog(log)
        self.started: list[Callable[[], None]] = []
        """Called once the runtime has started (the admin listener starts then)."""

    @property
    def stopped(self) -> tuple[str, str] | None:
        """The part that stopped (`inbox writer`, `dispatcher`) and why, once one has."""
        return self.runtime.stopped

    @property
    def on_stopped(self) -> Callable[[str, str], None] | None:
        """Called once with `stopped` when a part stops: the app cannot work on without it."""
        return self.runtime.on_stopped

    @on_stopped.setter
    def on_stopped(self, callback: Callable[[str, str], None] | None) -> None:
        self.runtime.on_stopped = callback

    @property
    def dispatcher(self) -> Any:
        """The runtime's dispatcher, while this process dispatches."""
        return self.runtime.dispatcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one ASGI call."""
        if scope["type"] == "http":
            endpoint = self.endpoints.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
            if declares_body(dict(scope["headers"])):
                send = _closing(send)  # a 404 or 405 here is sent without reading the body
            send = _refusals_logged(scope, send, self._refusals)
        await self.starlette(scope, receive, send)

    async def _health(self, request: Request) -> Response:
        if self.stopped is not None:  # which part only: the details are in the log
            return JSONResponse({"status": "stopped", "stopped": self.stopped[0]}, status_code=503)
        return JSONResponse({"status": "ok", "dispatching": self.dispatcher is not None})

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.runtime.start()
        for started in self.started:
            started()
        try:
            yield
        finally:
            await self.runtime.stop()
            self._summary()

    def _summary(self) -> None:
        seen: set[int] = set()
        for endpoint in self.endpoints.values():
            if id(endpoint) in seen:
                continue
            seen.add(id(endpoint))
            counts: dict[str, Any] = endpoint.counters.as_dict()
            log.info("%s: %s", endpoint.name, ", ".join(f"{k} {v}" for k, v in counts.items()))

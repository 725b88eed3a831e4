"""The ASGI application: webhook paths served by raw-ASGI endpoints, the rest by Starlette.

The inbox writer and the dispatcher must keep running for the receiver to be of any use: if
either stops (a fault no error handling absorbed), the app logs that once, `/healthz` answers
503 naming the part, appends fail at once with 503, and `on_stopped` is called so that
whoever runs the app can stop it (`receiver serve` exits with status 1, to be restarted).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from receiver.access import client_access
from receiver.config import Settings
from receiver.dispatcher import Dispatcher
from receiver.endpoint import CLOSE, Endpoint, Message, Receive, Scope, Send, declares_body
from receiver.handling import EventHandler, LoggingHandler
from receiver.inbox.base import Inbox, open_inbox
from receiver.logs import RateLimitedLog, printable
from receiver.sources import build_source

__all__ = ["ReceiverApp", "secret_texts"]

log = logging.getLogger("receiver.app")

PURGE_INTERVAL = 3600.0

_REASONS = {404: "no endpoint at this path", 405: "method not allowed"}


def secret_texts(settings: Settings) -> list[str]:
    """Every configured secret in each form it could be written in: as configured, in base64
    (a Basic `Authorization` header) and URL-encoded; what logs and stored errors must mask."""
    forms: dict[str, None] = {}
    for endpoint in settings.endpoints:
        for text in endpoint.secret_texts:
            encoded = base64.b64encode(text.encode()).decode()
            forms.update(dict.fromkeys((text, encoded, quote(text, safe=""), quote_plus(text))))
    return list(forms)


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

    def __init__(
        self,
        settings: Settings,
        handlers: Mapping[str, EventHandler] | None = None,
        *,
        default_handler: EventHandler | None = None,
        inbox: Inbox | None = None,
    ) -> None:
        self.settings = settings
        self.inbox = inbox or open_inbox(settings.inbox, retention_days=settings.retention_days)
        self.handlers = dict(handlers or {})
        self.default_handler = default_handler or LoggingHandler()
        self.dispatcher: Dispatcher | None = None
        self.endpoints: dict[str, Endpoint] = {}
        for config in settings.endpoints:
            endpoint = Endpoint(
                config.name,
                build_source(config),
                self.inbox,
                max_body=config.max_body,
                access=client_access(config, settings),
            )
            path = config.path.rstrip("/") or "/"
            self.endpoints[path] = endpoint
            self.endpoints[path + "/"] = endpoint
        self.starlette = Starlette(
            routes=[Route("/healthz", self._health, methods=["GET"])],
            lifespan=self._lifespan,
        )
        self._refusals = RateLimitedLog(log)
        self.stopped: tuple[str, str] | None = None
        """The part that stopped (`inbox writer`, `dispatcher`) and why, once one has."""
        self.on_stopped: Callable[[str, str], None] | None = None
        """Called once with `stopped` when a part stops: the app cannot work on without it."""

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

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        settings = self.settings
        await self.inbox.open(on_failure=self._inbox_failed)
        if settings.dispatch and settings.workers > 0:
            if self.inbox.try_lock_dispatch():
                self.dispatcher = Dispatcher(
                    self.inbox,
                    self.handlers,
                    self.default_handler,
                    workers=settings.workers,
                    max_attempts=settings.max_attempts,
                    backoff_base=settings.backoff_base,
                    backoff_max=settings.backoff_max,
                    handler_timeout=settings.handler_timeout,
                    secrets=secret_texts(settings),
                    on_failure=self._dispatcher_failed,
                )
                await self.dispatcher.start()
            else:
                log.warning(
                    "another process dispatches from %s; this one only receives", self.inbox
                )
        maintenance = asyncio.create_task(self._maintain(), name="inbox-maintenance")
        try:
            yield
        finally:
            maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await maintenance
            if self.dispatcher is not None:
                await self.dispatcher.stop(settings.shutdown_timeout)
            await self.inbox.close()
            self._summary()

    async def _maintain(self) -> None:
        while True:
            try:
                removed = await self.inbox.purge()
            except Exception:
                log.exception("purging old events failed")
            else:
                if removed:
                    log.info("purged %d completed event(s) past retention", removed)
            await asyncio.sleep(PURGE_INTERVAL)

    def _summary(self) -> None:
        seen: set[int] = set()
        for endpoint in self.endpoints.values():
            if id(endpoint) in seen:
                continue
            seen.add(id(endpoint))
            counts: dict[str, Any] = endpoint.counters.as_dict()
            log.info("%s: %s", endpoint.name, ", ".join(f"{k} {v}" for k, v in counts.items()))
        if self.dispatcher is not None:
            stats = self.dispatcher.stats
            log.info(
                "dispatch: handled %d, failed attempts %d, dead %d, released %d",
                stats.handled, stats.failed_attempts, stats.dead, stats.released,
            )  # fmt: skip

"""The admin listener's ASGI app: health, readiness, metrics and the console.

| path | what | token |
|---|---|---|
| `/healthz` | 200 while the process is up; 503 once a part it needs has stopped | never |
| `/readyz` | 200 when ready, else 503, JSON naming each check (`admin.readiness`) | never |
| `/metrics` | Prometheus text format (`receiver.metrics`) | when configured |
| `/`, `/events`, ... | the console (`receiver.admin.console`) | when configured |

Health and readiness stay open so that load balancers and orchestrators can poll them
without a secret; they say which check failed, never what an event holds. Every answer
carries `Cache-Control: no-store` and headers that keep the console out of other sites'
frames.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from receiver.admin.auth import SESSION_COOKIE
from receiver.admin.context import AdminContext
from receiver.admin.readiness import Readiness
from receiver.exceptions import StorageError
from receiver.metrics import render

__all__ = ["OPEN_PATHS", "build_admin_app"]

log = logging.getLogger("receiver.admin")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]

OPEN_PATHS = frozenset(("/healthz", "/readyz", "/login", "/static/console.css"))
"""Served without a token."""

SECURITY_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # same-origin: browsers send the console's own Origin on its forms (checked against CSRF),
    # and nothing to other sites.
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    ),
]

METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _cookie(headers: list[tuple[bytes, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: S112 - a malformed cookie header is no session
                continue
            if name in jar:
                return jar[name].value
    return None


class _Guard:
    """Asks for a token where one is configured; adds the security headers to every answer."""

    def __init__(self, app: ASGIApp, ctx: AdminContext) -> None:
        self.app = app
        self.auth = ctx.auth

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        path: str = scope["path"]
        if path not in OPEN_PATHS and self.auth.required:
            headers: list[tuple[bytes, bytes]] = scope["headers"]
            authorization = next(
                (v.decode("latin-1") for k, v in headers if k == b"authorization"), None
            )
            if not self.auth.allows(authorization, _cookie(headers, SESSION_COOKIE)):
                accept = next((v for k, v in headers if k == b"accept"), b"")
                if scope["method"] == "GET" and b"text/html" in accept:
                    query = scope.get("query_string", b"").decode("latin-1")
                    target = quote(path + ("?" + query if query else ""), safe="/")
                    response: Response = Response(
                        status_code=303, headers={"location": f"/login?next={target}"}
                    )
                else:
                    response = PlainTextResponse(
                        "a bearer token is required\n",
                        status_code=401,
                        headers={"www-authenticate": 'Bearer realm="receiver admin"'},
                    )
                await response(scope, receive, send_secured)
                return
        await self.app(scope, receive, send_secured)


def build_admin_app(ctx: AdminContext) -> ASGIApp:
    """The admin listener's app for this process."""
    from receiver.admin.console import console_routes

    readiness = Readiness(ctx)

    async def healthz(request: Request) -> Response:
        stopped = ctx.runtime.stopped
        if stopped is not None:
            return JSONResponse({"status": "stopped", "stopped": stopped[0]}, status_code=503)
        return JSONResponse({"status": "ok", "role": ctx.role})

    async def readyz(request: Request) -> Response:
        ready, body = await readiness.check()
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        snap = ctx.snapshot()
        _, body = await readiness.check()
        snap.ready = {name: bool(result["ok"]) for name, result in body["checks"].items()}
        try:
            stats = await ctx.inbox(lambda admin: admin.stats())
        except StorageError as exc:
            log.warning("metrics: the inbox's figures are missing from this scrape: %s", exc)
            snap.inbox_up = False
        else:
            snap.backlog = stats.by_subscriber
            snap.oldest_open_age = stats.oldest_open_age
        return Response(render(snap), media_type=METRICS_TYPE)

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *console_routes(ctx),
    ]
    return _Guard(Starlette(routes=routes), ctx)

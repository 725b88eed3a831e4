"""The admin listener: a second HTTPS port of a `receiver serve` or `receiver worker` process.

It is served by uvicorn on the same event loop as the rest of the process, with the same TLS
context (and so the same certificate, reloaded with it), its own small connection limit and
the same handshake and request deadlines. It never takes the stop signals: the process stops
it when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

from receiver.admin.app import build_admin_app
from receiver.admin.auth import check_admin_binding
from receiver.admin.context import AdminContext
from receiver.config import Settings
from receiver.tls import ServerTLS

__all__ = ["ADMIN_CONNECTIONS", "DEFAULT_PORTS", "AdminListener", "bind_admin"]

DEFAULT_PORTS = {"serve": 9443, "worker": 9444}
"""The admin port of each role unless `admin_port` says otherwise (both may run on one host)."""
ADMIN_CONNECTIONS = 64
"""Connections the admin listener holds open at most (operators, a scraper, a few probes)."""


def bind_admin(settings: Settings, role: str) -> socket.socket | None:
    """The admin listener's socket for `role`, or None when `--no-admin`; ConfigError (one
    line) for an address reachable from the network without a token, or a port in use."""
    if not settings.admin:
        return None
    from receiver.server import listen_on

    check_admin_binding(settings.admin_host, settings.admin_tokens)
    port = settings.admin_port if settings.admin_port is not None else DEFAULT_PORTS[role]
    return listen_on(settings.admin_host, port, "admin ")


def address(sock: socket.socket) -> str:
    """`https://host:port` of a listening socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"https://{shown}:{port}"


class AdminListener:
    """Serves the admin app on a bound socket until `stop`."""

    def __init__(self, ctx: AdminContext, tls: ServerTLS, sock: socket.socket) -> None:
        from receiver.engines.limits import ConnectionLimit
        from receiver.engines.uvicorn_engine import GuardedServer, uvicorn_config

        class _Server(GuardedServer):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield  # the process's own handlers stop it, and then this listener

        self.ctx = ctx
        self.sock = sock
        config = uvicorn_config(
            build_admin_app(ctx), tls, ctx.settings, ConnectionLimit(ADMIN_CONNECTIONS)
        )
        config.lifespan = "off"
        self._server = _Server(config, tls_handshake_timeout=ctx.settings.tls_handshake_timeout)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start serving (on the running loop)."""
        self._task = asyncio.create_task(self._server.serve(sockets=[self.sock]), name="admin")

    async def stop(self) -> None:
        """Stop serving: open requests get a moment to finish."""
        self._server.should_exit = True
        if self._task is not None:
            await asyncio.wait([self._task], timeout=self.ctx.settings.shutdown_timeout + 1)
            if not self._task.done():
                self._task.cancel()
        self.ctx.close()

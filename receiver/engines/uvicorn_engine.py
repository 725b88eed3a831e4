"""uvicorn with httptools: the fast default engine.

uvicorn creates its listener with asyncio's TLS defaults: a client may take 60 s to finish
its TLS handshake (or never start it), and a closing connection waits 30 s for the peer's
close_notify, each holding a file descriptor. `GuardedServer` creates the listener itself,
as uvicorn does for the sockets it is given, with both bounded: `tls_handshake_timeout`
for the handshake and `TLS_CLOSE_GRACE` for every close. It relies on a few of uvicorn's
internals and refuses to serve if they have moved (`check_uvicorn`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import socket
import ssl
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.lifespan.on import LifespanOn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from receiver.config import Settings
from receiver.engines.guard import guarded_protocol
from receiver.engines.limits import (
    TLS_CLOSE_GRACE,
    ConnectionLimit,
    connection_limit,
    raise_open_files_limit,
)
from receiver.tls import ServerTLS

__all__ = ["GuardedServer", "check_uvicorn", "serve", "uvicorn_config", "uvicorn_server"]

log = logging.getLogger("receiver.engines")


def uvicorn_config(
    app: Any, tls: ServerTLS, settings: Settings, limit: ConnectionLimit | None = None
) -> uvicorn.Config:
    """The uvicorn settings this project serves with (also used by the in-process receiver);
    connections count against `limit` (default: the one `settings` ask for)."""

    def context(config: uvicorn.Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return tls.context

    return uvicorn.Config(
        app,
        ssl_certfile=str(tls.certfile),
        ssl_keyfile=str(tls.keyfile),
        ssl_context_factory=context,
        http=guarded_protocol(
            settings.request_timeout, connection_limit(settings) if limit is None else limit
        ),
        ws="none",
        lifespan="on",
        access_log=False,  # ~43 µs a request; the endpoint counts and logs what matters
        log_config=None,
        server_header=False,
        proxy_headers=False,  # webhooks are authenticated by secret, not by client address
        timeout_keep_alive=max(1, round(settings.keep_alive_timeout)),
        timeout_graceful_shutdown=int(max(1, settings.shutdown_timeout)),
        log_level=settings.log_level.lower(),
    )


class GuardedServer(uvicorn.Server):
    """uvicorn's server, listening with a deadline on TLS handshakes and closes."""

    def __init__(self, config: uvicorn.Config, *, tls_handshake_timeout: float) -> None:
        check_uvicorn()
        super().__init__(config)
        self.tls_handshake_timeout = tls_handshake_timeout

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's `Server.startup` for the sockets it is given, plus the two timeouts.
        if sockets is None:
            raise ValueError("GuardedServer serves only the sockets it is given")
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(STARTUP_FAILURE)
        config = self.config
        loop = asyncio.get_running_loop()

        def create_protocol() -> asyncio.Protocol:
            protocol: asyncio.Protocol = config.http_protocol_class(  # type: ignore[call-arg]
                config=config,
                server_state=self.server_state,
                app_state=self.lifespan.state,
                _loop=loop,
            )
            return protocol

        self.servers = [
            await loop.create_server(
                create_protocol,
                sock=sock,
                ssl=config.ssl,
                backlog=config.backlog,
                ssl_handshake_timeout=self.tls_handshake_timeout,
                ssl_shutdown_timeout=TLS_CLOSE_GRACE,
            )
            for sock in sockets
        ]
        self.started = True


def check_uvicorn() -> None:
    """Raise RuntimeError if the uvicorn internals `GuardedServer` relies on have moved.

    A uvicorn that no longer starts its listener through `startup(sockets)`, or builds its
    protocol or lifespan differently, would serve without the TLS deadlines (or not at all):
    refuse rather than run unguarded.
    """
    moved = []
    if list(inspect.signature(uvicorn.Server.startup).parameters) != ["self", "sockets"]:
        moved.append("uvicorn.Server.startup no longer takes (sockets)")
    serve_uses = uvicorn.Server._serve.__code__.co_names
    if not {"startup", "started", "shutdown"} <= set(serve_uses):
        moved.append("uvicorn.Server._serve no longer calls startup, then shutdown if started")
    if "servers" not in uvicorn.Server.shutdown.__code__.co_names:
        moved.append("uvicorn.Server.shutdown no longer closes self.servers")
    protocol_takes = list(inspect.signature(HttpToolsProtocol.__init__).parameters)
    if protocol_takes != ["self", "config", "server_state", "app_state", "_loop"]:
        moved.append(f"uvicorn's HttpToolsProtocol takes {protocol_takes}")
    if not {"should_exit", "state"} <= set(LifespanOn.__init__.__code__.co_names):
        moved.append("uvicorn's LifespanOn has no should_exit and state")
    if "scope" not in HttpToolsProtocol.on_message_begin.__code__.co_names:
        # `guard` adds the client certificate to the scope made there.
        moved.append("uvicorn's HttpToolsProtocol no longer makes the scope in on_message_begin")
    if moved:
        raise RuntimeError(f"uvicorn {uvicorn.__version__} changed: {'; '.join(moved)}")


def uvicorn_server(
    app: Any, tls: ServerTLS, settings: Settings, limit: ConnectionLimit | None = None
) -> GuardedServer:
    """The server this project runs: `uvicorn_config` on a `GuardedServer`."""
    config = uvicorn_config(app, tls, settings, limit)
    return GuardedServer(config, tls_handshake_timeout=settings.tls_handshake_timeout)


async def serve(app: Any, tls: ServerTLS, sock: socket.socket, settings: Settings) -> None:
    """Serve `app` on `sock` with the shared TLS context."""
    raise_open_files_limit()
    limit = connection_limit(settings)
    server = uvicorn_server(app, tls, settings, limit)
    # uvicorn restores the handlers it found and re-raises the stop signal after its
    # graceful shutdown; finding a no-op lets a clean stop end with exit status 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _ignore)
    try:
        await server.serve(sockets=[sock])
    finally:
        log.info("%s", limit.summary())


def _ignore(signum: int, frame: FrameType | None) -> None:
    """Stand-in handler that uvicorn restores once it has shut down."""

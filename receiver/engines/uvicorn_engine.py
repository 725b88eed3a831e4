"""uvicorn with httptools: the fast default engine."""

from __future__ import annotations

import signal
import socket
import ssl
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

from receiver.config import Settings
from receiver.engines.guard import guarded_protocol
from receiver.tls import ServerTLS

__all__ = ["serve", "uvicorn_config"]


def uvicorn_config(app: Any, tls: ServerTLS, settings: Settings) -> uvicorn.Config:
    """The uvicorn settings this project serves with (also used by the in-process receiver)."""

    def context(config: uvicorn.Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return tls.context

    return uvicorn.Config(
        app,
        ssl_certfile=str(tls.certfile),
        ssl_keyfile=str(tls.keyfile),
        ssl_context_factory=context,
        http=guarded_protocol(settings.request_timeout),
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


async def serve(app: Any, tls: ServerTLS, sock: socket.socket, settings: Settings) -> None:
    """Serve `app` on `sock` with the shared TLS context."""
    server = uvicorn.Server(uvicorn_config(app, tls, settings))
    # uvicorn restores the handlers it found and re-raises the stop signal after its
    # graceful shutdown; finding a no-op lets a clean stop end with exit status 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _ignore)
    await server.serve(sockets=[sock])


def _ignore(signum: int, frame: FrameType | None) -> None:
    """Stand-in handler that uvicorn restores once it has shut down."""

"""Hypercorn: slower HTTP/1.1 (h11) but HTTP/2 capable."""

from __future__ import annotations

import asyncio
import signal
import socket
import ssl
from typing import Any

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from receiver.config import Settings
from receiver.tls import ServerTLS

__all__ = ["serve"]


class _Config(Config):
    tls: ServerTLS

    def create_ssl_context(self) -> ssl.SSLContext | None:
        return self.tls.context


async def serve(app: Any, tls: ServerTLS, sock: socket.socket, settings: Settings) -> None:
    """Serve `app` on `sock` with the shared TLS context until SIGTERM or SIGINT."""
    config = _Config()
    config.tls = tls
    config.certfile = str(tls.certfile)
    config.keyfile = str(tls.keyfile)
    config.bind = [f"fd://{sock.detach()}"]
    config.accesslog = None
    config.graceful_timeout = max(1.0, settings.shutdown_timeout)
    config.keep_alive_timeout = 15
    config.read_timeout = max(1, round(settings.request_timeout))  # slow or stalled clients
    config.loglevel = settings.log_level.upper()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await hypercorn_serve(app, config, shutdown_trigger=stop.wait)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)

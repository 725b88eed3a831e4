"""Hypercorn: slower HTTP/1.1 (h11) but HTTP/2 capable; guarded like uvicorn (see
`hypercorn_guard`)."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import ssl
from typing import Any

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from receiver.config import Settings
from receiver.engines.hypercorn_guard import guarded_server, installed
from receiver.engines.limits import connection_limit, raise_open_files_limit
from receiver.tls import ServerTLS

__all__ = ["serve"]

log = logging.getLogger("receiver.engines")


class _Config(Config):
    tls: ServerTLS

    def create_ssl_context(self) -> ssl.SSLContext | None:
        return self.tls.context


async def serve(app: Any, tls: ServerTLS, sock: socket.socket, settings: Settings) -> None:
    """Serve `app` on `sock` with the shared TLS context until SIGTERM or SIGINT."""
    raise_open_files_limit()
    limit = connection_limit(settings)
    config = _Config()
    config.tls = tls
    config.certfile = str(tls.certfile)
    config.keyfile = str(tls.keyfile)
    config.bind = [f"fd://{sock.detach()}"]
    config.accesslog = None
    # Its own lines through the process's logging (JSON or console), not a handler of its own.
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = max(1.0, settings.shutdown_timeout)
    config.keep_alive_timeout = settings.keep_alive_timeout
    config.ssl_handshake_timeout = settings.tls_handshake_timeout  # closes: hypercorn_guard
    # hypercorn listens again on the socket it is given, by default with a backlog of 100:
    # keep the 2048 it was bound with (and uvicorn uses), or a burst of connections waits.
    config.backlog = 2048
    config.h11_max_incomplete_size = 64 * 1024  # a longer request head gets 431, as on uvicorn
    # Per read, for connections switched to HTTP/2; HTTP/1.1 requests get a deadline each.
    config.read_timeout = max(1, round(settings.request_timeout))
    config.loglevel = settings.log_level.upper()
    server = guarded_server(settings.request_timeout, limit)
    stop = asyncio.Event()

    def shut_down() -> None:
        server.shutdown()
        stop.set()

    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_peer_errors)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, shut_down)
    try:
        with installed(server):
            await hypercorn_serve(app, config, shutdown_trigger=stop.wait)
    except (ssl.SSLError, ConnectionError) as exc:
        # Raised while hypercorn gathers its connection tasks at shutdown (after the
        # application's own shutdown): a peer's broken TLS close, not a failed stop.
        log.info("a client connection ended uncleanly during shutdown: %s", exc)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        log.info("%s", limit.summary())


def _quiet_peer_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A client that drops its TLS connection mid-handshake or mid-close is not a server fault.

    hypercorn lets such errors escape its connection task, and asyncio would log them as
    unhandled with a traceback; they are logged as one line, everything else as usual.
    """
    error = context.get("exception")
    if isinstance(error, ssl.SSLError | ConnectionError | TimeoutError) and (
        "client_connected_cb" in str(context.get("message", ""))
    ):
        log.info("a client connection ended uncleanly: %s", error)
        return
    loop.default_exception_handler(context)

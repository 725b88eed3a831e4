"""A deadline for each request on hypercorn, and a stop that does not wait on stalled peers.

hypercorn bounds each read (`read_timeout`), not a request, so a client that trickles its
head or body a few bytes at a time holds its connection forever; and at shutdown it cancels
the connections still open after `graceful_timeout` and then waits for each one's TLS close,
which a stalled peer stretches to asyncio's 30 s `ssl_shutdown_timeout`. This module gives
hypercorn what `guard.py` gives uvicorn:

- every HTTP/1.1 connection must deliver a complete request within `request_timeout`
  seconds of connecting or of sending the first bytes after a kept-alive pause; otherwise it
  gets `408` with `Connection: close` (nothing if it sent nothing, or was already answered)
  and is closed;
- at shutdown, requests still arriving and connections already closing are aborted at once
  (senders retry what was not acknowledged), and any TLS close begun after that gets
  `CLOSE_GRACE` seconds for the peer's close_notify before the connection is aborted.

hypercorn has no hook for either: the read loop and the close live in its per-connection
`TCPServer`, which its asyncio worker looks up by module global for each new connection.
`installed` swaps in a subclass for the duration of one `serve` call (and refuses to run if
that seam is gone); the HTTP state comes from the connection's h11 parser.

The listener speaks HTTP/1.1 only (ALPN offers nothing else), so every connection gets the
deadline. hypercorn would still switch a connection to HTTP/2 on an `Upgrade: h2c` request
or on HTTP/2's connection preface, and its HTTP/2 reads are bounded only one at a time;
`HTTP11Only` answers those as uvicorn does: the upgrade is ignored (the request is served
over HTTP/1.1) and the preface gets `400` and a closed connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from ssl import SSLError
from typing import ClassVar

import h11
import hypercorn.asyncio.run as hypercorn_run
import hypercorn.protocol as hypercorn_protocol
from hypercorn.asyncio.tcp_server import MAX_RECV, TCPServer
from hypercorn.events import Closed, Event, RawData
from hypercorn.protocol.h11 import H11Protocol

__all__ = ["CLOSE_GRACE", "GuardedTCPServer", "HTTP11Only", "guarded_server", "installed"]

log = logging.getLogger("receiver.engines")

CLOSE_GRACE = 1.0
"""Seconds a connection closed during shutdown waits for the peer's TLS close_notify."""

REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class _Refused(Exception):
    """The connection was answered with an error and closed; nothing more to parse."""


class HTTP11Only(H11Protocol):
    """hypercorn's HTTP/1.1 protocol without its switches to HTTP/2."""

    async def handle(self, event: Event) -> None:
        with contextlib.suppress(_Refused):
            await super().handle(event)

    async def _check_protocol(self, event: h11.Request) -> None:
        # Replaces hypercorn's h2c upgrade (101, then HTTP/2) and its prior-knowledge switch.
        if event.method == b"PRI" and event.target == b"*":
            await self._send_error_response(400)  # with `connection: close`
            await self.send(Closed())
            raise _Refused
        # An `Upgrade: h2c` is ignored: the request is answered over HTTP/1.1.


class GuardedTCPServer(TCPServer):
    """hypercorn's connection handler with a per-request deadline and a bounded close."""

    request_timeout: ClassVar[float] = 10.0
    live: ClassVar[set[GuardedTCPServer]]
    """Open connections of this server class (set per class by `guarded_server`)."""
    _closing = False
    _abort_handle: asyncio.TimerHandle | None = None

    @classmethod
    def shutdown(cls) -> None:
        """Abort every connection whose request is still arriving (it cannot be answered with
        a 200 any more) or that is closing (waiting for the peer's TLS close_notify)."""
        for server in list(cls.live):
            if server._closing or server._receiving():
                server.writer.transport.abort()

    async def run(self) -> None:
        self.live.add(self)
        try:
            await super().run()
        finally:
            self.live.discard(self)
            if self._abort_handle is not None:
                self._abort_handle.cancel()

    async def _read_data(self) -> None:
        # TCPServer._read_data, with the read timeout shortened to the request's deadline.
        loop = self.loop
        deadline: float | None = loop.time() + self.request_timeout
        while not self.reader.at_eof():
            timeout: float | None
            if deadline is not None:
                timeout = max(deadline - loop.time(), 0.0)
            elif self._connection() is not None:
                # Between requests (hypercorn's idle task applies keep_alive_timeout) or
                # while the app answers, which uvicorn does not bound either.
                timeout = None
            else:
                timeout = self.config.read_timeout  # HTTP/2 or websocket: per read
            try:
                data = await asyncio.wait_for(self.reader.read(MAX_RECV), timeout)
            except TimeoutError:
                if deadline is not None:
                    self._expire()
                break
            except (ConnectionError, OSError, SSLError):
                break
            arrived = loop.time()
            await self.protocol.handle(RawData(data))
            if not self._receiving():
                deadline = None  # complete (or not HTTP/1.1): the app's time is not bounded
            elif deadline is None:
                deadline = arrived + self.request_timeout  # a request after a kept-alive pause
        await self.protocol.handle(Closed())
        # The connection closes once its tasks are done; hypercorn's idle timer would hold
        # it open until keep_alive_timeout.
        await self.idle_task.stop()

    async def _close(self) -> None:
        self._bound_close()
        await super()._close()

    async def _initiate_server_close(self) -> None:
        # hypercorn closes idle connections this way (at keep_alive_timeout and at shutdown);
        # the read loop then waits for the TLS close to finish.
        self._bound_close()
        await super()._initiate_server_close()

    def _bound_close(self) -> None:
        # A TLS close waits for the peer's close_notify (asyncio: up to 30 s); not at shutdown.
        self._closing = True
        if self.context.terminated.is_set() and self._abort_handle is None:
            self._abort_handle = self.loop.call_later(CLOSE_GRACE, self.writer.transport.abort)

    def _connection(self) -> h11.Connection | None:
        """The connection's h11 state machine; None before the first read, for HTTP/2 and
        for websockets."""
        wrapper = getattr(self, "protocol", None)  # set once the TLS handshake is done
        protocol = getattr(wrapper, "protocol", None)
        if isinstance(protocol, H11Protocol) and isinstance(protocol.connection, h11.Connection):
            return protocol.connection
        return None

    def _receiving(self) -> bool:
        """Whether a request has begun to arrive and has not arrived completely."""
        connection = self._connection()
        if connection is None:
            return False
        if connection.their_state is h11.SEND_BODY:
            return True
        return connection.their_state is h11.IDLE and bool(connection.trailing_data[0])

    def _expire(self) -> None:
        connection = self._connection()
        client = getattr(getattr(self, "protocol", None), "client", None)
        log.info(
            "closed a connection from %s: no complete request within %gs",
            client[0] if client else "?",
            self.request_timeout,
        )
        if (
            connection is not None
            and self._receiving()
            and connection.our_state in (h11.IDLE, h11.SEND_RESPONSE)
        ):
            # Nothing has been answered on this request yet; the loop then closes.
            self.writer.write(REQUEST_TIMEOUT)


def guarded_server(request_timeout: float) -> type[GuardedTCPServer]:
    """A `GuardedTCPServer` class with its own deadline and set of live connections."""
    attributes = {"request_timeout": request_timeout, "live": set()}
    return type("GuardedTCPServer", (GuardedTCPServer,), attributes)


_SEAMS = (
    # hypercorn's asyncio worker looks its connection class up here for each new connection
    (hypercorn_run, "TCPServer", TCPServer),
    # and each connection its HTTP/1.1 protocol class here
    (hypercorn_protocol, "H11Protocol", H11Protocol),
)


@contextlib.contextmanager
def installed(server: type[GuardedTCPServer]) -> Iterator[None]:
    """While inside, hypercorn's asyncio worker serves each connection with `server`, and
    HTTP/1.1 with `HTTP11Only`."""
    for module, name, expected in _SEAMS:
        found = getattr(module, name, None)
        if found is not expected:
            # A hypercorn that no longer looks the class up there would serve unguarded:
            # refuse rather than run without request deadlines.
            raise RuntimeError(f"{module.__name__}.{name} is {found!r}, not {expected!r}")
    replacements = (server, HTTP11Only)
    for (module, name, _), replacement in zip(_SEAMS, replacements, strict=True):
        setattr(module, name, replacement)
    try:
        yield
    finally:
        for module, name, original in _SEAMS:
            setattr(module, name, original)

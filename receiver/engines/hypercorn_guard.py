"""A deadline for each request on hypercorn, bounded closes, and a bound on connections.

hypercorn bounds each read (`read_timeout`), not a request, so a client that trickles its
head or body a few bytes at a time holds its connection forever; and every TLS close waits
for the peer's close_notify, which a stalled peer stretches to asyncio's 30 s
`ssl_shutdown_timeout` (hypercorn does not set it). This module gives hypercorn what
`guard.py` and `uvicorn_engine.py` give uvicorn:

- every HTTP/1.1 connection must deliver a complete request within `request_timeout`
  seconds of connecting or of sending the first bytes after a kept-alive pause; otherwise it
  gets `408` with `Connection: close` and is closed, or is aborted if it sent nothing (or
  was already answered): there is nothing to say, and no TLS close to wait for;
- every close gets `CLOSE_GRACE` seconds for the peer's close_notify before the connection
  is aborted;
- at shutdown, requests still arriving and connections already closing are aborted at once
  (senders retry what was not acknowledged);
- each connection counts against a `ConnectionLimit` (see `limits`): idle from when it is
  established or answered, busy from when bytes of a request arrive;
- when the TLS context asks clients for a certificate, each request's scope gets the ASGI TLS
  extension with the one the client sent (see `tls_scope`; hypercorn 0.18 adds none).

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
from collections.abc import Callable, Iterator
from ssl import SSLError
from typing import Any, ClassVar

import h11
import hypercorn.asyncio.run as hypercorn_run
import hypercorn.protocol as hypercorn_protocol
from hypercorn.asyncio.tcp_server import MAX_RECV, TCPServer
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.typing import AppWrapper, ASGIReceiveCallable, ASGISendCallable, Scope

from receiver.engines.guard import MAX_HEAD
from receiver.engines.limits import MAX_CONNECTIONS_CAP, TLS_CLOSE_GRACE, ConnectionLimit
from receiver.engines.tls_scope import tls_extension

__all__ = ["CLOSE_GRACE", "GuardedTCPServer", "HTTP11Only", "guarded_server", "installed"]

log = logging.getLogger("receiver.engines")

CLOSE_GRACE = TLS_CLOSE_GRACE
"""Seconds a closing connection waits for the peer's TLS close_notify."""

REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class _WithTLS:
    """hypercorn's application wrapper, adding a connection's TLS extension to each scope."""

    def __init__(self, app: AppWrapper, tls: dict[str, Any]) -> None:
        self.app = app
        self.tls = tls

    async def __call__(
        self,
        scope: Scope,
        receive: ASGIReceiveCallable,
        send: ASGISendCallable,
        sync_spawn: Callable[..., Any],
        call_soon: Callable[..., Any],
    ) -> None:
        if scope["type"] == "http":
            scope["extensions"]["tls"] = self.tls
        await self.app(scope, receive, send, sync_spawn, call_soon)


def _head_size(event: h11.Request) -> int:
    """About the size of the request line and headers `event` was parsed from (h11 keeps no
    count; separators and line ends are added back, optional whitespace is not)."""
    line = len(event.method) + len(event.target) + len(b"  HTTP/1.1\r\n")
    return line + sum(len(name) + len(value) + 4 for name, value in event.headers.raw_items())


class _Refused(Exception):
    """The connection was answered with an error and closed; nothing more to parse."""


class HTTP11Only(H11Protocol):
    """hypercorn's HTTP/1.1 protocol without its switches to HTTP/2."""

    async def handle(self, event: Event) -> None:
        with contextlib.suppress(_Refused):
            await super().handle(event)

    async def _check_protocol(self, event: h11.Request) -> None:
        # h11 bounds a head only while it is incomplete: one that arrives whole in a single
        # read passes whatever its size.
        if _head_size(event) > MAX_HEAD:
            log.info("refused a request head over %d bytes", MAX_HEAD)
            await self._send_error_response(431)  # with `connection: close`
            await self.send(Closed())
            raise _Refused
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
    limit: ClassVar[ConnectionLimit]
    """The bound on open connections (set per class by `guarded_server`)."""
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
        if not self.limit.admit(self):
            self.writer.transport.abort()
            return
        tls = tls_extension(self.writer.get_extra_info("ssl_object"))  # handshake done
        if tls is not None:
            self.app = _WithTLS(self.app, tls)  # this connection's; hypercorn reads it in run
        self.live.add(self)
        try:
            await super().run()
        finally:
            self.live.discard(self)
            self.limit.release(self)
            if self._abort_handle is not None:
                self._abort_handle.cancel()

    def shed(self) -> None:
        """Close at once: the connection limit needs room for a new connection."""
        self.writer.transport.abort()

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, Updated):
            # hypercorn's h11 protocol: a request has arrived (idle=False), or its response
            # is complete and the connection ready for another (idle=True), unless part of
            # the next one is already in.
            if not event.idle or self._receiving():
                self.limit.busy(self)
            else:
                self.limit.idle(self)
        await super().protocol_send(event)

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
            if data:
                self.limit.busy(self)
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
        # A TLS close waits for the peer's close_notify (asyncio: up to 30 s).
        self._closing = True
        if self._abort_handle is None:
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
        if connection is None or not self._receiving():
            # Nothing arrived: nothing to say, and no TLS close to wait for.
            self.writer.transport.abort()
        elif connection.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            # Nothing has been answered on this request yet; the loop then closes (bounded).
            self.writer.write(REQUEST_TIMEOUT)


def guarded_server(
    request_timeout: float, limit: ConnectionLimit | None = None
) -> type[GuardedTCPServer]:
    """A `GuardedTCPServer` class with its own deadline, set of live connections and
    connection limit (default: `MAX_CONNECTIONS_CAP`)."""
    attributes = {
        "request_timeout": request_timeout,
        "live": set(),
        "limit": ConnectionLimit(MAX_CONNECTIONS_CAP) if limit is None else limit,
    }
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

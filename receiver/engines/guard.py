"""A deadline for each request on uvicorn's httptools protocol, and a bound on connections.

uvicorn arms no timer until a first response has gone out, so a client that connects and
sends nothing, trickles its headers, or stops in the middle of a body would hold its
connection (and memory) forever. Here every connection must deliver a complete request
within `request_timeout` seconds of connecting, of starting a request, or of sending the
first bytes after a kept-alive pause; otherwise it is aborted, or, if part of a request had
arrived and nothing was answered yet, answered `408` and closed (the server bounds the TLS
close, see `uvicorn_engine`). The application's own time to answer is not bounded here (the
response is a store and an empty 200).

Each connection also reports to a `ConnectionLimit` when it is established, when a request
begins to arrive, when it is answered and when it is gone, so that a new connection beyond
the limit closes the longest idle one (see `limits`).

When the TLS context asks clients for a certificate, each request's scope gets the ASGI TLS
extension with the one the client sent (see `tls_scope`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from receiver.engines.limits import ConnectionLimit
from receiver.engines.tls_scope import tls_extension

__all__ = ["guarded_protocol"]

log = logging.getLogger("receiver.engines")


MAX_HEAD = 64 * 1024  # request line and headers; a webhook's are well under 4 KiB
REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class _GuardedProtocol(HttpToolsProtocol):
    request_timeout: float = 10.0
    limit: ConnectionLimit  # set per class by `guarded_protocol`
    _deadline: asyncio.TimerHandle | None = None
    _head_bytes: int | None = 0  # None once the current request's headers are complete
    _head_tail = b""  # the last bytes of the head so far, where its end may begin
    _in_message = False  # the parser is inside a request (begun, not yet complete)
    _tls: dict[object, object] | None = None  # ASGI TLS extension (if certificates are asked)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.limit.admit(self):
            transport.abort()
            return
        tls = tls_extension(transport.get_extra_info("ssl_object"))  # handshake done
        self._tls = cast("dict[object, object] | None", tls)  # uvicorn's type for extensions
        self._arm()

    def shed(self) -> None:
        """Close at once: the connection limit needs room for a new connection."""
        self._disarm()
        self.transport.abort()

    def data_received(self, data: bytes) -> None:
        self.limit.busy(self)
        if self._deadline is None and (self.cycle is None or self.cycle.response_complete):
            self._arm()  # bytes after a kept-alive pause: the next request has begun
            self._head_bytes = 0
            self._head_tail = b""
        head = self._head_bytes
        counting = head is not None
        if head is not None and head + len(data) > MAX_HEAD and self._head_over_limit(data):
            self._refuse_head()  # before the parser sees it: a whole head in one read counts too
            return
        super().data_received(data)
        # Still no complete head after this chunk (a chunk that completes it may carry body
        # bytes too, which do not count).
        if counting and self._head_bytes is not None and not self.transport.is_closing():
            self._head_bytes += len(data)
            self._head_tail = data[-3:]

    def _head_over_limit(self, data: bytes) -> bool:
        """Whether the head being received passes `MAX_HEAD` within `data` (its end, the
        blank line, may have begun in the previous read's last bytes)."""
        assert self._head_bytes is not None
        tail = self._head_tail
        end = (tail + data).find(b"\r\n\r\n")
        if end < 0:
            return True
        return self._head_bytes - len(tail) + end + 4 > MAX_HEAD

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls is not None:
            self.scope["extensions"] = {"tls": self._tls}
        self._in_message = True
        self._arm()

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_message = False
        super().on_message_complete()
        self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        answered = self.cycle is None or self.cycle.response_complete  # pipelined ones too
        if answered and not self._in_message and not self.transport.is_closing():
            self.limit.idle(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.limit.release(self)
        super().connection_lost(exc)

    def shutdown(self) -> None:
        # A request still arriving cannot be answered with a 200 any more: close it now
        # (the sender retries) instead of letting the graceful timeout cancel it mid-read.
        receiving = (
            self.cycle is not None and self.cycle.more_body and not self.cycle.response_complete
        )
        if receiving or self._head_bytes:
            self._disarm()
            # abort, not close: a TLS close waits for the stalled peer's close_notify.
            self.transport.abort()
            return
        super().shutdown()

    def _refuse_head(self) -> None:
        self._disarm()
        log.info("closed a connection from %s: request head over %d bytes", self._who(), MAX_HEAD)
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-length: 0\r\nconnection: close\r\n\r\n"
        )
        self.transport.close()

    def _who(self) -> str:
        return str(self.client[0]) if self.client else "?"

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.info(
                "closed a connection from %s: no complete request within %gs",
                self._who(),
                self.request_timeout,
            )
            if self._head_bytes == 0:
                # Nothing arrived: nothing to say, and no TLS close to wait for.
                self.transport.abort()
                return
            if self._head_bytes or (self.cycle is not None and not self.cycle.response_started):
                self.transport.write(REQUEST_TIMEOUT)  # part of a request in, nothing answered
            self.transport.close()  # the server bounds the TLS close


def guarded_protocol(request_timeout: float, limit: ConnectionLimit) -> type[Any]:
    """uvicorn's httptools protocol with a per-request deadline of `request_timeout` seconds,
    its connections counted against `limit`."""
    attributes = {"request_timeout": request_timeout, "limit": limit}
    return type("GuardedHttpToolsProtocol", (_GuardedProtocol,), attributes)

"""The thin ASGI adapter between HTTP and a source; every status code is decided here.

| status | when |
|---|---|
| 200 | stored (or a duplicate of a stored event); empty body |
| 400 | body is not what the source accepts (not JSON, not an object, nested too deep, ...), or
        not valid for its Content-Encoding |
| 401 | missing or wrong credentials; nothing is read or stored |
| 403 | the client's address is outside the endpoint's `allow_networks`, or it has no client
        certificate from the endpoint's `client_ca` (`receiver.access`); checked before
        anything else, nothing is read or stored |
| 405 | method the source does not accept |
| 413 | body larger than the endpoint's limit, as sent or once decoded; or past a source's
        bounds once decoded into fields (`receiver.sources.fields`) |
| 415 | Content-Encoding other than gzip, x-gzip, deflate or identity, or more than one |
| 503 | the inbox could not store the event; the sender should retry |

A stored event keeps its request's headers, less credentials and hop-by-hop ones, within 4 KiB
(`receiver.stored_headers`: about 2 µs a request).

A body sent with `Content-Encoding: gzip` (or `x-gzip`, `deflate`) is decoded before the
source sees it (`receiver.content_coding`). A source decodes a body of up to
`INLINE_DECODE_LIMIT` bytes on the event loop (a real webhook in well under a millisecond, the
slowest 4 KiB body built for it in about 2.5 ms); a larger one on the one decoding thread,
where a body built to be slow (the slowest under the default 1 MiB limit, a megabyte of
distinct keys, takes about 50 ms) cannot stall everyone else's requests, and only one such
decoding holds its memory at a time. The sources bound what decoding may cost
(`receiver.sources.fields`).

A 401, 403, 405, 413 or 415 may be sent without reading the request's body, so when one is
declared the answer carries `Connection: close`: hypercorn cannot serve another request on
that connection and closes it, and uvicorn (which could skip the body) then closes it too.
Every answer but a 200 or 503 is logged as a warning with the endpoint, the client's address,
the status and the reason, at most 10 times in 10 s per endpoint and status.

The request path is written against raw ASGI on purpose: on this project's benchmark machine
a bare ASGI app on uvicorn answers about 36,000 requests/s and a plain Starlette route that
parses JSON and checks a token about 19,000/s, so a framework's request and response objects
would cost about as much as the HTTP server itself (bench/RESULTS.md has this path's figures).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from receiver.access import ClientAccess
from receiver.content_coding import (
    DecodedTooLarge,
    UnsupportedCoding,
    content_coding,
    decode_body,
)
from receiver.exceptions import DecodeError, StorageError, VerificationError
from receiver.inbox.base import IntakeQueue
from receiver.inbox.models import NewEvent
from receiver.logs import RateLimitedLog, printable
from receiver.metrics import RequestMetrics
from receiver.sources.base import Headers, Source, TooLarge
from receiver.stored_headers import HeaderKeeper

__all__ = ["CLOSE", "INLINE_DECODE_LIMIT", "Counters", "Endpoint", "declares_body"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("receiver.endpoint")
request_log = logging.getLogger("receiver.requests")
"""One line per stored or duplicate request (refusals are warnings of `receiver.endpoint`)."""

_BODY_EMPTY: Message = {"type": "http.response.body", "body": b""}

INLINE_DECODE_LIMIT = 4 * 1024
"""The largest body (once its Content-Encoding is undone) decoded on the event loop."""

_decoding_thread: ThreadPoolExecutor | None = None


def _decoder() -> ThreadPoolExecutor:
    """The one thread that decodes large bodies, shared by every endpoint of the process."""
    global _decoding_thread
    if _decoding_thread is None:
        _decoding_thread = ThreadPoolExecutor(1, thread_name_prefix="receiver-decode")
    return _decoding_thread


def _start(status: int, *extra: tuple[bytes, bytes]) -> Message:
    return {"type": "http.response.start", "status": status, "headers": [*extra]}


def _reason(status: int, text: str, *extra: tuple[bytes, bytes]) -> tuple[Message, Message]:
    body = text.encode() + b"\n"
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    return _start(status, *headers), {"type": "http.response.body", "body": body}


CLOSE = (b"connection", b"close")
"""The header that announces the connection ends after this response."""
_OK = _start(200, (b"content-length", b"0"))
_UNAUTHORIZED = _start(401, (b"content-length", b"0"))
_UNAUTHORIZED_CLOSE = _start(401, (b"content-length", b"0"), CLOSE)


def declares_body(headers: Mapping[bytes, bytes]) -> bool:
    """Whether a request's headers announce a body (one answered unread ends its connection)."""
    return headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers


class Counters:
    """What an endpoint did, for the shutdown summary and tests."""

    __slots__ = (
        "bad_request",
        "duplicate",
        "forbidden",
        "method_not_allowed",
        "stored",
        "too_large",
        "unauthorized",
        "unavailable",
        "unsupported",
    )

    def __init__(self) -> None:
        self.stored = self.duplicate = self.unauthorized = self.forbidden = 0
        self.bad_request = self.too_large = self.unsupported = self.unavailable = 0
        self.method_not_allowed = 0

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""
        return {name: getattr(self, name) for name in self.__slots__}


_OUTCOMES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported",
    503: "unavailable",
}
"""The outcome a refusal counts as, in logs and metrics."""


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


def _auth_headers(source: Source) -> tuple[bytes, ...]:
    """The header `source` authenticates with, when it names one (never stored)."""
    header = getattr(getattr(source, "auth", None), "header", None)
    return (header,) if isinstance(header, bytes) else ()


class Endpoint:
    """One webhook URL: client check, method check, authentication, size limit, decode, store,
    answer."""

    def __init__(
        self,
        name: str,
        source: Source,
        inbox: IntakeQueue,
        *,
        routes: Callable[[str], Sequence[str]] = lambda event_type: ("default",),
        max_body: int,
        access: ClientAccess | None = None,
    ) -> None:
        self.name = name
        self.source = source
        self.inbox = inbox
        self.routes = routes
        """The subscribers that get an event of a type (`receiver.runtime.Routing`)."""
        self.max_body = max_body
        self.access = access
        """Which clients may call at all (networks, certificates); None: any client."""
        self.counters = Counters()
        self.metrics = RequestMetrics()
        self._allow = (b"allow", ", ".join(sorted(source.methods)).encode())
        self._keep_headers = HeaderKeeper(_auth_headers(source))
        # One budget per status, so a flood of one kind cannot hide the others.
        statuses = (400, 401, 403, 405, 413, 415)
        self._refusal_logs = {status: RateLimitedLog(log) for status in statuses}
        # While the inbox cannot take writes (locked, disk full) every request fails alike.
        self._store_errors = RateLimitedLog(log)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request (ASGI)."""
        started = time.perf_counter()
        source = self.source
        headers = dict(scope["headers"])
        if self.access is not None:
            refusal = self.access.refusal(scope)
            if refusal is not None:
                self.counters.forbidden += 1
                close = (CLOSE,) if declares_body(headers) else ()
                await self._refuse(scope, send, 403, refusal, *close)
                return
        method: str = scope["method"]
        if method not in source.methods:
            self.counters.method_not_allowed += 1
            close = (CLOSE,) if declares_body(headers) else ()
            reason = f"method {printable(method, 20)} not allowed"
            await self._refuse(scope, send, 405, reason, self._allow, *close)
            return
        query: bytes = scope.get("query_string", b"")
        try:
            source.authenticate(headers, query)
        except VerificationError as exc:
            self.counters.unauthorized += 1
            self._log_refusal(scope, 401, str(exc))
            await send(_UNAUTHORIZED_CLOSE if declares_body(headers) else _UNAUTHORIZED)
            await send(_BODY_EMPTY)
            return
        coding = None
        if b"content-encoding" in headers:
            try:
                coding = content_coding(scope["headers"])
            except UnsupportedCoding as exc:
                self.counters.unsupported += 1
                close = (CLOSE,) if declares_body(headers) else ()
                await self._refuse(scope, send, 415, str(exc), *close)
                return
        try:
            body = await self._read_body(headers, receive)
        except _TooLarge:
            self.counters.too_large += 1
            reason = f"body larger than {self.max_body:,} bytes"
            await self._refuse(scope, send, 413, reason, CLOSE)
            return
        except _Disconnected:
            return
        try:
            if coding is not None:
                body = decode_body(coding, body, self.max_body)
            if len(body) <= INLINE_DECODE_LIMIT:
                event = source.decode(method, headers, query, body)
            else:
                event = await self._decode_aside(method, headers, query, body)
        except DecodedTooLarge as exc:
            self.counters.too_large += 1
            await self._refuse(scope, send, 413, str(exc), CLOSE)
            return
        except TooLarge as exc:
            self.counters.too_large += 1
            await self._refuse(scope, send, 413, str(exc))
            return
        except DecodeError as exc:
            self.counters.bad_request += 1
            await self._refuse(scope, send, 400, str(exc))
            return
        kept = self._keep_headers(scope["headers"])
        if kept is not None:
            event = NewEvent(
                event.source, event.dedup_key, event.event_type, event.order_key, event.payload,
                kept,
            )  # fmt: skip
        try:
            new = await self.inbox.append(event, self.routes(event.event_type))
        except StorageError as exc:
            self.counters.unavailable += 1
            key = printable(event.dedup_key)
            self._store_errors.error(
                "%s: could not store event %s: %s", self.name, key, exc,
                extra={"endpoint": self.name, "outcome": "unavailable", "dedup_key": key},
            )  # fmt: skip
            await self._answer(send, 503, "could not store the event; retry later")
            return
        if new:
            self.counters.stored += 1
            self.metrics.stored(event.event_type)
        else:
            self.counters.duplicate += 1
        echoed = None
        if source.echo_headers:
            echoed = [(n, headers[n]) for n in source.echo_headers if n in headers]
        if echoed:
            await send(_start(200, (b"content-length", b"0"), *echoed))
        else:
            await send(_OK)
        await send(_BODY_EMPTY)
        latency = time.perf_counter() - started
        self.metrics.ack.observe(latency)
        if request_log.isEnabledFor(logging.INFO):
            self._log_stored(scope, event, "stored" if new else "duplicate", latency)

    def _log_stored(self, scope: Scope, event: NewEvent, outcome: str, latency: float) -> None:
        client = scope.get("client")
        fields = {
            "endpoint": self.name,
            "outcome": outcome,
            "dedup_key": printable(event.dedup_key),
            "event_type": printable(event.event_type),
            "call_id": printable(event.order_key) if event.order_key else None,
            "latency_ms": round(latency * 1000, 3),
            "client": client[0] if client else None,
        }
        request_log.info(
            "%s: %s event %s (%s) in %.1f ms",
            self.name, outcome, fields["dedup_key"], fields["event_type"], latency * 1000,
            extra=fields,
        )  # fmt: skip

    async def _decode_aside(
        self, method: str, headers: Headers, query: bytes, body: bytes
    ) -> NewEvent:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            _decoder(), self.source.decode, method, headers, query, body
        )

    async def _read_body(self, headers: dict[bytes, bytes], receive: Receive) -> bytes:
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise _TooLarge
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if len(body) > self.max_body:
                raise _TooLarge
            return body
        chunks = [body]
        size = len(body)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _refuse(
        self, scope: Scope, send: Send, status: int, reason: str, *extra: tuple[bytes, bytes]
    ) -> None:
        self._log_refusal(scope, status, reason)
        await self._answer(send, status, reason, *extra)

    def _log_refusal(self, scope: Scope, status: int, reason: str) -> None:
        client = scope.get("client")
        address = client[0] if client else "?"
        extra = {
            "endpoint": self.name,
            "outcome": _OUTCOMES.get(status, "refused"),
            "status": status,
            "client": address,
        }
        self._refusal_logs[status].warning(
            "%s: refused a request from %s with %d: %s",
            self.name, address, status, printable(reason),
            extra=extra,
        )  # fmt: skip

    async def _answer(
        self, send: Send, status: int, text: str, *extra: tuple[bytes, bytes]
    ) -> None:
        start, body = _reason(status, text, *extra)
        await send(start)
        await send(body)

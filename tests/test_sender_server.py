"""A plain TLS HTTP/1.1 server that records raw requests, for the sender and scenario tests.

It is deliberately not the receiver: the sender is checked against what arrives on the wire,
byte for byte. Each request is answered by `answer(recorded)`: a status, a redirect, or a stall
that holds the connection open without answering (to make the sender time out).
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import trustme

__all__ = ["Action", "Recorded", "RecordingServer", "Redirect", "Stall", "arrival_gaps", "scripted"]


@dataclass(frozen=True)
class Stall:
    """Hold the request unanswered for `seconds`, then drop the connection."""

    seconds: float


@dataclass(frozen=True)
class Redirect:
    """Answer with `status` and a Location header."""

    location: str
    status: int = 302


Action = int | Stall | Redirect


@dataclass(frozen=True)
class Recorded:
    """One request as it arrived."""

    raw: bytes
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    arrived: float
    """time.monotonic() when the whole request had arrived."""
    connection: int
    """Which TCP connection carried it (1 for the first accepted)."""

    def header(self, name: str) -> str | None:
        """The value of header `name` (any casing), or None."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def scripted(*actions: Action, then: Action = 200) -> Callable[[Recorded], Action]:
    """Answer the n-th request with `actions[n]`, and every later one with `then`."""
    lock = threading.Lock()
    queue = list(actions)

    def answer(_: Recorded) -> Action:
        with lock:
            return queue.pop(0) if queue else then

    return answer


def arrival_gaps(requests: list[Recorded]) -> list[float]:
    """Seconds between the arrivals of consecutive requests."""
    return [b.arrived - a.arrived for a, b in itertools.pairwise(requests)]


_REASONS = {200: "OK", 302: "Found", 401: "Unauthorized", 500: "Internal Server Error"}


@dataclass
class RecordingServer:
    """Serve TLS on 127.0.0.1 at an ephemeral port with `cert` until the `with` block ends."""

    cert: trustme.LeafCert
    answer: Callable[[Recorded], Action] = field(default_factory=scripted)
    requests: list[Recorded] = field(default_factory=list)
    handshake_failures: int = 0

    def __post_init__(self) -> None:
        self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.cert.configure_cert(self._ctx)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return self._port

    def url(self, path: str = "/webhook/") -> str:
        """An https URL on this server."""
        return f"https://127.0.0.1:{self.port}{path}"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Recorded]:
        """Block until `count` requests have arrived (or `timeout`), then return them all."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)

    def __enter__(self) -> Self:
        self._spawn(self._accept_loop)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):  # already closed by the peer
                    sock.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._listener.close()

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        connections = 0
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            connections += 1
            with self._lock:
                self._sockets.append(sock)
            self._spawn(self._serve, sock, connections)

    def _serve(self, sock: socket.socket, connection: int) -> None:
        sock.settimeout(10)
        try:
            tls = self._ctx.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError):
            with self._lock:
                self.handshake_failures += 1
            sock.close()
            return
        with tls:
            buffer = b""
            while not self._stop.is_set():
                request, buffer = _read_request(tls, buffer, connection)
                if request is None:
                    return
                with self._changed:
                    self.requests.append(request)
                    self._changed.notify_all()
                action = self.answer(request)
                if isinstance(action, Stall):
                    self._stop.wait(action.seconds)
                    return
                tls.sendall(_response(action))


def _response(action: int | Redirect) -> bytes:
    status = action.status if isinstance(action, Redirect) else action
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", "Content-Length: 0"]
    if isinstance(action, Redirect):
        lines.append(f"Location: {action.location}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_request(
    tls: ssl.SSLSocket, buffer: bytes, connection: int
) -> tuple[Recorded | None, bytes]:
    """Read one request from `tls`; None at end of stream."""
    while b"\r\n\r\n" not in buffer:
        chunk = _recv(tls)
        if not chunk:
            return None, b""
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = [
        (name, value.strip()) for name, _, value in (line.partition(":") for line in header_lines)
    ]
    length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
    while len(rest) < length:
        chunk = _recv(tls)
        if not chunk:
            return None, b""
        rest += chunk
    body, buffer = rest[:length], rest[length:]
    method, target, _ = request_line.split(" ", 2)
    raw = head + b"\r\n\r\n" + body
    return Recorded(raw, method, target, headers, body, time.monotonic(), connection), buffer


def _recv(tls: ssl.SSLSocket) -> bytes:
    try:
        return tls.recv(65536)
    except (OSError, ssl.SSLError):
        return b""

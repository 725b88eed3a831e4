"""A local stand-in for an SMS gateway, for the demo and the tests: nothing leaves the machine.

It serves the API `HttpSmsGateway` speaks, on a loopback port, and keeps what it was sent:

- `POST /messages` with `Authorization: Bearer TOKEN`, a JSON body `{"to", "from", "text"}`
  and an `Idempotency-Key`: 201 and `{"id"}` for a new message; 200 and the same id for a key
  it has seen (no second message); 401 for a wrong token; 422 for a body without `to`/`text`.
- `GET /messages` (same token): `{"messages": [...], "requests": N}`, every POST counted.

`hold_first` keeps the first POST's answer back that many seconds after the message is
recorded, as a gateway that took the message and then went quiet: what a test needs to kill
the receiver mid-send.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Message", "StandInGateway"]

MAX_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class Message:
    """One SMS the stand-in took."""

    id: str
    to: str
    sender: str
    text: str
    key: str | None
    received_at: float


class StandInGateway:
    """The stand-in on `127.0.0.1` and a free port; `start`, then `url`, `messages`, `stop`."""

    def __init__(self, token: str, *, hold_first: float = 0.0) -> None:
        self.token = token
        self.hold_first = hold_first
        self.requests = 0
        self._messages: list[Message] = []
        self._by_key: dict[str, Message] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def messages(self) -> list[Message]:
        """Every message taken, in order (a repeated key is not a new message)."""
        with self._lock:
            return list(self._messages)

    def start(self) -> StandInGateway:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StandInGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def take(self, body: dict[str, Any], key: str | None) -> tuple[int, Message, bool]:
        """Record a POST; (status, message, whether to hold the answer back)."""
        with self._lock:
            self.requests += 1
            first = self.requests == 1
            if key is not None and key in self._by_key:
                return 200, self._by_key[key], False
            message = Message(
                id=f"msg_{len(self._messages) + 1:04d}",
                to=str(body["to"]),
                sender=str(body.get("from", "")),
                text=str(body["text"]),
                key=key,
                received_at=time.time(),
            )
            self._messages.append(message)
            if key is not None:
                self._by_key[key] = message
            return 201, message, first and self.hold_first > 0

    def authorized(self, header: str | None) -> bool:
        """Whether `header` is `Bearer TOKEN`."""
        return hmac.compare_digest((header or "").encode(), f"Bearer {self.token}".encode())


def _make_handler(gateway: StandInGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests read `messages`, not a log."""

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if not gateway.authorized(self.headers.get("Authorization")):
                return self._answer(401, {"error": "bad token"})
            if self.path != "/messages":
                return self._answer(404, {"error": "not found"})
            messages = [asdict(m) for m in gateway.messages]
            return self._answer(200, {"messages": messages, "requests": gateway.requests})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(min(length, MAX_BODY))
            if not gateway.authorized(self.headers.get("Authorization")):
                return self._answer(401, {"error": "bad token"})
            if self.path != "/messages":
                return self._answer(404, {"error": "not found"})
            try:
                body = json.loads(raw)
                if not (isinstance(body, dict) and body.get("to") and body.get("text")):
                    raise ValueError("to and text are required")
            except ValueError as exc:
                return self._answer(422, {"error": str(exc)})
            status, message, hold = gateway.take(body, self.headers.get("Idempotency-Key"))
            if hold:
                time.sleep(gateway.hold_first)
            try:
                return self._answer(status, {"id": message.id})
            except (BrokenPipeError, ConnectionResetError):
                return None  # the client gave up, or died, while it waited

    return Handler

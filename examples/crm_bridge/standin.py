"""A stand-in for the CRM's REST API on a loopback port, for the demo and the test.

It does what the bridge relies on a real CRM to do: `POST /activities` creates an activity
(201) unless one was made with the same `Idempotency-Key` (then 200 and that one), and
answers 401 to a wrong API key and 422 to an activity without a type; `GET /activities` lists
them. It can be told to answer the next requests with 429 (with `Retry-After`) or 503, or to
make the activity and lose the answer (a 503 after the commit), as a real CRM does on a bad
day.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["Answer", "StandInCrm"]


@dataclass(frozen=True, slots=True)
class Answer:
    """A scripted answer: `status`, with `Retry-After: retry_after` when given; with
    `commit`, the activity is made first (the client never hears of it)."""

    status: int
    retry_after: int | None = None
    commit: bool = False


class StandInCrm:
    """The CRM API on `127.0.0.1` and a free port (`url`), checking `api_key`."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.activities: list[dict[str, Any]] = []
        """Every activity made, in order, each with its `id`."""
        self.answers: list[tuple[str | None, int, float]] = []
        """(Idempotency-Key, status, `time.monotonic()` on arrival) of every POST, in order."""
        self._by_key: dict[str, dict[str, Any]] = {}
        self._script: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer_next(self, *answers: Answer) -> None:
        """Answer the next POSTs with `answers`, in order, before answering normally again."""
        with self._lock:
            self._script.extend(answers)

    def start(self) -> StandInCrm:
        """Start serving (on a thread of this process)."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and free the port."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StandInCrm:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _authorized(self, header: str | None) -> bool:
        expected = f"Bearer {self.api_key}".encode()
        return hmac.compare_digest((header or "").encode(), expected)

    def _create(self, key: str | None, body: bytes) -> tuple[int, dict[str, Any], int | None]:
        """(status, answer body, Retry-After) of a POST of `body` with `key`."""
        arrived = time.monotonic()
        try:
            activity = json.loads(body)
        except ValueError:
            return 400, {"error": "the body is not JSON"}, None
        if not isinstance(activity, dict) or not activity.get("type"):
            return 422, {"error": "an activity needs a type"}, None
        with self._lock:
            scripted = self._script.popleft() if self._script else None
            if scripted is None or scripted.commit:
                status, found = self._make(key, activity)
            if scripted is not None:
                self.answers.append((key, scripted.status, arrived))
                return (
                    scripted.status,
                    {"error": HTTPStatus(scripted.status).phrase},
                    scripted.retry_after,
                )
            self.answers.append((key, status, arrived))
            return status, found, None

    def _make(self, key: str | None, activity: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """(200, the activity `key` made) or (201, a new one); under the lock."""
        if key is not None and key in self._by_key:
            return 200, self._by_key[key]
        made = {"id": len(self.activities) + 1, **activity}
        self.activities.append(made)
        if key is not None:
            self._by_key[key] = made
        return 201, made

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        crm = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not crm._authorized(self.headers.get("Authorization")):
                    self._send(401, {"error": "invalid API key"})
                elif self.path != "/activities":
                    self._send(404, {"error": "no such resource"})
                else:
                    self._send(*crm._create(self.headers.get("Idempotency-Key"), body))

            def do_GET(self) -> None:
                if not crm._authorized(self.headers.get("Authorization")):
                    self._send(401, {"error": "invalid API key"})
                elif self.path != "/activities":
                    self._send(404, {"error": "no such resource"})
                else:
                    with crm._lock:
                        self._send(200, {"activities": list(crm.activities)})

            def _send(self, status: int, body: Any, retry_after: int | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if retry_after is not None:
                    self.send_header("Retry-After", str(retry_after))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the demo prints its own summary."""

        return Handler

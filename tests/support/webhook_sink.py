"""An integrator's webhook service for forwarding subscribers: HTTPS on an ephemeral loopback
port, every request checked with the `standardwebhooks` library (401 when the signature does
not verify), every request recorded, and scripted answers for chosen events.

It runs on uvicorn in a thread of the test process, so it outlives the receivers the test
kills and restarts.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.types import Receive, Scope, Send

from receiver.certs import DevCertificates

__all__ = ["Answer", "Received", "WebhookSink"]


@dataclass(frozen=True, slots=True)
class Answer:
    """What the sink answers to one request."""

    status: int = 204
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the sink received it."""

    at: float
    """Unix time it arrived."""
    path: str
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes
    verified: bool
    """Whether `Webhook(secret).verify` accepted it."""
    status: int
    """What the sink answered."""
    payload: Any = field(default=None, compare=False)

    @property
    def webhook_id(self) -> str:
        """The `webhook-id` header."""
        return self.headers.get("webhook-id", "")

    @property
    def attempt(self) -> int:
        """The `webhook-attempt` header as a number (0 when missing)."""
        value = self.headers.get("webhook-attempt", "0")
        return int(value) if value.isdigit() else 0

    @property
    def event_id(self) -> str:
        """The body's Enreach `Id`, lower case."""
        value = self.payload.get("Id") if isinstance(self.payload, dict) else None
        return str(value).lower() if value is not None else ""

    @property
    def call_id(self) -> str | None:
        """The body's `CallId`, if any."""
        value = self.payload.get("CallId") if isinstance(self.payload, dict) else None
        return str(value) if value is not None else None


class WebhookSink:
    """A Standard Webhooks receiver that accepts `secret`, served with `certs`.

    Answers `default` unless a script (`script`) matches the request's body.
    """

    def __init__(self, secret: str, certs: DevCertificates, *, path: str = "/hooks") -> None:
        self.webhook = Webhook(secret)
        self.certs = certs
        self.path = path
        self.default = Answer()
        self.received: list[Received] = []
        self._scripts: list[tuple[bytes, deque[Answer]]] = []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.port: int = self._sock.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where a forwarding subscriber posts to."""
        return f"https://127.0.0.1:{self.port}{self.path}"

    def script(self, marker: str, *answers: Answer) -> None:
        """Answer the requests whose body contains `marker` with `answers` in turn (then
        `default`)."""
        with self._lock:
            self._scripts.append((marker.encode(), deque(answers)))

    def _answer_for(self, body: bytes) -> Answer:
        with self._lock:
            for marker, answers in self._scripts:
                if marker in body and answers:
                    return answers.popleft()
        return self.default

    def verified(self) -> list[Received]:
        """The requests whose signature verified, in arrival order."""
        return [r for r in list(self.received) if r.verified]

    def matching(self, marker: str) -> list[Received]:
        """The requests whose body contains `marker`, in arrival order."""
        return [r for r in list(self.received) if marker.encode() in r.body]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        at = time.time()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            self.webhook.verify(body, headers)
            verified = True
        except WebhookVerificationError:
            verified = False
        answer = self._answer_for(body) if verified else Answer(401, body=b"bad signature")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            payload = None
        self.received.append(
            Received(at, scope["path"], headers, body, verified, answer.status, payload)
        )
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(b"content-length", str(len(answer.body)).encode())]
                + [(k.encode(), v.encode()) for k, v in answer.headers],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})

    def start(self) -> None:
        """Serve in a thread; return once it accepts connections."""
        config = uvicorn.Config(
            self,
            log_config=None,
            lifespan="off",
            loop="asyncio",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=2,
            ssl_certfile=str(self.certs.cert),
            ssl_keyfile=str(self.certs.key),
        )
        self._server = server = uvicorn.Server(config)
        self._thread = thread = threading.Thread(
            target=asyncio.run, args=(server.serve(sockets=[self._sock]),), name="webhook-sink"
        )
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the webhook sink did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving and close the port."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
        self._sock.close()

    def __enter__(self) -> WebhookSink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

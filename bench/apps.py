"""The servers the acknowledgement benchmark compares, on the same engine and TLS settings.

    python -m bench.apps bare|naive --engine uvicorn|hypercorn --port P --cert C --key K

`bare` answers 200 with an empty body and does nothing else: the ceiling of the stack.
`naive` is what a user would write by hand: a Starlette route that checks the token,
parses the JSON and commits each event to SQLite before answering, with the file in WAL
mode (the one setting such a user is likely to know); `naive-default` is the same on
Python's sqlite3 defaults (rollback journal).
`Noop` is a handler that does nothing, for measuring this receiver's own cost.
"""

from __future__ import annotations

import argparse
import hmac
import os
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from receiver.config import Settings
from receiver.engines import load_engine
from receiver.inbox.models import StoredEvent
from receiver.server import run_loop
from receiver.tls import ServerTLS

__all__ = ["LatencyRecorder", "Noop", "bare_app", "naive_app"]


class Noop:
    """A handler that accepts every event and does nothing."""

    async def handle(self, event: StoredEvent) -> None:
        """Do nothing."""

    async def failed(self, event: StoredEvent, error: BaseException, *, final: bool) -> None:
        """Do nothing."""


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """200, empty body, nothing else (lifespan accepted)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]}
    )
    await send({"type": "http.response.body", "body": b""})


def naive_app(db_path: Path, secret: str, *, wal: bool = True) -> Starlette:
    """One INSERT and COMMIT per request on the event loop, then 200."""
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    if wal:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, type TEXT, body BLOB, at REAL)"
    )
    expected = secret.encode()

    async def receive_event(request: Request) -> Response:
        if not hmac.compare_digest(request.headers.get("x-benemen-token", "").encode(), expected):
            return Response(status_code=401)
        body = await request.body()
        data = orjson.loads(body)
        conn.execute(
            "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?)",
            (data.get("Id"), data.get("EventType"), body, time.time()),
        )
        return Response(status_code=200)

    return Starlette(routes=[Route("/enreach", receive_event, methods=["POST"])])


def main() -> None:
    """Serve one of the comparison apps."""
    parser = argparse.ArgumentParser()
    parser.add_argument("app", choices=["bare", "naive", "naive-default"])
    parser.add_argument("--engine", default="uvicorn")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--db", type=Path, default=Path("naive.db"))
    args = parser.parse_args()
    app: Any = bare_app
    if args.app.startswith("naive"):
        app = naive_app(args.db, os.environ["RECEIVER_ENREACH_SECRET"], wal=args.app == "naive")
    settings = Settings(log_level="warning")
    tls = ServerTLS(args.cert, args.key)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(2048)
    sock.setblocking(False)
    run_loop(load_engine(args.engine)(app, tls, sock, settings))


if __name__ == "__main__":
    main()


class LatencyRecorder:
    """A no-op handler that records receive-to-handler latency, for bench/dispatch.py.

    Every 2,000 events it appends their latencies (ms) to $BENCH_LATENCY_FILE.
    """

    def __init__(self) -> None:
        self.path = Path(os.environ["BENCH_LATENCY_FILE"])
        self.samples: list[float] = []

    async def handle(self, event: StoredEvent) -> None:
        """Note how long ago the event was stored."""
        self.samples.append((time.time() - event.received_at) * 1000)
        if len(self.samples) >= 2000:
            with self.path.open("a") as out:
                out.write("\n".join(f"{s:.3f}" for s in self.samples) + "\n")
            self.samples.clear()

    async def failed(self, event: StoredEvent, error: BaseException, *, final: bool) -> None:
        """Not expected."""

"""A service on the other side of a forwarding subscriber, as small as it can be.

The receiver POSTs each event to it signed as Standard Webhooks; it verifies the signature
with the `standardwebhooks` library (`pip install standardwebhooks`), handles each event
once, and answers at once. Run it from the repository's folder, with the secret the
subscriber signs with:

    CRM_SIGNING_SECRET=whsec_... python -m examples.forward_service.app --port 8081

What it answers, and what the receiver then does (docs/subscribers.md):

- 204 for an event it verified: done (also for a repeat it has seen: done, not handled again);
- 401 when the signature does not verify: a dead letter at once, to replay once the secrets
  agree;
- 404 for another path: a dead letter at once (the URL in the config is wrong).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = ["EventService", "main"]

MAX_BODY = 2 * 1024 * 1024
"""Largest body read; the receiver forwards events of at most its --max-body (1 MiB)."""


class EventService:
    """What the service does with a verified event: here, print it, once per webhook-id."""

    def __init__(self, secret: str) -> None:
        self.webhook = Webhook(secret)
        # Delivery is at least once: an event comes again when an answer was lost or it is
        # replayed. Keep the ids you have handled where your data is (a unique key in your
        # database), not in memory as here.
        self.seen: set[str] = set()
        self.lock = threading.Lock()

    def verify(self, body: bytes, headers: dict[str, str]) -> Any:
        """The event, if `headers` sign `body` (raises `WebhookVerificationError` if not)."""
        # The raw bytes, as received: parsing and re-encoding the JSON would break the signature.
        return self.webhook.verify(body, headers)

    def first_time(self, webhook_id: str) -> bool:
        """Whether the event with `webhook_id` is new here (and now seen)."""
        with self.lock:
            if webhook_id in self.seen:
                return False
            self.seen.add(webhook_id)
            return True

    def handle(self, event: Any, headers: dict[str, str]) -> None:
        """Do the work for a new event (here: one line on stdout)."""
        print(
            f"service: {headers.get('webhook-event-type')} {headers.get('webhook-id')} "
            f"from {headers.get('webhook-source')}, attempt {headers.get('webhook-attempt')}, "
            f"call {event.get('CallId') if isinstance(event, dict) else None}",
            flush=True,
        )


def make_handler(service: EventService, path: str) -> type[BaseHTTPRequestHandler]:
    """The request handler class of `service`, taking POSTs to `path`."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the receiver reuses its connections

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.close_connection = True  # the body stays unread
                return self.answer(413, "too large")
            body = self.rfile.read(length)
            if self.path != path:
                return self.answer(404, "no such path")
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                event = service.verify(body, headers)
            except (WebhookVerificationError, ValueError) as exc:
                return self.answer(401, f"signature does not verify: {exc}")
            if service.first_time(headers["webhook-id"]):
                service.handle(event, headers)
            # Answer quickly; work that takes long belongs in a queue of your own, after the
            # answer (the receiver retries an answer that takes longer than its timeout).
            return self.answer(204)

        def answer(self, status: int, reason: str = "") -> None:
            body = reason.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per event from `handle` is enough here

    return Handler


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--path", default="/events")
    parser.add_argument(
        "--secret-env", default="CRM_SIGNING_SECRET", help="the variable holding the secret"
    )
    args = parser.parse_args(argv)
    secret = os.environ.get(args.secret_env, "").strip()
    if not secret:
        print(f"set {args.secret_env} to the subscriber's whsec_ secret", file=sys.stderr)
        return 2
    service = EventService(secret)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(service, args.path))
    # A clean exit on SIGTERM as on Ctrl-C: `kill` then `wait` reports 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    print(f"service: listening on http://{args.host}:{args.port}{args.path}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

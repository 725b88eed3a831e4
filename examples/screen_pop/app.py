"""The page service: takes forwarded allocations, looks the caller up, pushes to agents' pages.

`POST /events` is the receiver's forwarding subscriber (`receiver.toml`): each request's
Standard Webhooks signature is verified, the body decoded into its typed Enreach event
(`handlers.enreach.decode`), the caller looked up in the customer directory, and the call put
on the board of the agent it was allocated to. `GET /agents/{user_id}` is that agent's page;
`GET /agents/{user_id}/events` its Server-Sent Events stream (the agent's calls at once, then
on every change). Templates escape everything; the page runs one static script under a strict
Content-Security-Policy. Callers' numbers are shown in full on the page, masked in the log.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import jinja2
from sse_starlette import EventSourceResponse, ServerSentEvent
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from examples.screen_pop.board import Board, Pop, View
from examples.screen_pop.customers import CustomerDirectory
from handlers.enreach import QueueCallInUserAllocated, UserCallInUserAllocated, decode
from receiver import DecodeError
from receiver.redaction import redact_phone_numbers

__all__ = ["SECURITY_HEADERS", "create_app"]

log = logging.getLogger("screen_pop")

HERE = Path(__file__).resolve().parent
MAX_BODY = 2 * 1024 * 1024
"""Largest body read; the receiver forwards events of at most its --max-body (1 MiB)."""
RECONNECT_MS = 1000
"""How soon a page's EventSource reconnects after losing the stream."""

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
"""Sent with every answer: no inline script or style runs, nothing loads from elsewhere."""


class _SecurityHeaders:
    """Adds `SECURITY_HEADERS` to every response (pages, static files, the stream)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [
                    (name.encode(), value.encode())
                    for name, value in SECURITY_HEADERS.items()
                    if name.encode() not in names
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(signing_secret: str, customers: CustomerDirectory, board: Board) -> Starlette:
    """The page service's ASGI app, verifying forwarded events with `signing_secret`."""
    webhook = Webhook(signing_secret)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value, in every template, is escaped
        undefined=jinja2.StrictUndefined,
    )
    templates = Jinja2Templates(env=env)
    board_template = env.get_template("_board.html")

    async def receive_event(request: Request) -> Response:
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return PlainTextResponse("too large", 413)
        body = await request.body()
        headers = {name.lower(): value for name, value in request.headers.items()}
        try:
            payload = webhook.verify(body, headers)
        except (WebhookVerificationError, ValueError) as exc:
            return PlainTextResponse(f"signature does not verify: {exc}", 401)
        try:
            event = decode(payload, body, headers.get("webhook-event-type"))
        except DecodeError as exc:  # no retry can fix it: a dead letter at once
            return PlainTextResponse(f"not an Enreach event: {exc}", 422)
        if not isinstance(event, QueueCallInUserAllocated | UserCallInUserAllocated):
            return Response(status_code=204)  # receiver.toml forwards only these two
        if event.user_id is None:
            return PlainTextResponse(f"{event.event_type} without UserId: no agent to show", 422)
        number = event.caller_number or ""
        customer = await customers.lookup(number) if number else None
        queue = event.queue_name if isinstance(event, QueueCallInUserAllocated) else None
        call_id = str(event.call_id or event.id or headers.get("webhook-id", "?"))
        pop = Pop(call_id, number, queue, customer, datetime.now(UTC))
        board.post(event.user_id, event.user_name, pop)
        log.info(
            "%s: call %s from %s to agent %s, %s",
            event.event_type, call_id, redact_phone_numbers(number) or "a withheld number",
            event.user_id, f"customer {customer.id}" if customer else "unknown caller",
        )  # fmt: skip
        return Response(status_code=204)

    async def agent_page(request: Request) -> Response:
        agent_id: uuid.UUID = request.path_params["agent_id"]
        return templates.TemplateResponse(request, "agent.html", {"view": board.view(agent_id)})

    async def agent_stream(request: Request) -> Response:
        agent_id: uuid.UUID = request.path_params["agent_id"]

        async def views() -> AsyncIterator[ServerSentEvent]:
            # The whole current view on every (re)connect and change: a page that was away
            # catches up at once, so Last-Event-ID needs no replay log.
            async for view in board.watch(agent_id):
                yield _event(view, board_template)

        return EventSourceResponse(views(), ping=15)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[
            Route("/events", receive_event, methods=["POST"]),
            Route("/agents/{agent_id:uuid}", agent_page, name="agent"),
            Route("/agents/{agent_id:uuid}/events", agent_stream, name="stream"),
            Route("/healthz", healthz),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]
    )
    app.add_middleware(_SecurityHeaders)
    return app


def _event(view: View, template: jinja2.Template) -> ServerSentEvent:
    """The stream's message for `view`: the board's HTML, rendered (and escaped) here."""
    return ServerSentEvent(
        data=template.render(view=view),
        event="board",
        id=str(view.version),
        retry=RECONNECT_MS,
    )

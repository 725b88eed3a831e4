"""The admin console: server-rendered pages of the inbox's events, dead letters and counts.

| path | what |
|---|---|
| `/`, `/events` | the last hour's events (or `since`/`until`), filtered; counts by type, state |
| `/events/{id}` | one event: fields, payload, headers, each subscriber's attempts; buttons |
| `/dead` | dead letters, filtered; replay or discard one, or all that match |
| `/live/...` | the parts of those pages, as JSON, for `static/console.js` to refresh them |
| `/login`, `/logout` | a session cookie for a browser, when a token is configured |

Pages are Jinja2 templates (autoescaped) with one CSS and one small script file, no build
step; the script polls the `/live/` twin of its page every second or two and swaps the parts
that changed. Every form POSTs a CSRF token bound to the session cookie, and a POST from
another origin is refused. What a page shows is masked by `console_views.Masker`: secrets
always, phone numbers and e-mail addresses unless an event's page is asked (`?unmask=1`).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from receiver import __version__
from receiver.admin.auth import SESSION_COOKIE
from receiver.admin.console_actions import Actions, done_message
from receiver.admin.console_query import Query, QueryError
from receiver.admin.console_views import (
    STATE_LABELS,
    Counts,
    EventRow,
    Masker,
    Page,
    delivery_views,
    event_rows,
    payload_fields,
    payload_text,
    utc,
)
from receiver.admin.context import AdminContext
from receiver.exceptions import StorageError
from receiver.inbox.base import InboxAdmin
from receiver.inbox.models import EventFilter, EventRecord, State, StoredEvent

__all__ = ["LIST_LIMIT", "Console", "console_routes"]

log = logging.getLogger("receiver.admin")

HERE = Path(__file__).parent
LIST_LIMIT = 200
"""Deliveries a list page shows at most (an `Older` link pages back)."""
Handler = Callable[[Request], Awaitable[Response]]


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["version"] = __version__
    env.globals["states"] = STATE_LABELS
    return env


def _enreach_glossary() -> dict[str, str]:
    """Enreach's property descriptions by lower-case name, for an event's fields."""
    from receiver.catalogs import enreach

    about: dict[str, str] = {}
    for prop in enreach.COMMON_PROPERTIES:
        about.setdefault(prop.name.lower(), prop.description)
    for event in enreach.EVENTS:
        for prop in event.properties:
            about.setdefault(prop.name.lower(), prop.description)
    return about


class Console:
    """The console's handlers over one process's `AdminContext`."""

    def __init__(self, ctx: AdminContext) -> None:
        from receiver.runtime import secret_texts

        self.ctx = ctx
        self.env = _environment()
        self.secrets = secret_texts(ctx.settings)
        self.kinds = {e.name: e.kind for e in ctx.settings.endpoints}
        self.subscribers = sorted(
            {s.name for e in ctx.settings.endpoints for s in e.subscriber_configs}
        )
        self._glossary: dict[str, str] | None = None

    # -- frame ------------------------------------------------------------------------

    def session(self, request: Request) -> str | None:
        """The request's session cookie, if any."""
        return request.cookies.get(SESSION_COOKIE)

    def page(self, request: Request, nav: str) -> Page:
        """The frame of a page under tab `nav`."""
        auth = self.ctx.auth
        return Page(nav, auth.csrf_token(self.session(request)), auth.required)

    def render(self, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        """Template `name` with `values`, as an HTML response."""
        return HTMLResponse(self.env.get_template(name).render(**values), status_code=status)

    def part(self, name: str, **values: Any) -> str:
        """Template `name` (a part of a page) as text."""
        return self.env.get_template(name).render(**values)

    def error(self, request: Request, status: int, message: str) -> HTMLResponse:
        """A page that says what went wrong (masked)."""
        return self.render(
            "error.html",
            status,
            page=self.page(request, ""),
            code=status,
            message=Masker(self.secrets)(message),
        )

    def _mask(self, reveal: bool = False) -> Masker:
        return Masker(self.secrets, reveal=reveal)

    def _form_values(self) -> dict[str, Any]:
        return {"endpoints": list(self.kinds), "subscribers": self.subscribers}

    # -- reading the inbox ------------------------------------------------------------

    async def read(self, work: Callable[[InboxAdmin], Any]) -> Any:
        """`work(admin)` on the inbox's admin thread (`AdminContext.inbox`)."""
        return await self.ctx.inbox(work)

    @staticmethod
    def _resolve_call(admin: InboxAdmin, query: Query) -> str:
        """The order key `query.call` is stored as (the first form any event has)."""
        keys = query.call_keys()
        if len(keys) == 1:
            return keys[0]
        for key in keys:
            if admin.list(EventFilter(order_key=key), limit=1):
                return key
        return keys[0]

    def _listing(
        self, query: Query, states: tuple[State, ...]
    ) -> Callable[[InboxAdmin], tuple[str, list[StoredEvent], dict[tuple[str, str], int]]]:
        """The work that lists (and counts) what `query` matches, on the admin thread."""
        now = time.time()

        def work(admin: InboxAdmin) -> tuple[str, list[StoredEvent], dict[tuple[str, str], int]]:
            call = self._resolve_call(admin, query)
            where = query.to_filter(now=now, states=states, order_key=call)
            listed = admin.list(where, limit=LIST_LIMIT)
            return call, listed, admin.counts(where)

        return work

    # -- the events list --------------------------------------------------------------

    def _events_query(self, request: Request) -> Query:
        return Query.from_params(request.query_params, since="1h")

    async def _events_parts(self, query: Query) -> dict[str, Any]:
        query.to_filter()  # QueryError before the inbox is asked
        call, listed, tally = await self.read(self._listing(query, ()))
        rows = event_rows(listed, self._mask(), oldest_first=bool(query.call))
        return {
            "query": query,
            "call": call,
            "rows": rows,
            "counts": Counts.of(tally),
            "full": len(listed) >= LIST_LIMIT,
            "older": _older_link(query, "/events", rows),
            "now": utc(time.time()),
        }

    async def events(self, request: Request) -> Response:
        """The events page: filters, counts, and the matching deliveries grouped by event."""
        query = self._events_query(request)
        try:
            values = await self._events_parts(query)
        except QueryError as exc:
            return self._events_refused(request, query, str(exc))
        return self.render(
            "events.html",
            page=self.page(request, "events"),
            live=query.link("/live/events"),
            **values,
            **self._form_values(),
        )

    def _events_refused(self, request: Request, query: Query, problem: str) -> Response:
        return self.render(
            "events.html",
            400,
            page=self.page(request, "events"),
            live="",
            problem=problem,
            query=query,
            call="",
            rows=[],
            counts=Counts.of({}),
            full=False,
            older="",
            now=utc(time.time()),
            **self._form_values(),
        )

    async def events_live(self, request: Request) -> Response:
        """The events page's changing parts."""
        try:
            values = await self._events_parts(self._events_query(request))
        except QueryError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(
            {
                "parts": {
                    "counts": self.part("_counts.html", **values),
                    "rows": self.part("_rows.html", **values),
                }
            }
        )

    # -- dead letters -----------------------------------------------------------------

    async def _dead_parts(self, request: Request, query: Query) -> dict[str, Any]:
        query.to_filter()
        call, listed, tally = await self.read(self._listing(query, (State.DEAD,)))
        rows = event_rows(listed, self._mask(), oldest_first=bool(query.call))
        return {
            "query": query,
            "call": call,
            "rows": rows,
            "dead": sum(tally.values()),
            "full": len(listed) >= LIST_LIMIT,
            "older": _older_link(query, "/dead", rows),
            "page": self.page(request, "dead"),
            "back": query.link("/dead"),
        }

    async def dead(self, request: Request) -> Response:
        """Dead letters, with buttons to replay or discard one or all that match."""
        query = Query.from_params(request.query_params)
        try:
            values = await self._dead_parts(request, query)
        except QueryError as exc:
            values = {"query": query, "call": "", "rows": [], "dead": 0, "full": False}
            values |= {"older": "", "page": self.page(request, "dead"), "back": "/dead"}
            return self.render(
                "dead.html", 400, problem=str(exc), live="", **values, **self._form_values()
            )
        done = done_message(request)
        return self.render(
            "dead.html",
            live=query.link("/live/dead"),
            done=done,
            **values,
            **self._form_values(),
        )

    async def dead_live(self, request: Request) -> Response:
        """The dead letters page's changing part."""
        query = Query.from_params(request.query_params)
        try:
            values = await self._dead_parts(request, query)
        except QueryError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"parts": {"dead": self.part("_dead.html", **values)}})

    # -- one event --------------------------------------------------------------------

    async def _record(self, event_id: str) -> EventRecord | None:
        record: EventRecord | None = await self.read(lambda admin: admin.get(event_id))
        return record

    def _about(self, record: EventRecord) -> dict[str, str]:
        if self.kinds.get(record.source) != "enreach":
            return {}
        if self._glossary is None:
            self._glossary = _enreach_glossary()
        return self._glossary

    def _event_values(self, request: Request, record: EventRecord) -> dict[str, Any]:
        reveal = request.query_params.get("unmask") == "1"
        mask = self._mask(reveal)
        here = f"/events/{record.id}" + ("?unmask=1" if reveal else "")
        return {
            "record": record,
            "event_id": str(record.id),
            "received": utc(record.received_at),
            "deliveries": delivery_views(record, mask),
            "fields": payload_fields(record.payload, mask, self._about(record)),
            "payload": payload_text(record.payload, mask),
            "headers": [(name, mask(value)) for name, value in record.headers],
            "reveal": reveal,
            "dedup_key": mask(record.dedup_key),
            "page": self.page(request, "events"),
            "back": here,
            "call_link": Query(call=record.order_key or "").link("/events", since="24h"),
            "call_shown": mask(record.order_key),
        }

    async def event(self, request: Request) -> Response:
        """One event: its fields, payload, headers and each subscriber's attempts."""
        event_id = request.path_params["event_id"]
        record = await self._record(event_id)
        if record is None:
            return self.error(request, 404, f"there is no event {event_id[:80]} in the inbox")
        values = self._event_values(request, record)
        if values["reveal"]:
            log.info(
                "console: phone numbers and e-mail addresses of event %s shown to %s",
                record.id,
                request.client.host if request.client else "?",
            )
        return self.render(
            "event.html",
            live=f"/live/events/{record.id}" + ("?unmask=1" if values["reveal"] else ""),
            done=done_message(request),
            **values,
        )

    async def event_live(self, request: Request) -> Response:
        """An event page's deliveries (their states change)."""
        record = await self._record(request.path_params["event_id"])
        if record is None:
            return JSONResponse({"error": "no such event"}, status_code=404)
        values = self._event_values(request, record)
        return JSONResponse({"parts": {"deliveries": self.part("_deliveries.html", **values)}})


def _older_link(query: Query, path: str, rows: list[EventRow]) -> str:
    """The same page, received before the oldest row shown (and at that very time: one
    shown again rather than one skipped that arrived in the same microsecond)."""
    if not rows:
        return ""
    oldest = min(r.received_at for r in rows) + 1e-6
    return query.link(path, until=dt.datetime.fromtimestamp(oldest, dt.UTC).isoformat())


def _guarded(console: Console, handler: Handler) -> Handler:
    """`handler`, with an inbox that fails or does not answer shown as a 503 page."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except StorageError as exc:
            log.warning("console: the inbox failed: %s", exc)
            if request.url.path.startswith("/live/"):
                return JSONResponse({"error": "the inbox did not answer"}, status_code=503)
            return console.error(request, 503, f"the inbox did not answer: {exc}")

    return run


def console_routes(ctx: AdminContext) -> list[BaseRoute]:
    """The console's routes."""
    console = Console(ctx)
    actions = Actions(console)

    def route(path: str, handler: Handler, methods: list[str]) -> Route:
        return Route(path, _guarded(console, handler), methods=methods)

    return [
        route("/", console.events, ["GET"]),
        route("/events", console.events, ["GET"]),
        route("/events/{event_id}", console.event, ["GET"]),
        route("/events/{event_id}/{action:str}", actions.event_action, ["POST"]),
        route("/dead", console.dead, ["GET"]),
        route("/dead/{action:str}", actions.dead_action, ["POST"]),
        route("/live/events", console.events_live, ["GET"]),
        route("/live/events/{event_id}", console.event_live, ["GET"]),
        route("/live/dead", console.dead_live, ["GET"]),
        route("/login", actions.login, ["GET", "POST"]),
        route("/logout", actions.logout, ["POST"]),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]

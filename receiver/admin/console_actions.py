"""The console's forms: replaying and discarding dead letters, signing in and out.

Every POST is checked the same way (`Actions.checked_form`): it must come from the console's
own pages, as the browser says (`Sec-Fetch-Site`, `Origin`), carry the CSRF token made for
the session cookie it comes with, and be a small URL-encoded form. The form is parsed here
rather than by Starlette, which needs `python-multipart` even for URL-encoded forms.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from receiver.admin.auth import SESSION_COOKIE, SESSION_SECONDS
from receiver.admin.console_query import Query, QueryError, local_path
from receiver.admin.console_views import Page
from receiver.inbox.models import EventFilter, State
from receiver.logs import printable

if TYPE_CHECKING:
    from receiver.admin.console import Console

__all__ = ["DONE", "MAX_FORM", "SESSION_HOURS", "Actions", "done_message"]

log = logging.getLogger("receiver.admin")

MAX_FORM = 64 * 1024
"""Bytes a form POST may have; the console's forms send a few hundred."""
SESSION_HOURS = SESSION_SECONDS // 3600
"""How long a browser keeps the session cookie."""
DONE = {
    "replay": "Replayed {n} delivery(ies): pending again, picked up within a second.",
    "discard": "Discarded {n} dead letter(s).",
}
"""What a page says after an action, by the action named in its `done` parameter."""


class Actions:
    """The console's POST handlers."""

    def __init__(self, console: Console) -> None:
        self.console = console

    async def checked_form(self, request: Request) -> dict[str, str] | Response:
        """The POSTed form, or the refusal: another origin, no or a wrong CSRF token."""
        if not _same_origin(request):
            return self.console.error(request, 403, "refused: this form was sent from another site")
        kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            return self.console.error(
                request, 415, "a form is expected (application/x-www-form-urlencoded)"
            )
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM:
                return self.console.error(request, 413, "the form is too large")
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if not self.console.ctx.auth.csrf_matches(self.console.session(request), form.get("csrf")):
            return self.console.error(
                request,
                403,
                "refused: the form's CSRF token is missing or out of date; reload the page "
                "and try again",
            )
        return form

    async def event_action(self, request: Request) -> Response:
        """Replay or discard an event's dead deliveries (of one subscriber if the form says)."""
        action: str = request.path_params["action"]
        if action not in DONE:
            return self.console.error(request, 404, "no such action")
        form = await self.checked_form(request)
        if isinstance(form, Response):
            return form
        event_id: str = request.path_params["event_id"]
        subscriber = form.get("subscriber") or None
        n = await self._act(action, EventFilter(subscriber=subscriber), [event_id])
        log.info(
            "console: %s of event %s (%s): %d delivery(ies), asked from %s",
            action,
            printable(event_id, 80),
            printable(subscriber or "every subscriber", 80),
            n,
            _client(request),
        )
        return _redirect_done(local_path(form.get("back"), f"/events/{event_id}"), action, n)

    async def dead_action(self, request: Request) -> Response:
        """Replay or discard every dead letter the form's filters match."""
        action: str = request.path_params["action"]
        if action not in DONE:
            return self.console.error(request, 404, "no such action")
        form = await self.checked_form(request)
        if isinstance(form, Response):
            return form
        query = Query.from_params(form)
        try:
            where = query.to_filter(states=(State.DEAD,))
        except QueryError as exc:
            return self.console.error(request, 400, str(exc))
        n = await self._act(action, where, None)
        log.info(
            "console: %s of every dead letter matching %s: %d, asked from %s",
            action,
            printable(urlencode(query.params()) or "(no filter)", 400),
            n,
            _client(request),
        )
        return _redirect_done(local_path(form.get("back"), "/dead"), action, n)

    async def _act(self, action: str, where: EventFilter, ids: list[str] | None) -> int:
        if action == "replay":
            replayed: int = await self.console.read(lambda admin: admin.replay(where, ids=ids))
            return replayed
        discarded: int = await self.console.read(lambda admin: admin.discard(where, ids=ids))
        return discarded

    async def login(self, request: Request) -> Response:
        """The sign-in form (GET) and its answer (POST): a session cookie for a valid token."""
        auth = self.console.ctx.auth
        target = local_path(request.query_params.get("next"), "/events")
        if not auth.required:
            return RedirectResponse(target, status_code=303)
        if request.method == "GET":
            if auth.session_matches(self.console.session(request)):
                return RedirectResponse(target, status_code=303)
            return self._login_form(request, target)
        form = await self.checked_form(request)
        if isinstance(form, Response):
            return form
        target = local_path(form.get("next"), "/events")
        token = form.get("token", "").strip()
        if not token or not auth.token_matches(token):
            log.warning("console: a sign-in with a wrong token from %s", _client(request))
            return self._login_form(request, target, wrong=True)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            auth.session_for(token),
            max_age=SESSION_SECONDS,
            path="/",
            secure=True,
            httponly=True,
            samesite="strict",
        )
        return response

    def _login_form(self, request: Request, target: str, *, wrong: bool = False) -> Response:
        page = Page("login", self.console.ctx.auth.csrf_token(self.console.session(request)), False)
        return self.console.render(
            "login.html", 401 if wrong else 200, page=page, target=target, wrong=wrong, live=""
        )

    async def logout(self, request: Request) -> Response:
        """Forget the session cookie (POST with the CSRF token)."""
        form = await self.checked_form(request)
        if isinstance(form, Response):
            return form
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True)
        return response


def _same_origin(request: Request) -> bool:
    """Whether a POST may come from the console's own pages, by what the browser says of it.

    Browsers send `Sec-Fetch-Site` (pages cannot forge it); under `Referrer-Policy:
    no-referrer` they send `Origin: null` for a form, so `null` passes only with
    `Sec-Fetch-Site: same-origin`. A client that sends neither (curl) relies on the CSRF token.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return site == "same-origin"
    return origin == f"{request.url.scheme}://{request.headers.get('host', '')}"


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _redirect_done(target: str, action: str, n: int) -> Response:
    """Back to `target`, saying what was done (as numbers: no text from the request)."""
    parts = urlsplit(target)
    params = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("done", "n")]
    params += [("done", action), ("n", str(n))]
    return RedirectResponse(f"{parts.path}?{urlencode(params)}", status_code=303)


def done_message(request: Request) -> str:
    """What the action named by `?done=...&n=...` did, or "" (numbers only: no text from the
    request reaches the page)."""
    template = DONE.get(request.query_params.get("done", ""))
    count = request.query_params.get("n", "")
    if template is None or not count.isdigit():
        return ""
    return template.format(n=int(count))

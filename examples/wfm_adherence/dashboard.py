"""The dashboard: each agent's current state and time in it, a timeline of the day, and the CSV.

A small Starlette app of its own, beside the receiver rather than inside it: it only reads the
SQLite file the handlers write (WAL mode lets it read while they write), so it can be
restarted, scaled or put behind single sign-on without touching webhook intake. Pages are
rendered on the server (HTML and inline SVG, no script); the page reloads itself every 30 s.

    python -m examples.wfm_adherence.dashboard     # settings from the environment (README)
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path

import uvicorn
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from examples.wfm_adherence.handlers import open_store, zone_from_env
from examples.wfm_adherence.report import AgentDay, day_bounds, day_report, export_csv
from examples.wfm_adherence.store import LOGGED_OUT, Store

__all__ = ["build_app", "color_of", "main", "serve"]

HERE = Path(__file__).parent
HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none';"
        " base-uri 'none'"
    ),
}
COLORS = {
    "AVAILABLE": "#2e9d5b",
    "LOGIN": "#9bd3ae",
    "TRANSITION": "#b5c4d1",
    "ENGAGED": "#2f6fd0",
    "TALKING": "#2f6fd0",
    "WORKING": "#7a5cc7",
    "ON BREAK": "#e0a526",
    "LUNCH": "#d9772b",
    "TRAINING": "#3aa7b8",
    "AWAY": "#c9513f",
    "BUSY": "#c9513f",
    "DO NOT DISTURB": "#a63d6b",
    LOGGED_OUT: "#9aa5b1",
}
_SPARE = ("#6d8b3a", "#8a6d3b", "#5b6f95", "#98506f", "#4f8f87", "#7d7d7d")


def color_of(state: str) -> str:
    """The chart colour of a state; a custom state gets a steady one of a spare palette."""
    spare = _SPARE[hashlib.sha256(state.encode()).digest()[0] % len(_SPARE)]
    return COLORS.get(state, spare)


def _clock(seconds: float) -> str:
    whole = max(int(seconds), 0)
    days, rest = divmod(whole, 86_400)
    text = f"{rest // 3600}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days} d {text}" if days else text


def build_app(store: Store, zone: tzinfo, clock: Callable[[], float] = time.time) -> Starlette:
    """The dashboard over `store`, with days in `zone`."""
    templates = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(), cache_size=0
    )
    templates.filters.update(clock=_clock, color=color_of)
    templates.filters["at"] = lambda t: datetime.fromtimestamp(t, zone).strftime("%H:%M:%S")

    def chosen_day(request: Request) -> date:
        text = request.query_params.get("day")
        if not text:
            return datetime.fromtimestamp(clock(), zone).date()
        return date.fromisoformat(text)

    async def page(request: Request) -> Response:
        try:
            day = chosen_day(request)
        except ValueError:
            return PlainTextResponse("day must be YYYY-MM-DD\n", 400, headers=HEADERS)
        now = clock()
        agents = day_report(store, day, zone, now)
        low, high = day_bounds(day, zone)
        html = templates.get_template("dashboard.html").render(
            day=day,
            previous=day - timedelta(days=1),
            following=day + timedelta(days=1),
            zone=str(zone),
            now=now,
            agents=agents,
            legend=_legend(agents),
            now_x=(now - low) / (high - low) * 1440 if low <= now < high else None,
        )
        return HTMLResponse(html, headers=HEADERS)

    async def export(request: Request) -> Response:
        try:
            day = chosen_day(request)
        except ValueError:
            return PlainTextResponse("day must be YYYY-MM-DD\n", 400, headers=HEADERS)
        body = export_csv(day_report(store, day, zone, clock()), day)
        disposition = f'attachment; filename="adherence-{day.isoformat()}.csv"'
        headers = {**HEADERS, "content-disposition": disposition}
        return Response(body, media_type="text/csv; charset=utf-8", headers=headers)

    return Starlette(
        routes=[
            Route("/", page),
            Route("/export.csv", export),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]
    )


def _legend(agents: list[AgentDay]) -> list[str]:
    return sorted({segment.state for agent in agents for segment in agent.segments})


def serve(
    app: Starlette, sock: socket.socket, cert: Path, key: Path, seconds: float | None = None
) -> None:
    """Serve `app` over HTTPS on a bound socket until SIGINT or SIGTERM (or for `seconds`)."""
    config = uvicorn.Config(
        app, ssl_certfile=str(cert), ssl_keyfile=str(key), log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    if seconds is not None:
        timer = threading.Timer(seconds, lambda: setattr(server, "should_exit", True))
        timer.daemon = True
        timer.start()
    server.run(sockets=[sock])


def main() -> None:
    """Serve the dashboard as configured by the environment (see the README)."""
    host = os.environ.get("WFM_ADHERENCE_HOST", "127.0.0.1")
    port = int(os.environ.get("WFM_ADHERENCE_PORT", "8446"))
    cert = Path(os.environ.get("WFM_ADHERENCE_CERT", "certs/server.pem"))
    key = Path(os.environ.get("WFM_ADHERENCE_KEY", "certs/server-key.pem"))
    app = build_app(open_store(), zone_from_env("WFM_ADHERENCE_TIME_ZONE"))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    print(f"dashboard: https://{host}:{port}/", flush=True)
    serve(app, sock, cert, key)


if __name__ == "__main__":
    main()

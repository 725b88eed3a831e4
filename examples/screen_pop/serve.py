"""Run the page service over HTTPS: `python -m examples.screen_pop.serve [--port 8444]`.

Configured by environment variables (README.md lists them); the signing secret is the one the
receiver's `screen-pop` subscriber signs with, and is read from the environment only.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

import uvicorn

from examples.screen_pop.app import create_app
from examples.screen_pop.board import Board
from examples.screen_pop.customers import CustomerDirectory

__all__ = ["main", "page_server"]

DEFAULT_PORT = 8444


def page_server(
    signing_secret: str,
    customers: CustomerDirectory,
    board: Board,
    *,
    cert: Path,
    key: Path,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
) -> uvicorn.Server:
    """The page service on uvicorn with TLS (not yet serving: `await server.serve()`)."""
    config = uvicorn.Config(
        create_app(signing_secret, customers, board),
        host=host,
        port=port,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        access_log=False,  # one line per pop from the app is the log worth keeping
        server_header=False,
        timeout_graceful_shutdown=2,  # pages' streams end at once; the rest gets 2 s
        log_config=None,  # the process's logging (main's basicConfig), not uvicorn's own
    )
    return uvicorn.Server(config)


def _setting(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted (SIGINT or SIGTERM)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    secret = os.environ.get("SCREEN_POP_SIGNING_SECRET", "").strip()
    if not secret:
        print("set SCREEN_POP_SIGNING_SECRET to the screen-pop subscriber's whsec_ secret",
              file=sys.stderr)  # fmt: skip
        return 2
    cert = Path(_setting("SCREEN_POP_CERT", "certs/server.pem"))
    key = Path(_setting("SCREEN_POP_KEY", "certs/server-key.pem"))
    for path in (cert, key):
        if not path.is_file():
            print(f"no file {path}: `receiver certs` makes development certificates",
                  file=sys.stderr)  # fmt: skip
            return 2
    customers = CustomerDirectory(Path(_setting("SCREEN_POP_CUSTOMERS_DB", "screen-pop.db")))
    server = page_server(
        secret, customers, Board(), cert=cert, key=key, host=args.host, port=args.port
    )
    shown = f"[{args.host}]" if ":" in args.host else args.host
    logging.getLogger("screen_pop").info(
        "pages at https://%s:%d/agents/{user_id}; events at /events", shown, args.port
    )
    # uvicorn takes SIGINT and SIGTERM while it serves and raises them again once it has stopped
    # gracefully: let them find a handler then, so that the exit status is 0.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: None)
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m examples.screen_pop`: the receiver, the page service and three calls, locally.

On free loopback ports, with a throwaway CA and secrets: this process serves the agents'
pages; `receiver serve` runs as a child process with the committed `receiver.toml`; the mock
sender plays three calls as Enreach would. It prints what each agent's page shows (numbers
masked) and the pages' addresses, then serves them for `--for` seconds, or until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from examples.screen_pop.board import Board
from examples.screen_pop.customers import CustomerDirectory
from examples.screen_pop.flow import AGENTS, CALLS, call_flow, receiver_config
from examples.screen_pop.serve import page_server
from receiver.certs import write_dev_certificates
from receiver.redaction import redact_phone_numbers
from receiver.sender import EnreachWire, Sender
from receiver.testing import ReceiverProcess

__all__ = ["main"]

WAIT = 10.0
"""Seconds the demo waits for the receiver, and for the pops to arrive."""


def _signing_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


async def _until(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {WAIT:g} s")
        await asyncio.sleep(0.02)


def _summary(board: Board) -> list[str]:
    lines = []
    for agent, name in AGENTS.items():
        view = board.view(agent)
        lines.append(f"{name} ({agent}): {len(view.pops)} call(s) on the page")
        for pop in reversed(view.pops):
            who = (
                f"{pop.customer.name} ({pop.customer.company or 'private'})"
                if pop.customer
                else "unknown caller"
            )
            queue = pop.queue_name or "direct call"
            lines.append(f"  {redact_phone_numbers(pop.caller_number)} via {queue}: {who}")
    return lines


async def run(workdir: Path, seconds: float | None, port: int, stop: threading.Event) -> int:
    """The demo in `workdir`; 0 when every call popped on its agent's page."""
    certs = write_dev_certificates(workdir / "certs", ["localhost", "127.0.0.1", "::1"])
    signing, enreach_secret = _signing_secret(), secrets.token_urlsafe(24)
    board = Board()
    customers = CustomerDirectory(workdir / "customers.db")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    base = f"https://127.0.0.1:{sock.getsockname()[1]}"
    server = page_server(signing, customers, board, cert=certs.cert, key=certs.key)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    (workdir / "receiver").mkdir(exist_ok=True)
    config = workdir / "receiver.toml"
    config.write_text(receiver_config(f"{base}/events", certs.ca), encoding="utf-8")
    receiver = ReceiverProcess(
        workdir / "receiver",
        certs=certs,
        secret=enreach_secret,
        args=["--config", str(config)],
        env={"SCREEN_POP_SIGNING_SECRET": signing},
    )
    try:
        await _until(lambda: server.started or serving.done(), "the page service did not start")
        if not server.started:
            raise RuntimeError("the page service did not start (see its log above)")
        await asyncio.to_thread(receiver.start, timeout=WAIT)
        async with Sender(
            receiver.url("/enreach"), provider=EnreachWire(secret=enreach_secret), verify=certs.ca
        ) as sender:
            for call in CALLS:
                for payload in call_flow(call):
                    delivery = await sender.send(payload)
                    if not delivery.acknowledged:
                        raise RuntimeError(f"the receiver did not take an event: {delivery.error}")
        expected = {c.agent: len([d for d in CALLS if d.agent == c.agent]) for c in CALLS}
        await _until(
            lambda: all(len(board.view(a).pops) == n for a, n in expected.items()),
            "not every call popped on its agent's page",
        )
        print("\n".join(_summary(board)))
        print("Agents' pages (the browser must trust the demo's CA, or be told to go on):")
        for agent, name in AGENTS.items():
            print(f"  {base}/agents/{agent}  ({name})")
        print(f"  CA: {certs.ca}" if seconds is None else f"Serving for {seconds:g} s.", flush=True)
        deadline = time.monotonic() + (seconds if seconds is not None else float("inf"))
        # Flags set by a signal handler (ours, or uvicorn's while it serves): nothing to await.
        while not (stop.is_set() or server.should_exit) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        return 0
    finally:
        await asyncio.to_thread(receiver.close)
        board.close()
        server.should_exit = True
        await serving


def main(argv: list[str] | None = None) -> int:
    """Run the demo; exit 0 when every call popped on the page of the agent it went to."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--for", dest="seconds", type=float, metavar="SECONDS",
        help="serve the pages this long after the calls, then exit (default: until Ctrl-C)",
    )  # fmt: skip
    parser.add_argument("--port", type=int, default=0, help="the pages' port (default: any free)")
    parser.add_argument(
        "--workdir", type=Path, help="keep certificates, inbox and logs here (default: temporary)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("uvicorn.error", "httpx"):  # a line per start and per request: not the story
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # uvicorn takes these signals while it serves and raises them again once it has stopped:
    # then they only confirm the stop, instead of ending the process before it cleans up.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="screen-pop-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(run(workdir, args.seconds, args.port, stop))
    except (OSError, RuntimeError) as exc:  # TimeoutError is an OSError
        print(f"screen_pop demo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

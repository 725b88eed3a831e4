"""The pieces the demo and the test share: server.js's npm install, server.js as a child process
on a free port, the example's receiver.toml pointed at it, and the call flows sent.

Node.js (18 or later) and npm must be on PATH; `npm ci` installs the locked `standardwebhooks`
into this folder's node_modules/ (gitignored) the first time.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from receiver.scenarios import PlannedRequest, Summary, run_stream
from receiver.sender import EnreachWire, Sender

__all__ = [
    "HERE",
    "NodeService",
    "calls_handled",
    "calls_planned",
    "ensure_node_modules",
    "inbox",
    "new_signing_secret",
    "receiver_config",
    "send",
]

HERE = Path(__file__).resolve().parent
"""This folder: server.js, package.json, package-lock.json, receiver.toml."""
CONFIG_URL = "http://127.0.0.1:8082/events"
"""The `forward` URL in receiver.toml, replaced by the service's real one in a copy."""
NPM_TIMEOUT = 300.0
"""Seconds `npm ci` may take (it fetches three small packages)."""
_LISTENING = re.compile(r"node-service: listening on (http://\S+?)(?:,|\s|$)")


def new_signing_secret() -> str:
    """A fresh Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def ensure_node_modules(*, timeout: float = NPM_TIMEOUT) -> None:
    """Install the locked packages with `npm ci` unless node_modules/ has them (one process at a
    time: the lock is held on package-lock.json)."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} not found on PATH: install Node.js 18 or later and npm")
    with (HERE / "package-lock.json").open("rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (HERE / "node_modules" / "standardwebhooks" / "package.json").exists():
            return
        try:
            done = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"],
                cwd=HERE,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"npm ci in {HERE} took more than {timeout:g}s") from None
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise RuntimeError(f"npm ci in {HERE} failed: " + " / ".join(said))


def receiver_config(target: Path, url: str) -> Path:
    """A copy of receiver.toml at `target` whose subscriber forwards to `url`."""
    text = (HERE / "receiver.toml").read_text(encoding="utf-8")
    if text.count(f'"{CONFIG_URL}"') != 1:
        raise RuntimeError(f"receiver.toml no longer forwards to {CONFIG_URL}")
    target.write_text(text.replace(f'"{CONFIG_URL}"', json.dumps(url)), encoding="utf-8")
    return target


class NodeService:
    """`node server.js` as a child process on loopback, appending to `events`.

    It listens on `port`, or on a free one with 0; its output goes to `workdir/node.log`; `url`
    is known once `start` returns.
    """

    def __init__(self, workdir: Path, *, secret: str, events: Path, port: int = 0) -> None:
        self.workdir = workdir
        self.port = port
        self.secret = secret
        self.events = events
        self.log_path = workdir / "node.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, *, timeout: float = 20.0) -> None:
        """Start node and wait for its `listening on` line."""
        env = {
            **os.environ,
            "FORWARD_NODE_SECRET": self.secret,
            "FORWARD_NODE_EVENTS_FILE": str(self.events),
            "FORWARD_NODE_HOST": "127.0.0.1",
            "FORWARD_NODE_PORT": str(self.port),
        }
        logged = len(self.log)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                ["node", str(HERE / "server.js")],
                cwd=HERE,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = _LISTENING.search(self.log[logged:])
            if found:
                self.url = found.group(1)
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited with {self.proc.returncode}:\n{self.log}")
            time.sleep(0.05)
        raise TimeoutError(f"node not listening after {timeout:g}s:\n{self.log}")

    @property
    def log(self) -> str:
        """Everything node wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def records(self) -> list[dict[str, Any]]:
        """The events the service handled, in the order it handled them."""
        if not self.events.exists():
            return []
        # The last piece is empty, or a line node is still writing.
        lines = self.events.read_text(encoding="utf-8").split("\n")[:-1]
        return [json.loads(line) for line in lines if line.strip()]

    def wait_for_records(self, count: int, *, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The records once there are at least `count` (TimeoutError with the log if not)."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.records()
            if len(records) >= count:
                return records
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(records)} of {count} events reached node:\n{self.log}")
            time.sleep(0.1)

    def stop(self, *, timeout: float = 10.0) -> int:
        """SIGTERM and wait; node's exit status (killed if it does not exit in time)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def __enter__(self) -> NodeService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def send(url: str, ca: Path, token: str, stream: list[PlannedRequest]) -> Summary:
    """Send `stream` to the receiver's Enreach endpoint at `url` as Enreach would."""

    async def run() -> Summary:
        async with Sender(
            url, provider=EnreachWire(secret=token), verify=ca, retries=2, retry_delay=0.2
        ) as sender:
            return await run_stream(stream, sender, concurrency=4)

    return asyncio.run(run())


def inbox(path: Path, *args: str) -> Any:
    """`receiver inbox ARGS --json` on the inbox file at `path`: what an operator sees."""
    done = subprocess.run(
        [sys.executable, "-m", "receiver", "inbox", *args, "--inbox", str(path), "--json"],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"receiver inbox {' '.join(args)}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def calls_planned(stream: list[PlannedRequest]) -> dict[str, list[str]]:
    """CallId to the `Id`s of its events the receiver stores, in the order they are sent
    (a provider's retry and a request with a wrong token are not stored)."""
    calls: dict[str, list[str]] = {}
    for planned in stream:
        if not (planned.duplicate or planned.wrong_token):
            calls.setdefault(str(planned.payload.get("CallId")), []).append(planned.event_id)
    return calls


def calls_handled(records: list[dict[str, Any]]) -> dict[str, list[str]]:
    """CallId to the `Id`s of its events in the order the Node.js service handled them."""
    calls: dict[str, list[str]] = {}
    for record in records:
        event = record["event"]
        calls.setdefault(str(event.get("CallId")), []).append(str(event.get("Id")))
    return calls

"""The one-command demo: the receiver with this example's handlers, a morning of agent events,
then the dashboard over HTTPS until Ctrl-C (or for `--for SECONDS`).

    python -m examples.wfm_adherence [--for SECONDS] [--workdir DIR]

Everything runs on free loopback ports with throwaway certificates and secrets in a temporary
folder (or `--workdir`). The events: the known morning of `sample_day.demo_day` (two Engage
agents, two Enreach users, each in a state now), and three agents' days played by `receiver
scenario`'s Engage WFM `agent_day` flow, earlier today.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from examples.wfm_adherence.dashboard import build_app, serve
from examples.wfm_adherence.handlers import zone_from_env
from examples.wfm_adherence.report import day_report
from examples.wfm_adherence.sample_day import Planned, demo_day
from examples.wfm_adherence.store import LOGGED_OUT, Store
from receiver.scenarios import ScenarioOptions, build_stream, run_stream
from receiver.sender import EnreachWire, Sender, WfmWire, WireFormat
from receiver.testing import ReceiverProcess, throwaway_certificates

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PATHS = {"agents": "/engage/wfm/agents", "calls": "/engage/wfm/calls", "enreach": "/enreach"}


def _options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m examples.wfm_adherence", description=__doc__)
    parser.add_argument("--for", dest="seconds", type=float, help="serve this long, then exit")
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: a temp dir)")
    return parser.parse_args(argv)


async def _send(receiver: ReceiverProcess, ca: Path, wfm: str, enreach: str, now: datetime) -> int:
    """Send the known morning, then the scenario's agent days; how many were acknowledged."""
    wires: dict[str, WireFormat] = {
        "agents": WfmWire(credential=wfm),
        "calls": WfmWire(credential=wfm),
        "enreach": EnreachWire(secret=enreach),
    }
    acknowledged = 0
    senders = {
        name: Sender(receiver.url(path), provider=wires[name], verify=ca, retries=2)
        for name, path in PATHS.items()
    }
    try:
        planned: list[Planned] = demo_day(now)
        for event in planned:
            delivery = await senders[event.endpoint].send(event.payload)
            acknowledged += delivery.acknowledged
        stream = build_stream(
            ScenarioOptions(
                provider="engage_wfm",
                flows=("agent_day",),
                calls=3,
                seed=17,
                start=(now - timedelta(hours=5)).replace(tzinfo=None),
            )
        )
        scenario = Sender(
            receiver.url(PATHS["agents"]),
            provider=WfmWire(credential=wfm, call_url=receiver.url(PATHS["calls"])),
            verify=ca,
            retries=2,
        )
        async with scenario:
            summary = await run_stream(stream, scenario, concurrency=4)
        acknowledged += summary.acknowledged
    finally:
        for sender in senders.values():
            await sender.aclose()
    return acknowledged


def _wait_handled(inbox: Path, timeout: float = 60.0) -> dict[str, int]:
    """Poll `receiver inbox stats` until no delivery is pending or in progress."""
    deadline = time.monotonic() + timeout
    while True:
        shown = subprocess.run(
            [sys.executable, "-m", "receiver", "inbox", "stats", "--json", "--inbox", str(inbox)],
            capture_output=True,
            check=True,
        )
        states: dict[str, int] = orjson.loads(shown.stdout)["by_state"]
        if states["pending"] + states["in_progress"] == 0 or time.monotonic() > deadline:
            return states
        time.sleep(0.2)


def _print_summary(store: Store, now: float) -> None:
    zone = zone_from_env("WFM_ADHERENCE_TIME_ZONE")
    today = datetime.fromtimestamp(now, zone).date()
    for agent in day_report(store, today, zone, now):
        who = (agent.name or agent.agent).split("@")[0]
        if agent.state == LOGGED_OUT:
            where = "logged out"
        else:
            minutes = int(now - (agent.since or now)) // 60
            where = f"{agent.state} for {minutes} min"
        worked = sum(s for state, s in agent.seconds.items() if state != LOGGED_OUT) // 60
        print(f"  {who:<22} {where:<28} {worked:>4} min logged in today, {agent.calls} calls")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 when every event was acknowledged and handled."""
    options = _options(argv)
    with tempfile.TemporaryDirectory(prefix="wfm-adherence-") as temporary:
        workdir = options.workdir or Path(temporary)
        workdir.mkdir(parents=True, exist_ok=True)
        certs = throwaway_certificates(workdir / "certs")
        database = workdir / "adherence.db"
        wfm_secret = "Basic " + base64.b64encode(secrets.token_bytes(18)).decode()
        enreach_secret = secrets.token_urlsafe(24)
        os.environ["WFM_ADHERENCE_DB"] = str(database)
        env = {
            "WFM_ADHERENCE_DB": str(database),
            "RECEIVER_ENGAGE_WFM_SECRET": wfm_secret,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        receiver = ReceiverProcess(
            workdir,
            certs=certs,
            secret=enreach_secret,
            args=["--config", str(HERE / "receiver.toml")],
            env=env,
        )
        try:
            receiver.start()
            print(f"receiver: {receiver.base_url} (log: {receiver.log_path})", flush=True)
            now = datetime.now(UTC).replace(microsecond=0)
            sent = asyncio.run(_send(receiver, certs.ca, wfm_secret, enreach_secret, now))
            states = _wait_handled(receiver.inbox)
            print(f"sent {sent} events: {states['done']} handled, {states['dead']} dead letters")
            store = Store(database)
            _print_summary(store, time.time())
            app = build_app(store, zone_from_env("WFM_ADHERENCE_TIME_ZONE"))
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sock.listen(128)
            url = f"https://127.0.0.1:{sock.getsockname()[1]}/"
            print(f"dashboard: {url}  (CSV: {url}export.csv?day={now:%Y-%m-%d})")
            print(f"CA to trust: {certs.ca}; Ctrl-C to stop", flush=True)
            with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C
                serve(app, sock, certs.cert, certs.key, options.seconds)
        finally:
            receiver.close()
        return 0 if states["dead"] == 0 and states["pending"] + states["in_progress"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""How long a receiver takes to serve again after `kill -9` under load, with a large inbox.

Fills an inbox file with `--events` done events (or reuses `--inbox` if it has them), starts
the receiver on it pinned to core 0, loads it with wrk on core 1, kills it with SIGKILL in
the middle of the load, starts it again and times the first acknowledgement of a new event
(from the new process's start, and from the kill). Repeated `--runs` times; medians printed.

    python bench/restart.py --events 10000000 --inbox /var/tmp/bench-10m.db --runs 3
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import LUA, ROOT, ensure_wrk, free_port, new_token
from bench.growth import fill, receiver_command
from receiver.certs import write_dev_certificates


def first_ack(port: int, ca: Path, token: str, deadline: float) -> float:
    """Seconds until a new event is acknowledged (200) on `port`, polling every 10 ms."""
    started = time.monotonic()
    body = b'{"Id": "%s", "EventType": "QueueCallInUserAllocated"}'
    with httpx.Client(verify=str(ca), timeout=1.0) as client:
        while time.monotonic() < deadline:
            try:
                answer = client.post(
                    f"https://127.0.0.1:{port}/enreach",
                    content=body % os.urandom(8).hex().encode(),
                    headers={"X-Benemen-Token": token, "Content-Type": "application/json"},
                )
                if answer.status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.01)
    raise SystemExit("bench: the receiver did not acknowledge in time")


def start(command: list[str], token: str, log: Path) -> subprocess.Popen[bytes]:
    """`command` pinned to core 0, accepting `token`, its output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            ["taskset", "-c", "0", *command],
            cwd=ROOT,
            env={**os.environ, "RECEIVER_ENREACH_SECRET": token, "PYTHONPATH": str(ROOT)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def load(wrk: str, port: int, token: str, seconds: int) -> subprocess.Popen[bytes]:
    """wrk on core 1 against `port` for `seconds` (fresh random Ids)."""
    env = {**os.environ, "BENCH_TOKEN": token, "PACE_MS": "0",
           "BENCH_SEED": str(secrets.randbelow(2**31))}  # fmt: skip
    return subprocess.Popen(
        ["taskset", "-c", "1", wrk, "-t1", "-c32", f"-d{seconds}s", "--timeout", "2s",
         "-s", str(LUA), f"https://127.0.0.1:{port}/enreach"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--inbox", type=Path, help="inbox file to fill or reuse")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="bench-restart-") as tmp:
        work = Path(tmp)
        inbox = args.inbox or work / "inbox.db"
        fill(inbox, args.events)
        size = sum(p.stat().st_size for p in inbox.parent.glob(inbox.name + "*") if p.is_file())
        write_dev_certificates(work, ["localhost", "127.0.0.1"])
        token = new_token()
        ca = work / "ca.pem"
        from_start: list[float] = []
        from_kill: list[float] = []
        for run in range(args.runs):
            port = free_port()
            command = receiver_command(port, work, inbox)
            proc = start(command, token, work / "server.log")
            first_ack(port, ca, token, time.monotonic() + 120)
            loader = load(wrk, port, token, seconds=4)
            time.sleep(2)  # mid-load
            killed = time.monotonic()
            proc.send_signal(signal.SIGKILL)
            loader.terminate()  # the platform's retries are not part of the measure
            proc.wait()
            loader.wait()
            spawned = time.monotonic()
            proc = start(command, token, work / "server.log")
            try:
                took = first_ack(port, ca, token, spawned + 120)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
            from_start.append(took)
            from_kill.append(spawned - killed + took)
            print(
                f"  run {run + 1}: serving {took:.2f} s after the restart "
                f"({from_kill[-1]:.2f} s after the kill)",
                file=sys.stderr,
                flush=True,
            )
    print(
        f"\n`python bench/restart.py --events {args.events}`: {args.events:,} events "
        f"({size / 1e9:.1f} GB), kill -9 under load, median of {args.runs}: first "
        f"acknowledgement {statistics.median(from_start):.2f} s after the new process "
        f"started ({statistics.median(from_kill):.2f} s after the kill)"
    )


if __name__ == "__main__":
    main()

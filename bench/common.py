"""What the benchmarks share: pinned server processes, wrk runs, CPU accounting, medians."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "post.lua"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def ensure_wrk() -> str:
    """The wrk binary, installed from Debian if missing (root only)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit("bench: wrk is not installed; install it with apt-get install wrk")
    print("bench: installing wrk with apt-get", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
    return shutil.which("wrk") or sys.exit("bench: wrk did not install")


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, all threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Server:
    """A server process pinned to one core."""

    proc: subprocess.Popen[bytes]
    port: int
    ca: Path

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Until a TLS handshake succeeds."""
        context = ssl.create_default_context(cafile=str(self.ca))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                with (
                    socket.create_connection(("127.0.0.1", self.port), timeout=1) as raw,
                    context.wrap_socket(raw, server_hostname="localhost"),
                ):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("server did not come up")

    def stop(self) -> None:
        """SIGTERM, then wait (SIGKILL after 30 s)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(
    command: Sequence[str],
    port: int,
    ca: Path,
    env: dict[str, str],
    core: int,
    log: Path,
    *,
    root: Path = ROOT,
) -> Server:
    """Start `command` pinned to `core`, with the code in `root`, and wait until it answers
    TLS."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            ["taskset", "-c", str(core), *command],
            cwd=root,
            env={**os.environ, **env, "PYTHONPATH": str(root)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(proc, port, ca)
    server.wait_ready()
    return server


@dataclass
class Run:
    """One wrk run against one server."""

    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float
    errors: int


def wrk_run(
    wrk: str,
    server: Server,
    token: str,
    *,
    seconds: float,
    connections: int,
    core: int,
    pace_ms: float = 0.0,
) -> Run:
    """Load `server` with wrk on `core`; measure the server's CPU time across the run."""
    seed = str(secrets.randbelow(2**31))  # a fresh sequence of Ids for every run
    env = {**os.environ, "BENCH_TOKEN": token, "PACE_MS": str(pace_ms), "BENCH_SEED": seed}
    before = cpu_seconds(server.proc.pid)
    result = subprocess.run(
        [
            "taskset",
            "-c",
            str(core),
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            "-s",
            str(LUA),
            f"https://127.0.0.1:{server.port}/enreach",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    after = cpu_seconds(server.proc.pid)
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    values = dict(item.split("=") for item in line.split()[1:])
    requests = int(values["requests"])
    duration = int(values["duration_us"]) / 1e6
    return Run(
        rps=requests / duration,
        p50_ms=int(values["p50_us"]) / 1000,
        p99_ms=int(values["p99_us"]) / 1000,
        cpu_us=(after - before) * 1e6 / max(requests, 1),
        errors=int(values["errors"]),
    )


def paced_run(
    wrk: str,
    server: Server,
    token: str,
    *,
    rate: float,
    seconds: float,
    connections: int,
    core: int,
) -> Run:
    """A run at `rate` requests/s offered. Each connection waits between a response and its
    next request, so the wait is first calibrated (a 3 s run) to allow for the latency."""
    cycle_ms = connections * 1000 / rate  # each connection's time per request
    pace = cycle_ms
    for _ in range(2):
        trial = wrk_run(
            wrk, server, token, seconds=3, connections=connections, core=core, pace_ms=pace
        )
        latency_ms = connections * 1000 / max(trial.rps, 1.0) - pace
        pace = max(0.0, cycle_ms - latency_ms)
    return wrk_run(
        wrk, server, token, seconds=seconds, connections=connections, core=core, pace_ms=pace
    )


def median_run(runs: Sequence[Run]) -> Run:
    """The per-field medians of several runs."""
    return Run(
        rps=statistics.median(r.rps for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        cpu_us=statistics.median(r.cpu_us for r in runs),
        errors=sum(r.errors for r in runs),
    )


def new_token() -> str:
    """A random shared secret for one benchmark run."""
    return secrets.token_urlsafe(24)

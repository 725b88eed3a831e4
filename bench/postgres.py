"""Acknowledgements and dispatch on the PostgreSQL inbox, against the SQLite inbox in the same run.

    python bench/postgres.py [--seconds 6] [--runs 3] [--events 50000]

A real PostgreSQL (`tests/support/postgres.py`: loopback, SCRAM, `fsync` and
`synchronous_commit` on) and every receiver start once; the runs then alternate between them,
the order rotating each round, and the table gives medians. Receivers are pinned to core 0 and
wrk to core 1, 32 keep-alive TLS connections sending Enreach events with unique Ids. The
machine has two cores, so PostgreSQL shares one: `pinned` runs every PostgreSQL process on core
0 with the receiver (the receiver's CPU budget is the SQLite receiver's, PostgreSQL's work
included), `free` lets PostgreSQL use both cores (it then competes with wrk on core 1);
the affinity is switched between runs.

Configurations: the SQLite receiver (the baseline: dispatching to a no-op handler); one
receiver on PostgreSQL dispatching the same way; one `serve --no-dispatch`; two
`serve --no-dispatch` on one database, each loaded by its own wrk with half the connections
(total acks/s). Then each single receiver's p99 at half its maximum rate, and the dispatch
drain: `receiver worker` processes (no-op handler, unpinned, PostgreSQL unpinned) emptying a
backlog of --events events, from process start until the database shows every delivery done,
one worker on SQLite (the baseline), one and two on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench.common import (
    ROOT,
    Run,
    Server,
    cpu_seconds,
    ensure_wrk,
    free_port,
    median_run,
    new_token,
    paced_run,
    start_server,
    wrk_run,
)
from receiver.certs import write_dev_certificates
from receiver.inbox.base import InboxOptions
from receiver.inbox.models import NewEvent
from receiver.inbox.postgres import PostgresInbox
from receiver.inbox.sqlite import SqliteInbox
from tests.support.postgres import PostgresServer

SERVER_CORE, LOAD_CORE = 0, 1
ALL_CORES = set(range(os.cpu_count() or 1))
LOAD = os.getloadavg()  # the machine's, as this run starts
BODY = (ROOT / "tests/payloads/enreach/spec-example-request.json").read_bytes()
DONE = 2  # State.DONE, as stored by both backends


# -- PostgreSQL: its processes, their CPU and affinity, its counters ----------------------------


def pg_pids(postmaster: int) -> list[int]:
    """The postmaster and its children (backends, WAL writer, checkpointer, ...)."""
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
            pids.append(int(entry.name))
    return pids


def pg_cpu_seconds(postmaster: int) -> float:
    """CPU time of PostgreSQL's live processes, plus what its exited children used."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in pg_pids(postmaster):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
        if pid == postmaster:
            total += int(fields[13]) + int(fields[14])  # reaped children
    return total / ticks


def pin_postgres(postmaster: int, cores: set[int]) -> None:
    """Move every PostgreSQL process to `cores` (new backends inherit the postmaster's)."""
    for pid in pg_pids(postmaster):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(pid, cores)


def pg_counters(
    monitor: psycopg.Connection[tuple[object, ...]], dbs: Sequence[str]
) -> tuple[int, int]:
    """Transactions committed in `dbs` and WAL syncs of the whole server, as of the last flush
    of the statistics (backends flush them about once a second)."""
    row = monitor.execute(
        "SELECT (SELECT coalesce(sum(xact_commit), 0) FROM pg_stat_database"
        " WHERE datname = ANY(%s)), (SELECT wal_sync FROM pg_stat_wal)",
        (list(dbs),),
    ).fetchone()
    assert row is not None
    return int(str(row[0])), int(str(row[1]))


# -- the configurations -------------------------------------------------------------------------


@dataclass
class Config:
    """Servers loaded together in one run, and where PostgreSQL may run meanwhile."""

    name: str
    servers: list[Server]
    postgres: set[int] | None  # PostgreSQL's cores during the run; None: not involved
    databases: list[str]


@dataclass
class Sample:
    """One run of a configuration."""

    run: Run
    pg_cpu_us: float
    events_per_commit: float
    wal_syncs_per_1k: float
    others: float  # share of the machine's CPU (both cores) used by processes not in the run


def receiver_command(port: int, certs: Path, inbox: str, *, dispatch: bool) -> list[str]:
    """`receiver serve` on uvicorn, quiet, on `inbox`; a no-op handler when it dispatches."""
    command = [
        sys.executable,
        "-m",
        "receiver",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--cert",
        str(certs / "server.pem"),
        "--key",
        str(certs / "server-key.pem"),
        "--engine",
        "uvicorn",
        "--inbox",
        inbox,
        "--log-level",
        "warning",
    ]
    return [*command, "--handler", "bench.apps:Noop"] if dispatch else [*command, "--no-dispatch"]


def measure(
    wrk: str,
    config: Config,
    token: str,
    args: argparse.Namespace,
    pg: PostgresServer,
    monitor: psycopg.Connection[tuple[object, ...]],
) -> Sample:
    """One full-load run of `config`: its servers share the connections, one wrk each."""
    if config.postgres is not None:
        pin_postgres(pg.pid, config.postgres)
    commits, syncs = pg_counters(monitor, config.databases)
    pg_cpu = pg_cpu_seconds(pg.pid)
    ours = sum(cpu_seconds(s.proc.pid) for s in config.servers) + sum(os.times()[:4])
    busy, started = machine_busy_seconds(), time.monotonic()
    share = args.connections // len(config.servers)
    with ThreadPoolExecutor(len(config.servers)) as pool:
        runs = list(
            pool.map(
                lambda server: wrk_run(
                    wrk, server, token, seconds=args.seconds, connections=share, core=LOAD_CORE
                ),
                config.servers,
            )
        )
    pg_cpu = pg_cpu_seconds(pg.pid) - pg_cpu
    # wrk is a reaped child by now: os.times() counts it with this process.
    ours = sum(cpu_seconds(s.proc.pid) for s in config.servers) + sum(os.times()[:4]) - ours
    others = machine_busy_seconds() - busy - ours - pg_cpu
    others /= (time.monotonic() - started) * len(ALL_CORES)
    time.sleep(1.2)  # let the backends flush their statistics
    commits_after, syncs_after = pg_counters(monitor, config.databases)
    requests = sum(r.rps for r in runs) * args.seconds
    run = Run(
        rps=sum(r.rps for r in runs),
        p50_ms=max(r.p50_ms for r in runs),
        p99_ms=max(r.p99_ms for r in runs),
        cpu_us=sum(r.cpu_us * r.rps for r in runs) / max(sum(r.rps for r in runs), 1.0),
        errors=sum(r.errors for r in runs),
    )
    return Sample(
        run=run,
        pg_cpu_us=pg_cpu * 1e6 / max(requests, 1.0),
        events_per_commit=requests / max(commits_after - commits, 1),
        wal_syncs_per_1k=(syncs_after - syncs) * 1000 / max(requests, 1.0),
        others=max(others, 0.0),
    )


def machine_busy_seconds() -> float:
    """CPU time the whole machine's processes spent, all cores, from /proc/stat (interrupts
    left out: loopback traffic is partly charged there, to no process)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system = fields[:3]
    return (user + nice + system) / os.sysconf("SC_CLK_TCK")


def median_of(samples: Sequence[Sample], field: Callable[[Sample], float]) -> float:
    """The median of one field over `samples`."""
    return statistics.median(field(s) for s in samples)


# -- dispatch -----------------------------------------------------------------------------------


async def fill(inbox: SqliteInbox | PostgresInbox, events: int) -> None:
    """Store `events` pending events for the `default` subscriber, 997 calls."""
    await inbox.open()
    tag = new_token()[:8]
    for start in range(0, events, 5000):
        await asyncio.gather(
            *(
                inbox.append(
                    NewEvent(
                        "enreach", f"{tag}-{i}", "QueueCallInUserAllocated", f"c{i % 997}", BODY
                    )
                )
                for i in range(start, min(events, start + 5000))
            )
        )
    await inbox.close()


@dataclass
class Drain:
    """One drain of a backlog."""

    rate: float  # events/s from the workers' start until every delivery is done
    steady: float  # events/s from the first done delivery on
    first_s: float  # seconds from start to the first done delivery
    worker_cpu_us: float  # the workers' CPU per event
    pg_cpu_us: float  # PostgreSQL's CPU per event (0 for SQLite)


def drain(
    inbox: str, count_done: Callable[[], int], events: int, workers: int, log: Path, postmaster: int
) -> Drain:
    """Start `workers` `receiver worker` processes on a filled `inbox` and poll until every
    delivery is done."""
    command = [
        sys.executable,
        "-m",
        "receiver",
        "worker",
        "--inbox",
        inbox,
        "--handler",
        "bench.apps:Noop",
        "--log-level",
        "warning",
    ]
    procs: list[subprocess.Popen[bytes]] = []
    pg_cpu = pg_cpu_seconds(postmaster)
    started = time.perf_counter()
    first_at: float | None = None
    first_done = 0
    worker_cpu = 0.0
    try:
        with log.open("ab") as out:
            for _ in range(workers):
                procs.append(
                    subprocess.Popen(
                        command,
                        cwd=ROOT,
                        env={**os.environ, "PYTHONPATH": str(ROOT)},
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = started + max(120.0, events / 200)
        while True:
            done = count_done()
            now = time.perf_counter()
            if done and first_at is None:
                first_at, first_done = now, done
            if done >= events:
                break
            if now > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"drain stopped at {done} of {events}: see {log}")
            time.sleep(0.02)
        worker_cpu = sum(cpu_seconds(proc.pid) for proc in procs)
        pg_cpu = pg_cpu_seconds(postmaster) - pg_cpu
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert first_at is not None
    return Drain(
        rate=events / (now - started),
        steady=(events - first_done) / max(now - first_at, 1e-6),
        first_s=first_at - started,
        worker_cpu_us=worker_cpu * 1e6 / events,
        pg_cpu_us=pg_cpu * 1e6 / events if inbox.startswith("postgresql") else 0.0,
    )


def dispatch_rounds(
    args: argparse.Namespace, pg: PostgresServer, work: Path
) -> dict[str, list[Drain]]:
    """Alternating drains: one worker on SQLite, one and two on PostgreSQL."""
    pin_postgres(pg.pid, ALL_CORES)
    results: dict[str, list[Drain]] = {}
    for i in range(args.runs):
        for name in ("sqlite, 1 worker", "postgresql, 1 worker", "postgresql, 2 workers"):
            if name.startswith("sqlite"):
                path = work / f"drain-{i}.db"
                asyncio.run(fill(SqliteInbox(path), args.events))

                def sqlite_done(path: Path = path) -> int:
                    with sqlite3.connect(path, timeout=5) as conn:
                        row = conn.execute(
                            "SELECT count(*) FROM deliveries WHERE state = ?", (DONE,)
                        ).fetchone()
                    conn.close()
                    return int(row[0])

                result = drain(str(path), sqlite_done, args.events, 1, work / "drain.log", pg.pid)
                path.unlink()
            else:
                workers = 2 if name.endswith("workers") else 1
                db = f"drain_{i}_{workers}"
                pg.create_database(db)
                url = pg.url(db, password=False)
                asyncio.run(fill(PostgresInbox(url, InboxOptions()), args.events))
                with psycopg.connect(url, autocommit=True) as conn:

                    def pg_done(conn: psycopg.Connection[tuple[object, ...]] = conn) -> int:
                        row = conn.execute(
                            "SELECT count(*) FROM receiver_deliveries WHERE state = %s", (DONE,)
                        ).fetchone()
                        assert row is not None
                        return int(str(row[0]))

                    result = drain(url, pg_done, args.events, workers, work / "drain.log", pg.pid)
                pg.drop_database(db)
            print(
                f"  drain {i + 1}, {name}: {result.rate:,.0f} events/s from start, "
                f"{result.steady:,.0f}/s after the first ({result.first_s:.2f} s to it), "
                f"CPU {result.worker_cpu_us:.0f} + PostgreSQL {result.pg_cpu_us:.0f} µs/event",
                file=sys.stderr,
            )
            results.setdefault(name, []).append(result)
    return results


# -- the run ------------------------------------------------------------------------------------


def main() -> None:
    """Run the comparison and print a Markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--events", type=int, default=50_000, help="backlog per drain")
    args = parser.parse_args()
    logging.getLogger("receiver").setLevel(logging.ERROR)  # "migrated the inbox schema ..."
    wrk = ensure_wrk()
    token = new_token()
    servers: list[Server] = []
    pg = PostgresServer.launch()
    os.environ["PGPASSWORD"] = pg.password  # for this process's connections and its children
    try:
        with tempfile.TemporaryDirectory(prefix="bench-pg-") as tmp:
            work = Path(tmp)
            write_dev_certificates(work, ["localhost", "127.0.0.1"])
            env = {"RECEIVER_ENREACH_SECRET": token}

            def serve(inbox: str, *, dispatch: bool = True) -> Server:
                port = free_port()
                command = receiver_command(port, work, inbox, dispatch=dispatch)
                server = start_server(
                    command, port, work / "ca.pem", env, SERVER_CORE, work / "server.log"
                )
                servers.append(server)
                return server

            for db in ("one", "nodispatch", "two"):
                pg.create_database(db)
            sqlite = serve(str(work / "inbox.db"))
            one = serve(pg.url("one", password=False))
            nodispatch = serve(pg.url("nodispatch", password=False), dispatch=False)
            two = [serve(pg.url("two", password=False), dispatch=False) for _ in range(2)]
            pinned = {SERVER_CORE}
            configs = [
                Config("SQLite receiver", [sqlite], None, []),
                Config("PostgreSQL receiver, PostgreSQL pinned", [one], pinned, ["one"]),
                Config("PostgreSQL receiver, PostgreSQL free", [one], ALL_CORES, ["one"]),
                Config(
                    "PostgreSQL receiver `--no-dispatch`, pinned",
                    [nodispatch],
                    pinned,
                    ["nodispatch"],
                ),
                Config("2 PostgreSQL receivers `--no-dispatch`, pinned", two, pinned, ["two"]),
                Config("2 PostgreSQL receivers `--no-dispatch`, free", two, ALL_CORES, ["two"]),
            ]
            with psycopg.connect(pg.url(password=False), autocommit=True) as monitor:
                for server in servers:  # a fresh process is slower for its first seconds
                    wrk_run(wrk, server, token, seconds=2, connections=16, core=LOAD_CORE)
                samples: dict[str, list[Sample]] = {c.name: [] for c in configs}
                for i in range(args.runs):
                    shift = i % len(configs)
                    for config in configs[shift:] + configs[:shift]:
                        sample = measure(wrk, config, token, args, pg, monitor)
                        samples[config.name].append(sample)
                        print(
                            f"  round {i + 1} {config.name}: {sample.run.rps:8,.0f}/s "
                            f"p99 {sample.run.p99_ms:6.2f} ms  {sample.run.cpu_us:5.1f} µs/req "
                            f"+ PostgreSQL {sample.pg_cpu_us:5.1f}; others "
                            f"{sample.others:.0%} of the machine",
                            file=sys.stderr,
                        )
            halves: dict[str, list[Run]] = {c.name: [] for c in configs[:3]}
            for i in range(args.runs):
                for config in configs[:3]:
                    if config.postgres is not None:
                        pin_postgres(pg.pid, config.postgres)
                    full = median_of(samples[config.name], lambda s: s.run.rps)
                    half = paced_run(
                        wrk,
                        config.servers[0],
                        token,
                        rate=full / 2,
                        seconds=args.seconds,
                        connections=args.connections,
                        core=LOAD_CORE,
                    )
                    halves[config.name].append(half)
                    print(
                        f"  half rate {i + 1} {config.name}: {half.rps:8,.0f}/s "
                        f"p50 {half.p50_ms:6.2f} ms p99 {half.p99_ms:6.2f} ms",
                        file=sys.stderr,
                    )
            for server in servers:
                server.stop()
            servers.clear()
            log = (work / "server.log").read_text(errors="replace")
            if "Traceback" in log:
                print(log, file=sys.stderr)
            drains = dispatch_rounds(args, pg, work)
    finally:
        for server in servers:
            server.stop()
        pg.close()
    report(args, configs, samples, halves, drains)


def report(
    args: argparse.Namespace,
    configs: Sequence[Config],
    samples: dict[str, list[Sample]],
    halves: dict[str, list[Run]],
    drains: dict[str, list[Drain]],
) -> None:
    """Print the Markdown report."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    base = configs[0].name
    print(f"\n### PostgreSQL inbox, {now}\n")
    print(
        f"`python bench/postgres.py --seconds {args.seconds:g} --runs {args.runs} --events "
        f"{args.events}` on {platform.node()} ({platform.machine()}, Python "
        f"{platform.python_version()}); receivers (uvicorn) pinned to core {SERVER_CORE}, wrk "
        f"to core {LOAD_CORE}, {args.connections} keep-alive TLS connections in all, medians "
        f"of {args.runs} alternating runs of {args.seconds:g} s; PostgreSQL "
        f"with fsync and synchronous_commit on, on loopback, *pinned* to core "
        f"{SERVER_CORE} or *free* on both cores.\n"
    )
    print(
        "| configuration | acks/s | p50 ms | p99 ms | receiver CPU µs/req "
        "| PostgreSQL CPU µs/req | events/commit | WAL syncs/1k acks | / SQLite | errors "
        "| others' CPU |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratios: dict[str, list[float]] = {}
    for config in configs:
        mine = samples[config.name]
        ratios[config.name] = [
            s.run.rps / b.run.rps for s, b in zip(mine, samples[base], strict=True)
        ]
        pg_cols = (
            f"{median_of(mine, lambda s: s.pg_cpu_us):.0f} | "
            f"{median_of(mine, lambda s: s.events_per_commit):.1f} | "
            f"{median_of(mine, lambda s: s.wal_syncs_per_1k):.0f}"
            if config.postgres is not None
            else "n/a | n/a | n/a"
        )
        print(
            f"| {config.name} | {median_of(mine, lambda s: s.run.rps):,.0f} | "
            f"{median_of(mine, lambda s: s.run.p50_ms):.2f} | "
            f"{median_of(mine, lambda s: s.run.p99_ms):.2f} | "
            f"{median_of(mine, lambda s: s.run.cpu_us):.0f} | {pg_cols} | "
            f"{statistics.median(ratios[config.name]):.2f} | "
            f"{sum(s.run.errors for s in mine)} | {median_of(mine, lambda s: s.others):.0%} |"
        )
    print(
        "\n(events/commit: acks over the transactions committed in the configuration's "
        "databases, heartbeats and dispatch included; PostgreSQL CPU: all its processes; "
        "others' CPU: what processes outside the run used of the machine's two cores meanwhile, "
        f"from /proc/stat; load average {LOAD[0]:.1f} at the start, {os.getloadavg()[0]:.1f} "
        "at the end.)\n"
    )
    for config in configs[1:3]:
        per_round = ", ".join(f"{r:.2f}" for r in ratios[config.name])
        print(
            f"- {config.name} / SQLite receiver: {statistics.median(ratios[config.name]):.2f} "
            f"(per round {per_round}; target ≥ 0.8)"
        )
    one = statistics.median(s.run.rps for s in samples[configs[3].name])
    for config in configs[4:]:
        total = statistics.median(s.run.rps for s in samples[config.name])
        print(f"- {config.name}: {total:,.0f} acks/s in total, {total / one:.2f} times one")
    for name, runs in halves.items():
        full = median_of(samples[name], lambda s: s.run.rps)
        half = median_run(runs)
        p99s = ", ".join(f"{r.p99_ms:.1f}" for r in runs)
        print(
            f"- {name} at half its maximum rate ({full / 2:,.0f}/s offered, {half.rps:,.0f}/s "
            f"acknowledged): p50 {half.p50_ms:.2f} ms, p99 {half.p99_ms:.2f} ms (runs: "
            f"{p99s} ms; target for PostgreSQL: p99 ≤ 10 ms)"
        )
    print(
        f"\nDispatch: `receiver worker` processes with a no-op handler draining {args.events:,} "
        f"pending events (997 calls), unpinned, PostgreSQL free; from process start until "
        f"the database shows every delivery done (polled every 20 ms); medians of "
        f"{args.runs} alternating drains.\n"
    )
    print(
        "| inbox, workers | events/s from start | events/s after the first done "
        "| s to the first done | worker CPU µs/event | PostgreSQL CPU µs/event | / SQLite |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    sqlite_rate = statistics.median(d.rate for d in drains["sqlite, 1 worker"])
    for name, results in drains.items():
        rate = statistics.median(d.rate for d in results)
        print(
            f"| {name} | {rate:,.0f} | {statistics.median(d.steady for d in results):,.0f} | "
            f"{statistics.median(d.first_s for d in results):.2f} | "
            f"{statistics.median(d.worker_cpu_us for d in results):.0f} | "
            f"{statistics.median(d.pg_cpu_us for d in results):.0f} | "
            f"{rate / sqlite_rate:.2f} |"
        )


if __name__ == "__main__":
    main()

"""Does acknowledging slow down or use more memory as the inbox grows?

    python bench/growth.py [--events 1000000] [--seconds 10] [--inbox FILE]   # growth
    python bench/growth.py --memory [--events 1000000] [--rate 8000]

Growth: acks/s and p99 against an empty inbox and against one already holding --events
done events (written directly, as if received over the past days), the runs alternating
between the two receivers; and the inbox's size on disk per million events.
Memory: one receiver takes --events events at a steady --rate; its resident memory is
sampled at every 100,000 stored events.
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    Run,
    Server,
    ensure_wrk,
    free_port,
    median_run,
    new_token,
    rss_mb,
    start_server,
    wrk_run,
)
from receiver.certs import write_dev_certificates
from receiver.inbox.models import NewEvent, State
from receiver.inbox.sqlite import INSERT, INSERT_DELIVERY, connect, insert_params

BODY = (
    Path(__file__).parent.parent / "tests/payloads/enreach/spec-example-request.json"
).read_bytes()


def prefill(path: Path, events: int) -> None:
    """Write `events` done events straight into an inbox file."""
    conn = connect(path, synchronous="NORMAL")
    now = time.time()
    batch = 20_000
    for start in range(0, events, batch):
        rows = [
            insert_params(
                NewEvent("enreach", str(uuid.uuid4()), "QueueCallInUserAllocated",
                         str(uuid.uuid4()), BODY),
                now,
            )
            for _ in range(min(batch, events - start))
        ]  # fmt: skip
        conn.execute("BEGIN")
        conn.executemany(INSERT, rows)
        first = conn.execute("SELECT max(id) FROM events").fetchone()[0] - len(rows) + 1
        conn.executemany(
            INSERT_DELIVERY,
            [(first + n, "default", State.DONE, now, None) for n in range(len(rows))],
        )
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def stored_events(path: Path) -> int:
    """How many events the inbox file `path` holds (0 if there is none)."""
    if not path.exists():
        return 0
    import sqlite3

    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])


def fill(path: Path, events: int) -> None:
    """Add done events to `path` until it holds `events`, a million at a time, saying so."""
    have = stored_events(path)
    started = time.monotonic()
    while have < events:
        step = min(1_000_000, events - have)
        prefill(path, step)
        have += step
        print(f"  {have:,} events stored ({time.monotonic() - started:.0f} s)",
              file=sys.stderr, flush=True)  # fmt: skip


def size_mb(path: Path) -> float:
    """The inbox file with its WAL, in MB."""
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file()) / 1e6


def receiver_command(port: int, work: Path, inbox: Path) -> list[str]:
    """`receiver serve` with a no-op handler on `port`."""
    return [
        sys.executable, "-m", "receiver", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--cert", str(work / "server.pem"), "--key", str(work / "server-key.pem"),
        "--inbox", str(inbox), "--handler", "bench.apps:Noop", "--log-level", "warning",
        "--admin-port", "0",  # two receivers run at once: each its own admin port
    ]  # fmt: skip


def start_receiver(work: Path, inbox: Path, token: str) -> Server:
    """A receiver with a no-op handler on `inbox`, pinned to core 0."""
    port = free_port()
    name = f"server-{inbox.stem}.log"
    return start_server(
        receiver_command(port, work, inbox), port, work / "ca.pem",
        {"RECEIVER_ENREACH_SECRET": token}, 0, work / name,
    )  # fmt: skip


def growth(args: argparse.Namespace, wrk: str, work: Path) -> None:
    """Empty inbox vs one holding --events events, the runs alternating between the two."""
    full_path = args.inbox or work / "full.db"
    fill(full_path, args.events)
    size = size_mb(full_path)
    token = new_token()
    inboxes = {"empty": work / "empty.db", f"{args.events:,} events": full_path}
    servers: dict[str, Server] = {}
    runs: dict[str, list[Run]] = {label: [] for label in inboxes}
    try:
        for label, inbox in inboxes.items():  # one that fails to start stops the others
            servers[label] = start_receiver(work, inbox, token)
        for server in servers.values():
            wrk_run(wrk, server, token, seconds=2, connections=32, core=1)
        # Alternating, so a change in the machine's speed during the benchmark affects both.
        for i in range(args.runs):
            for label, server in servers.items():
                run = wrk_run(wrk, server, token, seconds=args.seconds, connections=32, core=1)
                print(f"  run {i + 1}, {label}: {run.rps:,.0f}/s p99 {run.p99_ms:.2f} ms "
                      f"{run.cpu_us:.0f} µs/req", file=sys.stderr)  # fmt: skip
                runs[label].append(run)
    finally:
        for server in servers.values():
            server.stop()
    print("\n### Growth\n")
    print(f"`python bench/growth.py --events {args.events}`: medians of {args.runs} runs of "
          f"{args.seconds:g} s against each of two receivers, one on an empty inbox and one "
          f"on an inbox holding {args.events:,} done events, the runs alternating between "
          "them; 32 connections, servers on core 0, wrk on core 1.\n")  # fmt: skip
    print("| inbox before the runs | acks/s | p50 ms | p99 ms | server CPU µs/req |")
    print("|---|---:|---:|---:|---:|")
    for label, measured in runs.items():
        run = median_run(measured)
        print(f"| {label} | {run.rps:,.0f} | {run.p50_ms:.2f} | {run.p99_ms:.2f} | "
              f"{run.cpu_us:.0f} |")  # fmt: skip
    print(f"\nSize on disk: {size:,.0f} MB for {args.events:,} events "
          f"({size / args.events * 1e6:,.0f} MB per million, 635-byte bodies).")  # fmt: skip


def memory(args: argparse.Namespace, wrk: str, work: Path) -> None:
    """Resident memory at every 100k events taken at a steady rate."""
    import subprocess
    import threading

    token = new_token()
    port = free_port()
    inbox = work / "memory.db"
    server = start_server(
        receiver_command(port, work, inbox), port, work / "ca.pem",
        {"RECEIVER_ENREACH_SECRET": token}, 0, work / "server.log",
    )  # fmt: skip
    seconds = (
        args.events / args.rate * 3
    )  # paced wrk reaches ~2/3 of the offered rate; stopped at the target

    def paced_load() -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # stopped at the target
            wrk_run(wrk, server, token, seconds=seconds, connections=32, core=1,
                    pace_ms=32 * 1000 / args.rate)  # fmt: skip

    load = threading.Thread(target=paced_load)
    marks: dict[int, float] = {}
    load.start()
    reader = sqlite3.connect(f"file:{inbox}?mode=ro", uri=True)
    try:
        while load.is_alive():
            time.sleep(1)
            stored = reader.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
            mark = stored // 100_000 * 100_000
            if mark and mark not in marks:
                marks[mark] = rss_mb(server.proc.pid)
                print(f"  {mark:>9,} events: {marks[mark]:.0f} MB", file=sys.stderr)
            if stored >= args.events:
                break
    finally:
        reader.close()
        subprocess.run(["pkill", "-f", f"127.0.0.1:{port}/enreach"], check=False)
        load.join()
        server.stop()
    print("\n### Memory\n")
    print(
        f"`python bench/growth.py --memory --events {args.events} --rate {args.rate:g}`: "
        "resident memory of the receiver (no-op handler) at every 100,000 stored events.\n"
    )
    print("| events stored | RSS MB |")
    print("|---:|---:|")
    for mark, mb in sorted(marks.items()):
        print(f"| {mark:,} | {mb:.0f} |")
    if 200_000 in marks and marks:
        last = max(marks)
        print(f"\nGrowth from 200,000 to {last:,}: {marks[last] - marks[200_000]:+.1f} MB.")
        values = [marks[m] for m in sorted(marks) if m >= 200_000]
        print(f"Median RSS from 200,000 on: {statistics.median(values):.0f} MB.")


def main() -> None:
    """Growth or memory, as asked."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--rate", type=float, default=8000)
    parser.add_argument(
        "--inbox", type=Path, help="the full inbox: filled up to --events once, then reused"
    )
    args = parser.parse_args()
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="bench-growth-") as tmp:
        work = Path(tmp)
        write_dev_certificates(work, ["localhost", "127.0.0.1"])
        (memory if args.memory else growth)(args, wrk, work)


if __name__ == "__main__":
    main()

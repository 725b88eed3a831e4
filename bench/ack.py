"""Acknowledgement throughput and latency against the stack's ceiling and a naive receiver.

    python bench/ack.py [--seconds 10] [--runs 3] [--engines uvicorn,hypercorn]

Each server runs pinned to core 0, wrk to core 1, 32 keep-alive TLS connections sending
Enreach-sized events with unique Ids. Reported per server: acknowledged requests/s, p50 and
p99 latency, server CPU µs per request (medians of --runs runs), then the ratios
receiver/bare and receiver/naive (also against `naive-default`, the naive server on sqlite3's
defaults), and this receiver's p99 at half its maximum rate.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    Run,
    Server,
    ensure_wrk,
    free_port,
    median_run,
    new_token,
    paced_run,
    start_server,
    wrk_run,
)
from receiver.certs import write_dev_certificates

SERVER_CORE, LOAD_CORE = 0, 1
RECEIVER_ARGS: list[str] = []


def command(target: str, engine: str, port: int, certs: Path, work: Path) -> list[str]:
    """The command line that serves `target`."""
    tls = ["--cert", str(certs / "server.pem"), "--key", str(certs / "server-key.pem")]
    if target == "receiver":
        return [
            sys.executable,
            "-m",
            "receiver",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *tls,
            "--engine",
            engine,
            "--inbox",
            str(work / "inbox.db"),
            "--handler",
            "bench.apps:Noop",
            "--log-level",
            "warning",
            *RECEIVER_ARGS,
        ]
    extra = ["--db", str(work / "naive.db")] if target.startswith("naive") else []
    return [
        sys.executable,
        "-m",
        "bench.apps",
        target,
        "--engine",
        engine,
        "--port",
        str(port),
        *tls,
        *extra,
    ]


def serve(
    target: str, engine: str, certs: Path, work: Path, token: str, *, root: Path = ROOT
) -> Server:
    """Start `target` on core SERVER_CORE with the code in `root`, accepting `token`."""
    port = free_port()
    return start_server(
        command(target, engine, port, certs, work),
        port,
        certs / "ca.pem",
        {"RECEIVER_ENREACH_SECRET": token},
        SERVER_CORE,
        work / "server.log",
        root=root,
    )


def measure(
    wrk: str, target: str, engine: str, args: argparse.Namespace, certs: Path
) -> tuple[Run, Run | None]:
    """Median of the runs at full load, and (for the receiver) one run at half that rate."""
    token = new_token()
    with tempfile.TemporaryDirectory(prefix=f"bench-{target}-") as tmp:
        work = Path(tmp)
        server = serve(target, engine, certs, work, token)
        try:
            wrk_run(wrk, server, token, seconds=2, connections=args.connections, core=LOAD_CORE)
            runs = []
            for i in range(args.runs):
                run = wrk_run(
                    wrk,
                    server,
                    token,
                    seconds=args.seconds,
                    connections=args.connections,
                    core=LOAD_CORE,
                )
                print(
                    f"  {engine:<9} {target:<8} run {i + 1}: {run.rps:8.0f}/s "
                    f"p99 {run.p99_ms:6.2f} ms  {run.cpu_us:5.1f} µs/req",
                    file=sys.stderr,
                )
                runs.append(run)
            full = median_run(runs)
            half = None
            if target == "receiver":
                half = paced_run(
                    wrk,
                    server,
                    token,
                    rate=full.rps / 2,
                    seconds=args.seconds,
                    connections=args.connections,
                    core=LOAD_CORE,
                )
        finally:
            server.stop()
            log = (work / "server.log").read_text(errors="replace")
            if "Traceback" in log:
                print(log, file=sys.stderr)
    return full, half


def main() -> None:
    """Run the comparison and print a Markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--engines", default="uvicorn,hypercorn")
    parser.add_argument("--targets", default="bare,naive,naive-default,receiver")
    parser.add_argument("--receiver-args", default="", help="extra `receiver serve` options")
    args = parser.parse_args()
    RECEIVER_ARGS.extend(args.receiver_args.split())
    wrk = ensure_wrk()
    results: dict[tuple[str, str], Run] = {}
    halves: dict[str, Run] = {}
    with tempfile.TemporaryDirectory(prefix="bench-certs-") as tmp:
        certs = Path(tmp)
        write_dev_certificates(certs, ["localhost", "127.0.0.1"])
        for engine in args.engines.split(","):
            for target in args.targets.split(","):
                full, half = measure(wrk, target, engine, args, certs)
                results[(engine, target)] = full
                if half is not None:
                    halves[engine] = half
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"\n### Acknowledgement path, {now}\n")
    print(
        f"`python bench/ack.py --seconds {args.seconds:g} --runs {args.runs} "
        f"--engines {args.engines}` on {platform.node()} ({platform.machine()}, "
        f"Python {platform.python_version()}); server pinned to core {SERVER_CORE}, wrk to "
        f"core {LOAD_CORE}, {args.connections} keep-alive TLS connections, medians of "
        f"{args.runs} runs of {args.seconds:g} s.\n"
    )
    print("| engine | server | acks/s | p50 ms | p99 ms | server CPU µs/req | errors |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for (engine, target), run in results.items():
        print(
            f"| {engine} | {target} | {run.rps:,.0f} | {run.p50_ms:.2f} | {run.p99_ms:.2f} | "
            f"{run.cpu_us:.0f} | {run.errors} |"
        )
    print()
    for engine in args.engines.split(","):
        mine = results.get((engine, "receiver"))
        bare = results.get((engine, "bare"))
        naive = results.get((engine, "naive"))
        if mine and bare:
            print(f"- {engine}: receiver/bare = {mine.rps / bare.rps:.2f} (target ≥ 0.5)")
        if mine and naive:
            print(f"- {engine}: receiver/naive = {mine.rps / naive.rps:.2f} (target ≥ 5)")
        naive_default = results.get((engine, "naive-default"))
        if mine and naive_default:
            print(
                f"- {engine}: receiver/naive-default = {mine.rps / naive_default.rps:.2f} "
                "(the same naive server on sqlite3's defaults, rollback journal)"
            )
        if engine in halves and mine:
            half = halves[engine]
            print(
                f"- {engine}: at half the maximum rate ({mine.rps / 2:,.0f}/s offered, "
                f"{half.rps:,.0f}/s acknowledged) p50 {half.p50_ms:.2f} ms, p99 "
                f"{half.p99_ms:.2f} ms (target p99 ≤ 5 ms)"
            )


if __name__ == "__main__":
    main()

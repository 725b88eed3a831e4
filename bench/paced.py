"""Latency at fixed offered rates, for comparing two versions of the code.

    python bench/paced.py [--target receiver] [--rates 2300,4600] [--reps 2] [--seconds 8]
    python bench/paced.py --root /tmp/old-checkout ...   # serve another copy of the code

One server per invocation (pinned to core 0), then for each rate `--reps` paced wrk runs
(core 1, 32 keep-alive TLS connections), each calibrated to offer that rate. Run it
alternately on two checkouts: the machine's speed drifts within minutes, so only runs
interleaved in time compare.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ack import LOAD_CORE, RECEIVER_ARGS, serve
from bench.common import ROOT, ensure_wrk, new_token, paced_run, wrk_run
from receiver.certs import write_dev_certificates


def main() -> None:
    """Serve one target and print one line per paced run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="receiver", choices=["bare", "naive", "receiver"])
    parser.add_argument("--engine", default="uvicorn")
    parser.add_argument("--rates", default="2300,4600", help="requests/s, comma-separated")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--root", type=Path, help="serve the code in this checkout (default: this one)"
    )
    parser.add_argument("--receiver-args", default="", help="extra `receiver serve` options")
    args = parser.parse_args()
    RECEIVER_ARGS.extend(args.receiver_args.split())
    wrk = ensure_wrk()
    token = new_token()
    with tempfile.TemporaryDirectory(prefix="bench-paced-") as tmp:
        work = Path(tmp)
        write_dev_certificates(work, ["localhost", "127.0.0.1"])
        server = serve(
            args.target, args.engine, work, work, token, root=(args.root or ROOT).resolve()
        )
        try:
            wrk_run(wrk, server, token, seconds=2, connections=args.connections, core=LOAD_CORE)
            for rate in (float(r) for r in args.rates.split(",")):
                for _ in range(args.reps):
                    run = paced_run(
                        wrk,
                        server,
                        token,
                        rate=rate,
                        seconds=args.seconds,
                        connections=args.connections,
                        core=LOAD_CORE,
                    )
                    print(
                        f"{args.target} offered {rate:,.0f}/s acknowledged {run.rps:,.0f}/s "
                        f"p50 {run.p50_ms:.2f} p99 {run.p99_ms:.2f} ms "
                        f"{run.cpu_us:.0f} µs/req errors {run.errors}",
                        flush=True,
                    )
        finally:
            server.stop()


if __name__ == "__main__":
    main()

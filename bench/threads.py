"""Where an acknowledgement's CPU goes, thread by thread (the event loop, the inbox writer,
the checkpoint thread, the log writer), against the bare ASGI app in the same rounds.

Each round starts one server per variant (`bare`, this checkout's receiver, and with
`--root` another checkout's receiver), loads it with wrk at full load and reads every
thread's CPU time from /proc before and after each run. Thread names come from
`py-spy dump` (installed with the dev extra). Printed: per variant and thread, the median
CPU µs per acknowledged request over the rounds.

    python bench/threads.py --rounds 3
    python bench/threads.py --rounds 3 --root /tmp/old-main
    python bench/threads.py --receiver-args "--no-dispatch"
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import ack
from bench.common import CLOCK_TICKS, ROOT, ensure_wrk, new_token, wrk_run
from receiver.certs import write_dev_certificates

THREAD = re.compile(r'Thread (\d+) \((?:active|idle)[^)]*\): "([^"]+)"')


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of each thread of `pid`, by thread id."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        out[task.name] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return out


def thread_names(pid: int) -> dict[str, str]:
    """Python's names of the threads of `pid`, by thread id (empty without py-spy)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    try:
        dump = subprocess.run(
            [spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return {m.group(1): m.group(2) for m in THREAD.finditer(dump)}


def measure(
    wrk: str, variant: str, root: Path, certs: Path, args: argparse.Namespace
) -> dict[str, float]:
    """CPU µs per request of each named thread of one server, over one full-load run."""
    target = "bare" if variant == "bare" else "receiver"
    token = new_token()
    with tempfile.TemporaryDirectory(prefix=f"bench-threads-{target}-") as tmp:
        server = ack.serve(target, "uvicorn", certs, Path(tmp), token, root=root)
        try:
            wrk_run(wrk, server, token, seconds=2, connections=32, core=ack.LOAD_CORE)
            names = thread_names(server.proc.pid)
            before = thread_cpu(server.proc.pid)
            run = wrk_run(
                wrk, server, token, seconds=args.seconds, connections=32, core=ack.LOAD_CORE
            )
            after = thread_cpu(server.proc.pid)
        finally:
            server.stop()
    requests = run.rps * args.seconds
    per_thread = {"(acks/s)": run.rps, "(all threads)": run.cpu_us}
    for tid, seconds in after.items():
        spent = seconds - before.get(tid, 0.0)
        if spent > 0:
            name = names.get(tid, f"thread {tid}")
            per_thread[name] = per_thread.get(name, 0.0) + spent * 1e6 / requests
    print(
        f"  {variant:<10} {run.rps:8.0f}/s  "
        + ", ".join(f"{k} {v:.1f}" for k, v in per_thread.items() if not k.startswith("(")),
        file=sys.stderr,
    )
    return per_thread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--root", type=Path, help="another checkout to compare, alternating")
    parser.add_argument("--receiver-args", default="", help="extra `receiver serve` options")
    args = parser.parse_args()
    ack.RECEIVER_ARGS.extend(args.receiver_args.split())
    wrk = ensure_wrk()
    variants = {"bare": ROOT, "receiver": ROOT}
    if args.root:
        variants["other"] = args.root.resolve()
    results: dict[str, dict[str, list[float]]] = {v: defaultdict(list) for v in variants}
    with tempfile.TemporaryDirectory(prefix="bench-certs-") as tmp:
        certs = Path(tmp)
        write_dev_certificates(certs, ["localhost", "127.0.0.1"])
        for i in range(args.rounds):
            print(f"round {i + 1}", file=sys.stderr)
            for variant, root in variants.items():
                for name, value in measure(wrk, variant, root, certs, args).items():
                    results[variant][name].append(value)
    shown = " ".join(sys.argv[1:])
    print(f"\n`python bench/threads.py {shown}` (uvicorn, medians of {args.rounds} rounds)\n")
    print("| server | acks/s | CPU µs/req | per thread µs/req |")
    print("|---|---:|---:|---|")
    for variant, by_name in results.items():
        label = f"receiver ({variants[variant]})" if variant == "other" else variant
        threads = ", ".join(
            f"{name} {statistics.median(values):.1f}"
            for name, values in sorted(by_name.items(), key=lambda kv: -statistics.median(kv[1]))
            if not name.startswith("(") and statistics.median(values) >= 0.5
        )
        print(
            f"| {label} | {statistics.median(by_name['(acks/s)']):,.0f} "
            f"| {statistics.median(by_name['(all threads)']):.0f} | {threads} |"
        )


if __name__ == "__main__":
    main()

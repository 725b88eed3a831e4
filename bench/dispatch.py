"""Dispatch throughput and receive-to-handler latency.

    python bench/dispatch.py [--events 200000] [--seconds 10]

1. Store and dispatch: in this process (pinned to core 0), 32 concurrent senders append
   --events events, each handed at once to every one of N subscribers' no-op handler (the
   single-process fast path, without HTTP): CPU per event for 1 and for 3 subscribers.
2. Drain: an inbox is filled with --events pending events, each with a delivery to
   every one of N subscribers, then a dispatcher with a no-op handler per subscriber drains
   it (in this process, pinned to core 0): events/s from inbox to handlers and the CPU per
   event, for 1 and for 3 subscribers, alternating, medians of 3 drains each.
3. Latency: a receiver (core 0) under wrk load (core 1) at about half its maximum rate, with
   a handler that records now - received_at for every event: p50/p99 from receive to handler.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.apps import Noop
from bench.common import ensure_wrk, free_port, new_token, paced_run, start_server
from receiver.certs import write_dev_certificates
from receiver.dispatcher import Dispatcher, DispatchPolicy, Subscription
from receiver.inbox.models import NewEvent
from receiver.inbox.sqlite import SqliteInbox


async def drain(path: Path, events: int, subscribers: int = 1) -> tuple[float, float]:
    """Fill an inbox, then time a dispatcher emptying it to `subscribers` subscribers; returns
    events/s and CPU microseconds per event (the writer thread's included)."""
    names = [f"s{n}" for n in range(subscribers)]
    inbox = SqliteInbox(path)
    await inbox.open()
    body = (
        Path(__file__).parent.parent / "tests/payloads/enreach/spec-example-request.json"
    ).read_bytes()
    for start in range(0, events, 5000):
        await asyncio.gather(
            *(
                inbox.append(
                    NewEvent(
                        "enreach", f"id-{i}", "QueueCallInUserAllocated", f"call-{i % 997}", body
                    ),
                    names,
                )
                for i in range(start, min(events, start + 5000))
            )
        )
    subscriptions = [Subscription(name, default=Noop()) for name in names]
    dispatcher = Dispatcher(inbox, subscriptions, policy=DispatchPolicy(workers=16))
    started, cpu = time.perf_counter(), time.process_time()
    await dispatcher.start()
    dispatcher.wake()
    while dispatcher.stats.handled < events * subscribers:  # noqa: ASYNC110 - polls a counter, 10 ms granularity is plenty
        await asyncio.sleep(0.01)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await dispatcher.stop(5)
    await inbox.close()
    return events / elapsed, cpu / events * 1e6


async def store_and_dispatch(path: Path, events: int, subscribers: int = 1) -> float:
    """CPU microseconds per event to store `events` and dispatch them to `subscribers`."""
    names = [f"s{n}" for n in range(subscribers)]
    inbox = SqliteInbox(path)
    await inbox.open()
    subscriptions = [Subscription(name, default=Noop()) for name in names]
    dispatcher = Dispatcher(inbox, subscriptions, policy=DispatchPolicy(workers=16))
    await dispatcher.start()
    await asyncio.sleep(0.1)  # the first pull grants room
    body = (
        Path(__file__).parent.parent / "tests/payloads/enreach/spec-example-request.json"
    ).read_bytes()
    keys = [f"id-{i}" for i in range(events)]

    async def sender(first: int) -> None:
        for key in keys[first::32]:
            event = NewEvent("enreach", key, "QueueCallInUserAllocated", key[-3:], body)
            await inbox.append(event, names)

    cpu = time.process_time()
    await asyncio.gather(*(sender(n) for n in range(32)))
    while dispatcher.stats.handled < events * subscribers:  # noqa: ASYNC110 - polls a counter
        await asyncio.sleep(0.005)
    cpu = time.process_time() - cpu
    await dispatcher.stop(5)
    await inbox.close()
    return cpu / events * 1e6


def main() -> None:
    """Run both measurements and print a Markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=0, help="offered rate (default: 3000/s)")
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    stored: dict[int, list[float]] = {1: [], 3: []}
    for i in range(3):
        for subscribers in (1, 3):
            with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
                path = Path(tmp) / "inbox.db"
                cpu = asyncio.run(store_and_dispatch(path, min(args.events, 40_000), subscribers))
            print(
                f"  store+dispatch {i + 1}, {subscribers} subscriber(s): {cpu:.1f} µs CPU",
                file=sys.stderr,
            )
            stored[subscribers].append(cpu)
    rates: dict[int, list[float]] = {1: [], 3: []}
    cpus: dict[int, list[float]] = {1: [], 3: []}
    for i in range(3):
        for subscribers in (1, 3):
            with tempfile.TemporaryDirectory(prefix="bench-drain-") as tmp:
                path = Path(tmp) / "inbox.db"
                rate, cpu = asyncio.run(drain(path, args.events, subscribers))
            print(
                f"  drain {i + 1}, {subscribers} subscriber(s): {rate:,.0f} events/s, "
                f"{cpu:.1f} µs CPU per event",
                file=sys.stderr,
            )
            rates[subscribers].append(rate)
            cpus[subscribers].append(cpu)
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    wrk = ensure_wrk()
    token = new_token()
    offered = args.rate or 3000.0
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        work = Path(tmp)
        write_dev_certificates(work, ["localhost", "127.0.0.1"])
        samples_file = work / "latency.txt"
        port = free_port()
        server = start_server(
            [sys.executable, "-m", "receiver", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--cert", str(work / "server.pem"), "--key", str(work / "server-key.pem"),
             "--inbox", str(work / "inbox.db"), "--handler", "bench.apps:LatencyRecorder",
             "--log-level", "warning"],
            port, work / "ca.pem",
            {"RECEIVER_ENREACH_SECRET": token, "BENCH_LATENCY_FILE": str(samples_file)},
            0, work / "server.log",
        )  # fmt: skip
        try:
            run = paced_run(wrk, server, token, rate=offered, seconds=args.seconds,
                            connections=32, core=1)  # fmt: skip
            time.sleep(1)
        finally:
            server.stop()
        latencies = sorted(float(x) for x in samples_file.read_text().split())
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[int(len(latencies) * 0.99)]
    print("\n### Dispatch\n")
    print(f"`python bench/dispatch.py --events {args.events}`: a dispatcher with 16 workers "
          "and a no-op handler, pinned to one core.\n")  # fmt: skip
    for subscribers in (1, 3):
        print(f"- store and dispatch at once, {subscribers} subscriber(s): "
              f"{statistics.median(stored[subscribers]):.1f} µs CPU per event (medians of 3 "
              f"runs of {min(args.events, 40_000):,} events, 32 senders, no HTTP)")  # fmt: skip
    ratio = statistics.median(stored[3]) / statistics.median(stored[1])
    print(f"- store and dispatch, CPU per event with 3 subscribers: {ratio:.2f} times that with 1")
    for subscribers in (1, 3):
        print(f"- inbox → handler, {subscribers} subscriber(s): "
              f"{statistics.median(rates[subscribers]):,.0f} events/s, "
              f"{statistics.median(cpus[subscribers]):.1f} µs CPU per event (medians of 3 "
              f"drains of {args.events:,} events spread over 997 calls)")  # fmt: skip
    ratio = statistics.median(cpus[3]) / statistics.median(cpus[1])
    print(f"- drain, CPU per event with 3 subscribers: {ratio:.2f} times that with 1")
    print(f"- receive → handler latency at {run.rps:,.0f} acks/s: p50 {p50:.2f} ms, p99 "
          f"{p99:.2f} ms over {len(latencies):,} events (ack p99 {run.p99_ms:.2f} ms)")  # fmt: skip


if __name__ == "__main__":
    main()

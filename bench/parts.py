"""Small parts of issue 19's measurements, each in this process on one core.

- `dedup-index`: what an in-memory index of dedup keys would cost per million keys: a `set`
  of the 16-byte digests, and a sorted `array('Q')` of their 8-byte prefixes (memory, time to
  build, to load from an inbox's `digest` column, to look up; a full garbage collection with
  the set alive).
- `log-line`: µs to format one `receiver.requests` record as a JSON line, with the
  receiver's formatter and with structlog's processor chain it stands in for.

    python bench/parts.py dedup-index [--keys 1000000]
    python bench/parts.py log-line [--lines 20000]
"""

from __future__ import annotations

import argparse
import array
import bisect
import gc
import logging
import os
import secrets
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from receiver.log_format import formatter
from receiver.logs import RedactingFilter


def rss_mb() -> float:
    """This process's resident memory in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def prefix(digest: bytes) -> int:
    return int.from_bytes(digest[:8], "little")


def dedup_index(keys: int) -> None:
    digests = [secrets.token_bytes(16) for _ in range(keys)]
    per_million = 1e6 / keys
    gc.collect()
    before = rss_mb()
    started = time.perf_counter()
    index = set(digests)
    built = time.perf_counter() - started
    table = rss_mb() - before
    objects = sys.getsizeof(digests[0]) * keys / 1e6  # the bytes objects the set holds
    print(f"set of 16-byte digests: {table * per_million:.0f} MB of table + about "
          f"{objects * per_million:.0f} MB of bytes objects per million; "
          f"built in {built * per_million:.2f} s per million")  # fmt: skip
    started = time.perf_counter()
    gc.collect()
    pause = (time.perf_counter() - started) * 1000
    print(f"  a full garbage collection with it alive: {pause:.0f} ms")
    del index
    gc.collect()
    started = time.perf_counter()
    prefixes = array.array("Q", sorted(prefix(d) for d in digests))
    built = time.perf_counter() - started
    probes = digests[: min(keys, 100_000)]
    started = time.perf_counter()
    for digest in probes:
        wanted = prefix(digest)
        at = bisect.bisect_left(prefixes, wanted)
        assert at < len(prefixes) and prefixes[at] == wanted
    lookup = (time.perf_counter() - started) / len(probes)
    print(f"sorted array('Q') of 8-byte prefixes: {prefixes.itemsize * per_million:.0f} MB per "
          f"million; built in {built * per_million:.2f} s per million; lookup "
          f"{lookup * 1e6:.2f} µs")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-parts-") as tmp:
        conn = sqlite3.connect(Path(tmp) / "inbox.db")
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, digest BLOB UNIQUE)")
        conn.executemany("INSERT INTO events (digest) VALUES (?)", ((d,) for d in digests))
        conn.commit()
        started = time.perf_counter()
        loaded = {row[0] for row in conn.execute("SELECT digest FROM events")}
        as_set = time.perf_counter() - started
        started = time.perf_counter()
        loaded_prefixes = array.array(
            "Q", sorted(prefix(row[0]) for row in conn.execute("SELECT digest FROM events"))
        )
        as_array = time.perf_counter() - started
        conn.close()
    assert len(loaded) == len(loaded_prefixes) == keys
    print(f"loading from an inbox's digest column: {as_set * per_million:.2f} s per million "
          f"into the set, {as_array * per_million:.2f} s into the array")  # fmt: skip


def log_line(lines: int) -> None:
    redactor = RedactingFilter(secrets=["hunter2"])
    direct = formatter("json", redactor.process)
    chain = getattr(direct, "chain", direct)
    records = []
    for _ in range(lines):
        key = str(uuid.uuid4())
        record = logging.LogRecord(
            "receiver.requests", logging.INFO, __file__, 1, "%s: %s event %s (%s) in %.1f ms",
            ("enreach", "stored", key, "QueueCallInUserConnected", 1.2), None,
        )  # fmt: skip
        record.__dict__.update(
            endpoint="enreach", outcome="stored", dedup_key=key,
            event_type="QueueCallInUserConnected", call_id=str(uuid.uuid4()),
            latency_ms=1.234, client="127.0.0.1",
        )  # fmt: skip
        records.append(record)
    for name, form in (("structlog's chain", chain), ("the receiver's formatter", direct)):
        started = time.thread_time()
        for record in records:
            form.format(record)
        spent = (time.thread_time() - started) / lines * 1e6
        print(f"{name}: {spent:.1f} µs a line")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["dedup-index", "log-line"])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=20_000)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    if args.part == "dedup-index":
        dedup_index(args.keys)
    else:
        log_line(args.lines)


if __name__ == "__main__":
    main()

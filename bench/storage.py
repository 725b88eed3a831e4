"""What each candidate durable store costs per acknowledged event (issue 19's prototypes).

Runs each design in this process, one thread, pinned to one core, with the inbox's real
shapes: 16-byte BLAKE2b dedup keys from random GUIDs, a ~600-byte payload, ~500 bytes of
stored headers, one subscriber. Every design makes each batch durable (fsync) before it
would acknowledge it, and deduplicates exactly. Printed: thread CPU µs per event, median of
`--runs` alternating rounds, and each design's ratio to `sqlite-now` of the same round.

- `sqlite-now`: today's inbox: per batch one transaction inserting the events and their
  deliveries (in progress), `synchronous=FULL`; the done-marks share the next commit.
- `log+fill`: a segment log (one `write` + `fdatasync` per batch, CRC-framed records), dedup
  against an in-memory set of digests, and SQLite filled behind in batches of `--fill`
  events with their final state (no done-mark update), `synchronous=OFF` (the log is what
  is durable; the fill is redone from it after a crash).
- `log+lookup`: as `log+fill`, but dedup by a lookup in SQLite's unique index plus a set of
  the events not filled yet (no index of every key in memory).
- `log+fill-nu`: as `log+fill` with no unique index on disk (the set in memory is the only
  dedup index, rebuilt from the table at start).
- `log-only`: the segment log and the in-memory set alone (what the request path would wait
  for; the fill's cost is the difference to `log+fill`).
- `rocksdb`: RocksDB (rocksdict) with the digest as key, one synced WriteBatch per batch,
  dedup by a point lookup; the done-mark a second put.

    python bench/storage.py --events 40000 --batch 16 --runs 3
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import struct
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from receiver.inbox.rows import digest
from receiver.inbox.sqlite_schema import INSERT, INSERT_DELIVERY, connect

PAYLOAD = orjson.dumps(
    {
        "Id": "",
        "RootEntityType": "Queue",
        "RootEntityId": "5d5b0bde-0b3c-4a4a-9f8b-3c1fbd2f5e11",
        "EventType": "QueueCallInUserConnected",
        "TimeStamp": "2026-11-30T12:00:00.000Z",
        "CallId": "b4b2e4f0-4a69-4c1e-9a55-0c9f6a1f3c21",
        "QueueId": "5d5b0bde-0b3c-4a4a-9f8b-3c1fbd2f5e11",
        "QueueName": "Customer service",
        "CallerNumber": "+358401234567",
        "TargetNumber": "+358201234567",
        "UserId": "0f3e9b1a-7c2d-4e5f-8a9b-1c2d3e4f5a6b",
        "Username": "agent.smith@example.com",
        "TechQueueId": "d7a1c3e5-9b2f-4d6a-8c1e-3f5a7b9d1c2e",
        "TechSource": "Queue",
    }
)
HEADERS = orjson.dumps(
    {"user-agent": "Enreach-Webhook/1.0", "content-type": "application/json"}
    | {f"x-h{i}": "v" * 40 for i in range(8)}
)
NO_UNIQUE = """
DROP TABLE events;
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, dedup_key TEXT NOT NULL,
    digest BLOB NOT NULL, event_type TEXT NOT NULL, order_key TEXT, payload BLOB NOT NULL,
    received_at REAL NOT NULL, headers BLOB
);
"""
FRAME = struct.Struct("<II")  # length, crc32


def events(count: int) -> list[tuple[str, bytes]]:
    out = []
    for _ in range(count):
        key = str(uuid.uuid4())
        out.append((key, PAYLOAD.replace(b'"Id":""', b'"Id":"' + key.encode() + b'"')))
    return out


def sqlite_now(folder: Path, evs: list[tuple[str, bytes]], batch: int, fill: int) -> None:
    conn = connect(folder / "inbox.db", synchronous="FULL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    done: list[tuple[float, float, int, str]] = []
    for start in range(0, len(evs), batch):
        conn.execute("BEGIN IMMEDIATE")
        now = time.time()
        for key, payload in evs[start : start + batch]:
            params = (
                "enreach",
                key,
                digest("enreach", key),
                "QueueCallInUserConnected",
                key,
                payload,
                now,
                HEADERS,
            )
            cur = conn.execute(INSERT, params)
            if cur.rowcount == 1:
                event_id = cur.lastrowid or 0
                conn.execute(INSERT_DELIVERY, (event_id, "default", 1, now, "owner"))
                done.append((now, 0.001, event_id, "default"))
        if len(done) >= 2 * batch:  # the lazy done-marks ride on this commit
            conn.executemany(
                "UPDATE deliveries SET state = 2, finished_at = ?, duration = ?, owner = NULL,"
                " last_error = NULL WHERE event_id = ? AND subscriber = ? AND state = 1",
                done,
            )
            done = []
        conn.execute("COMMIT")
        if start % (100 * batch) == 0:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    conn.close()


def _log_then_fill(
    folder: Path,
    evs: list[tuple[str, bytes]],
    batch: int,
    fill: int,
    seen_in_index: bool,
    unique: bool = True,
) -> None:
    conn = connect(folder / "inbox.db", synchronous="FULL")
    if not unique:  # the in-memory set is the only dedup index: none on disk
        conn.executescript(NO_UNIQUE)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    fd = os.open(folder / "segment-0", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    index: set[bytes] = set()
    unfilled: list[tuple[object, ...]] = []
    unfilled_keys: set[bytes] = set()
    next_id = 1
    lookup = conn.cursor()
    for start in range(0, len(evs), batch):
        now = time.time()
        records = []
        for key, payload in evs[start : start + batch]:
            d = digest("enreach", key)
            if seen_in_index:
                if d in index:
                    continue
                index.add(d)
            else:
                if (
                    d in unfilled_keys
                    or lookup.execute("SELECT 1 FROM events WHERE digest = ?", (d,)).fetchone()
                ):
                    continue
                unfilled_keys.add(d)
            body = (
                orjson.dumps([next_id, "enreach", key, "QueueCallInUserConnected", key, now])
                + b"\n"
                + payload
                + b"\n"
                + HEADERS
            )
            records.append(FRAME.pack(len(body), zlib.crc32(body)) + body)
            unfilled.append(
                (next_id, "enreach", key, d, "QueueCallInUserConnected", key, payload, now, HEADERS)
            )
            next_id += 1
        os.write(fd, b"".join(records))
        os.fdatasync(fd)
        if fill and len(unfilled) >= fill:
            _fill(conn, unfilled)
            unfilled = []
            unfilled_keys.clear()
    if fill:
        _fill(conn, unfilled)
    os.close(fd)
    conn.close()


def _fill(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO events (id, source, dedup_key, digest, event_type, order_key, payload,"
        " received_at, headers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.executemany(
        "INSERT INTO deliveries (event_id, subscriber, state, next_attempt_at, finished_at,"
        " duration) VALUES (?, 'default', 2, ?, ?, 0.001)",
        [(r[0], r[7], r[7]) for r in rows],
    )
    conn.execute("COMMIT")


def log_fill(folder: Path, evs: list[tuple[str, bytes]], batch: int, fill: int) -> None:
    _log_then_fill(folder, evs, batch, fill, seen_in_index=True)


def log_fill_no_unique(folder: Path, evs: list[tuple[str, bytes]], batch: int, fill: int) -> None:
    _log_then_fill(folder, evs, batch, fill, seen_in_index=True, unique=False)


def log_only(folder: Path, evs: list[tuple[str, bytes]], batch: int, fill: int) -> None:
    _log_then_fill(folder, evs, batch, 0, seen_in_index=True)


def log_lookup(folder: Path, evs: list[tuple[str, bytes]], batch: int, fill: int) -> None:
    _log_then_fill(folder, evs, batch, fill, seen_in_index=False)


def rocksdb(folder: Path, evs: list[tuple[str, bytes]], batch: int, fill: int) -> None:
    from rocksdict import Rdict, WriteBatch, WriteOptions  # bench-only

    db = Rdict(str(folder / "rocks"))
    synced = WriteOptions()
    synced.sync = True
    lazy = WriteOptions()
    done: list[bytes] = []
    for start in range(0, len(evs), batch):
        now = time.time()
        wb = WriteBatch()
        for key, payload in evs[start : start + batch]:
            d = digest("enreach", key)
            if db.get(d) is not None:
                continue
            wb.put(
                d,
                orjson.dumps([key, "QueueCallInUserConnected", key, now])
                + b"\n"
                + payload
                + b"\n"
                + HEADERS,
            )
            done.append(d)
        db.write(wb, synced)
        if len(done) >= 2 * batch:
            marks = WriteBatch()
            for d in done:
                marks.put(b"done:" + d, b"1")
            db.write(marks, lazy)
            done = []
    db.close()


DESIGNS: dict[str, Callable[[Path, list[tuple[str, bytes]], int, int], None]] = {
    "sqlite-now": sqlite_now,
    "log+fill": log_fill,
    "log+lookup": log_lookup,
    "log+fill-nu": log_fill_no_unique,
    "log-only": log_only,
    "rocksdb": rocksdb,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40000)
    parser.add_argument("--batch", type=int, default=16, help="events per durable write")
    parser.add_argument("--fill", type=int, default=512, help="events per SQLite fill")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--designs", default=",".join(DESIGNS))
    parser.add_argument("--dir", default=None, help="where the files go (default: a temp dir)")
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    names = args.designs.split(",")
    evs = events(args.events)
    results: dict[str, list[float]] = {n: [] for n in names}
    for round_ in range(args.runs):
        for name in names:
            with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
                started = time.thread_time()
                wall = time.perf_counter()
                DESIGNS[name](Path(tmp), evs, args.batch, args.fill)
                cpu = (time.thread_time() - started) / len(evs) * 1e6
                wall_us = (time.perf_counter() - wall) / len(evs) * 1e6
            results[name].append(cpu)
            print(
                f"round {round_ + 1} {name:<11} {cpu:6.1f} µs CPU/event ({wall_us:6.1f} wall)",
                file=sys.stderr,
            )
    base = statistics.median(results[names[0]])
    print(
        f"\n{args.events} events, {args.batch} per durable write, fill {args.fill},"
        f" median of {args.runs}:"
    )
    for name in names:
        med = statistics.median(results[name])
        print(f"  {name:<11} {med:6.1f} µs CPU/event  ({med / base:.2f} of {names[0]})")


if __name__ == "__main__":
    main()

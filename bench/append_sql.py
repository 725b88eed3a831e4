"""The SQL cost of storing an event and marking it done, per inbox schema, without Python's
asyncio or HTTP around it.

    python bench/append_sql.py [--events 60000] [--runs 3]

Each schema gets --events appends (random GUID keys, Enreach-sized bodies) in transactions
of 100, each followed by the done-marks of the previous 100, with `synchronous=OFF` so that
only CPU is measured; the schemas alternate run by run. Printed: CPU µs per event, medians.

- `v2`: one row per event with its state (before subscribers, schema 2);
- `v3`: the current schema (`receiver.inbox.sqlite_schema`): an event row and a delivery
  row per subscriber, ids AUTOINCREMENT;
- `v3-int-subscriber`: as v3 with the subscriber as an INTEGER (not done: for comparison).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from receiver.inbox.sqlite_schema import INSERT, INSERT_DELIVERY, SCHEMA, digest

BODY = (
    Path(__file__).parent.parent / "tests/payloads/enreach/spec-example-request.json"
).read_bytes()

V2 = """
CREATE TABLE events (id INTEGER PRIMARY KEY, source TEXT NOT NULL, dedup_key TEXT NOT NULL,
  digest BLOB NOT NULL UNIQUE, event_type TEXT NOT NULL, order_key TEXT, payload BLOB NOT NULL,
  state INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, received_at REAL NOT
  NULL, next_attempt_at REAL NOT NULL, last_error TEXT, finished_at REAL);
CREATE INDEX events_open ON events (state, id) WHERE state < 2;
CREATE INDEX events_dead ON events (id) WHERE state = 3;
"""
V2_INSERT = (
    "INSERT INTO events (source, dedup_key, digest, event_type, order_key, payload,"
    " received_at, next_attempt_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (digest) DO NOTHING"
)
V2_DONE = "UPDATE events SET state = 2, finished_at = ? WHERE id = ?"
V3_DONE = (
    "UPDATE deliveries SET state = 2, finished_at = ?, duration = ?, owner = NULL,"
    " last_error = NULL WHERE event_id = ? AND subscriber = ?"
)
INT_SCHEMA = SCHEMA.replace(
    "subscriber TEXT NOT NULL,\n    state", "subscriber INTEGER NOT NULL,\n    state"
)


def run(schema: str, events: int, folder: Path) -> float:
    """CPU µs per event for `events` appends and done-marks with `schema`."""
    path = folder / f"{schema}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    text = {"v2": V2, "v3": SCHEMA, "v3-int-subscriber": INT_SCHEMA}[schema]
    for statement in text.split(";"):
        if statement.strip():
            conn.execute(statement)
    subscriber: object = 0 if schema == "v3-int-subscriber" else "default"
    keys = [str(uuid.uuid4()) for _ in range(events)]
    now = time.time()
    ids: list[int] = []
    started = time.process_time()
    for first in range(0, events, 100):
        conn.execute("BEGIN IMMEDIATE")
        for key in keys[first : first + 100]:
            row = ("enreach", key, digest("enreach", key), "QueueCallInUserAllocated", key, BODY)
            if schema == "v2":
                ids.append(conn.execute(V2_INSERT, (*row, now, now, 1)).lastrowid or 0)
            else:
                event_id = conn.execute(INSERT, (*row, now)).lastrowid or 0
                conn.execute(INSERT_DELIVERY, (event_id, subscriber, 1, now, "0123456789ab"))
                ids.append(event_id)
        done = ids[-200:-100]
        if schema == "v2":
            conn.executemany(V2_DONE, [(now, i) for i in done])
        else:
            conn.executemany(V3_DONE, [(now, 0.001, i, subscriber) for i in done])
        conn.execute("COMMIT")
    cpu = time.process_time() - started
    conn.close()
    return cpu / events * 1e6


def main() -> None:
    """Alternate the schemas, print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    schemas = ("v2", "v3", "v3-int-subscriber")
    costs: dict[str, list[float]] = {s: [] for s in schemas}
    for _ in range(args.runs):
        for schema in schemas:
            with tempfile.TemporaryDirectory(prefix="bench-sql-") as tmp:
                costs[schema].append(run(schema, args.events, Path(tmp)))
    print(f"`python bench/append_sql.py --events {args.events}`: CPU µs per event "
          f"(append and done-mark), medians of {args.runs}\n")  # fmt: skip
    print("| schema | µs per event | runs |\n|---|---:|---|")
    for schema in schemas:
        runs = ", ".join(f"{c:.1f}" for c in costs[schema])
        print(f"| {schema} | {statistics.median(costs[schema]):.1f} | {runs} |")


if __name__ == "__main__":
    main()

"""`python -m tests.support.faulty_serve serve ...`: `receiver serve` with faults a test cannot
cause from outside the process. Test-only: nothing in the receiver reads these variables.

FAULT_SQLITE_HEAP_LIMIT=<bytes>: SQLite's hard heap limit for the whole process. A value that
does not fit makes SQLite fail with SQLITE_NOMEM, which Python raises as MemoryError: the
inbox writer meets a genuine out-of-memory error on that one write.

FAULT_WRITER_CRASH_FILE=<path>: once that file exists, the inbox writer thread raises
MemoryError from its own loop, outside any write operation, when it next runs a batch (as a
thread that runs out of memory would): the thread dies for good.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import receiver.inbox.sqlite as inbox_sqlite
from receiver.cli import main


def _cap_sqlite_heap(limit: int) -> None:
    with sqlite3.connect(":memory:") as conn:
        conn.execute(f"PRAGMA hard_heap_limit = {limit}")


def _crash_writer_once(marker: Path) -> None:
    run_batch = inbox_sqlite._Writer._run_batch

    def crashing(self: inbox_sqlite._Writer, batch: Any) -> Any:
        if marker.exists():
            raise MemoryError("injected by tests.support.faulty_serve")
        return run_batch(self, batch)

    inbox_sqlite._Writer._run_batch = crashing  # type: ignore[method-assign]


if __name__ == "__main__":
    if heap := os.environ.get("FAULT_SQLITE_HEAP_LIMIT"):
        _cap_sqlite_heap(int(heap))
    if crash := os.environ.get("FAULT_WRITER_CRASH_FILE"):
        _crash_writer_once(Path(crash))
    sys.argv[0] = "receiver"
    sys.exit(main())

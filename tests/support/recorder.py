"""A handler that records what it handles in a JSON-lines file, with scripted faults.

Configured by environment variables, since it runs inside a receiver child process:
RECORD_FILE (required), RECORD_SLEEP (seconds per event), RECORD_FAIL_MARKER (fail while
this file exists), RECORD_FAIL_TYPES (comma-separated event types that always fail),
RECORD_HANG_TYPES (event types whose handling never ends).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from receiver.inbox.models import StoredEvent


def _write(record: dict[str, object]) -> None:
    line = (json.dumps(record) + "\n").encode()
    fd = os.open(os.environ["RECORD_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)  # one write with O_APPEND: lines never interleave
    finally:
        os.close(fd)


class Recorder:
    """Writes `start` and `end` lines around each event; fails or hangs on request."""

    def __init__(self) -> None:
        self.sleep = float(os.environ.get("RECORD_SLEEP", "0"))
        marker = os.environ.get("RECORD_FAIL_MARKER")
        self.fail_marker = Path(marker) if marker else None
        self.fail_types = set(filter(None, os.environ.get("RECORD_FAIL_TYPES", "").split(",")))
        self.hang_types = set(filter(None, os.environ.get("RECORD_HANG_TYPES", "").split(",")))

    async def handle(self, event: StoredEvent) -> None:
        """Record the event, then succeed, fail or hang as configured."""
        base = {"key": event.dedup_key, "type": event.event_type, "attempt": event.attempts}
        _write({**base, "phase": "start", "order_key": event.order_key, "pid": os.getpid()})
        if event.event_type in self.hang_types:
            await asyncio.sleep(3600)
        if self.sleep:
            await asyncio.sleep(self.sleep)
        if event.event_type in self.fail_types or (
            self.fail_marker is not None and self.fail_marker.exists()
        ):
            raise RuntimeError(f"scripted failure for {event.event_type}")
        _write({**base, "phase": "end"})

    async def failed(self, event: StoredEvent, error: BaseException, *, final: bool) -> None:
        """Record the failure report."""
        _write({"key": event.dedup_key, "phase": "failed", "final": final, "error": str(error)})


def read_records(path: Path) -> list[dict[str, object]]:
    """Every line the recorder wrote so far."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

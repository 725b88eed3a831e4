"""Subscribers that fail on purpose and `on_dead` hooks, run inside receiver child processes.

Configured by environment variables, since they run in child processes: DEAD_HOOK_FILE, the
file each hook call appends one JSON line to (`record`, `record_async`), and HOOK_CALLS_FILE,
the file `explode` appends a line to before it raises.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from receiver.alerts import Alert, DeadLetter
from receiver.inbox.models import StoredEvent

__all__ = [
    "Accepts",
    "FailsOnce",
    "Refuses",
    "explode",
    "read_hook_calls",
    "record",
    "record_async",
]


def _append(path: str, record: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())
    finally:
        os.close(fd)


class Refuses:
    """Fails every event, quoting its caller's number (as a careless service would)."""

    async def handle(self, event: StoredEvent) -> None:
        """Raise with the payload's CallerNumber in the message."""
        payload: Any = orjson.loads(event.payload)
        caller = payload.get("CallerNumber") if isinstance(payload, dict) else None
        raise RuntimeError(f"the CRM refused caller {caller}\nsecond line of the error")

    async def failed(self, event: StoredEvent, error: BaseException, *, final: bool) -> None:
        """Nothing to do."""


class FailsOnce:
    """Fails each event's first attempt, takes the second."""

    async def handle(self, event: StoredEvent) -> None:
        """Raise on the first attempt only."""
        if event.attempts == 0:
            raise RuntimeError("not this time")

    async def failed(self, event: StoredEvent, error: BaseException, *, final: bool) -> None:
        """Nothing to do."""


class Accepts:
    """Takes every event."""

    async def handle(self, event: StoredEvent) -> None:
        """Nothing to do: done."""

    async def failed(self, event: StoredEvent, error: BaseException, *, final: bool) -> None:
        """Nothing to do."""


def _as_record(alert: Alert, how: str) -> dict[str, Any]:
    return {"how": how, "type": type(alert).__name__, **asdict(alert)}


def record(alert: Alert) -> None:
    """A sync hook: append the alert to DEAD_HOOK_FILE."""
    assert isinstance(alert, DeadLetter) or alert.suppressed > 0
    _append(os.environ["DEAD_HOOK_FILE"], _as_record(alert, "sync"))


async def record_async(alert: Alert) -> None:
    """An async hook: append the alert to DEAD_HOOK_FILE after yielding to the loop."""
    await asyncio.sleep(0)
    _append(os.environ["DEAD_HOOK_FILE"], _as_record(alert, "async"))


def explode(alert: Alert) -> None:
    """A hook that fails every time (after leaving a trace in HOOK_CALLS_FILE)."""
    _append(os.environ["HOOK_CALLS_FILE"], _as_record(alert, "explode"))
    raise RuntimeError("the ops hook is broken")


def read_hook_calls(path: Path) -> list[dict[str, Any]]:
    """Every line a hook appended to `path`."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

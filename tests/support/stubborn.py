"""A recording handler with harder hangs, keyed by markers in the payload.

Configured like `tests.support.recorder.Recorder`, plus RECORD_STUBBORN_MARK: events whose
payload contains it hang forever and swallow every cancellation (as a library that catches
BaseException in a retry loop would); RECORD_HANG_ONCE_MARK: events whose payload contains it
hang (cancellably) on their first attempt and succeed on retries.
"""

from __future__ import annotations

import asyncio
import os

from receiver.inbox.models import StoredEvent
from tests.support.recorder import Recorder, _write

__all__ = ["Stubborn"]


def _mark(name: str) -> bytes | None:
    value = os.environ.get(name, "")
    return value.encode() if value else None


class Stubborn(Recorder):
    """`Recorder`, plus hangs through cancellation or on the first attempt only."""

    def __init__(self) -> None:
        super().__init__()
        self.stubborn = _mark("RECORD_STUBBORN_MARK")
        self.hang_once = _mark("RECORD_HANG_ONCE_MARK")

    async def handle(self, event: StoredEvent) -> None:
        """Hang as configured; otherwise behave as `Recorder`."""
        base = {"key": event.dedup_key, "phase": "start", "attempt": event.attempts}
        if self.hang_once and self.hang_once in event.payload and event.attempts == 0:
            _write(base)
            await asyncio.sleep(3600)
        if not (self.stubborn and self.stubborn in event.payload):
            await super().handle(event)
            return
        _write(base)
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                _write({"key": event.dedup_key, "phase": "ignored-cancel"})

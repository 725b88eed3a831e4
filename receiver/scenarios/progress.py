"""A one-line progress bar on stderr, shown only to a person at a terminal."""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from receiver.scenarios.plan import PlannedRequest
from receiver.sender.base import Delivery

__all__ = ["ProgressBar"]

_WIDTH = 30
_REFRESH = 0.1  # seconds between redraws; redrawing per request would cost more than sending


class ProgressBar:
    """Counts deliveries and redraws `done/total [####....] ok failed 401 rate` in place.

    Disabled (every call does nothing) unless `stream` is a TTY and `CI` is unset, so logs
    and pipes stay clean.
    """

    def __init__(self, total: int, *, stream: TextIO | None = None) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() and not os.environ.get("CI")
        self.done = self.acknowledged = self.failed = self.rejected = 0
        self._started = time.monotonic()
        self._drawn = 0.0

    def __call__(self, planned: PlannedRequest, delivery: Delivery) -> None:
        """Count one finished request (the runner's `on_delivery` hook)."""
        self.done += 1
        if planned.wrong_token:
            self.rejected += delivery.status == 401
        elif delivery.acknowledged:
            self.acknowledged += 1
        else:
            self.failed += 1
        now = time.monotonic()
        if self.enabled and (now - self._drawn >= _REFRESH or self.done == self.total):
            self._drawn = now
            self._draw(now)

    def close(self) -> None:
        """End the bar's line so the summary starts on a fresh one."""
        if self.enabled and self.done:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, now: float) -> None:
        filled = _WIDTH * self.done // max(self.total, 1)
        rate = self.done / max(now - self._started, 1e-9)
        self.stream.write(
            f"\r{self.done}/{self.total} [{'#' * filled}{'.' * (_WIDTH - filled)}] "
            f"ok {self.acknowledged}  failed {self.failed}  401 {self.rejected}  {rate:.0f}/s "
        )
        self.stream.flush()

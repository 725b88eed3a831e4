"""The records that flow into and out of an inbox."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["NewEvent", "State", "StoredEvent"]


class State(enum.IntEnum):
    """Where an event is in its life; stored as a small integer."""

    PENDING = 0
    IN_PROGRESS = 1
    DONE = 2
    DEAD = 3

    @property
    def label(self) -> str:
        """The name shown by the CLI (`pending`, `in_progress`, `done`, `dead`)."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An authenticated, decoded request, ready to be appended to the inbox."""

    source: str
    """Endpoint name; dedup keys are unique per source."""
    dedup_key: str
    event_type: str
    order_key: str | None
    """Events sharing an order key are handled one at a time, in arrival order."""
    payload: bytes
    """The event as JSON bytes (for JSON sources, the request body as received)."""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the inbox keeps it, handed to the dispatcher and shown by the CLI."""

    id: int
    source: str
    dedup_key: str
    event_type: str
    order_key: str | None
    payload: bytes
    state: State
    attempts: int
    received_at: float
    next_attempt_at: float
    last_error: str | None
    finished_at: float | None

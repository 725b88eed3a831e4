"""What every provider's flows are made of: events in the order and at the time they happen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["FlowEvent"]


@dataclass(frozen=True, slots=True)
class FlowEvent:
    """One event of a flow, in the order and at the time it happened."""

    at: datetime
    payload: dict[str, Any]
    event_type: str = ""
    """The event's type; empty when the payload names it (Enreach `EventType`)."""
    event_id: str = ""
    """What identifies the event in reports; empty when the payload has it (Enreach `Id`)."""

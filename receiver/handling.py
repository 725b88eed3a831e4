"""The one contract between the dispatcher and integrator code."""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from receiver.inbox.models import StoredEvent

__all__ = ["EventHandler", "LoggingHandler"]


@runtime_checkable
class EventHandler(Protocol):
    """Anything the dispatcher can hand a stored event to.

    `handle` returning normally means the event is done; raising means the attempt
    failed and the dispatcher retries it with backoff, then keeps it as a dead letter.
    `handlers.EnreachHandler` and the other base classes implement this.
    """

    async def handle(self, event: StoredEvent) -> None:
        """Handle one event; raise to have it retried."""
        ...

    async def failed(self, event: StoredEvent, error: BaseException, *, final: bool) -> None:
        """Hear about a failed attempt (`final` when the event became a dead letter)."""
        ...


class LoggingHandler:
    """The handler used when none is configured: logs each event's id and type."""

    def __init__(self) -> None:
        self.log = logging.getLogger("receiver.events")

    async def handle(self, event: StoredEvent) -> None:
        """Log one line for the event."""
        self.log.info(
            "%s event %s (%s, stored as #%d)",
            event.source, event.dedup_key, event.event_type or "no type", event.id,
        )  # fmt: skip

    async def failed(self, event: StoredEvent, error: BaseException, *, final: bool) -> None:
        """Nothing to add: the dispatcher logs failures."""

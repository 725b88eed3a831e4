"""The one contract between the dispatcher and integrator code."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from receiver.exceptions import ConfigError
from receiver.inbox.models import StoredEvent
from receiver.logs import printable

__all__ = ["EventHandler", "LoggingHandler", "check_handler"]


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
            event.source, printable(event.dedup_key), printable(event.event_type or "no type"),
            event.id,
        )  # fmt: skip

    async def failed(self, event: StoredEvent, error: BaseException, *, final: bool) -> None:
        """Nothing to add: the dispatcher logs failures."""


def check_handler(handler: object, event_types: Iterable[str] = ()) -> list[str]:
    """Refuse a handler the dispatcher could not await; return warnings about doubtful methods.

    Raises `ConfigError` (one line) unless `handle` and `failed` are async; a handler with
    `check_methods` (every `handlers.Handler`) also has its `on_*` methods checked against
    its provider's event types and `event_types`, those configured for its endpoints.
    """
    name = type(handler).__qualname__
    if not isinstance(handler, EventHandler):
        raise ConfigError(
            f"{name} is not a handler: subclass handlers.EnreachHandler "
            "(or give an object with async handle() and failed())"
        )
    plain = [
        m for m in ("handle", "failed") if not inspect.iscoroutinefunction(getattr(handler, m))
    ]
    if plain:
        raise ConfigError(
            "; ".join(
                f"{name}.{m} must be defined with async def (the dispatcher awaits it)"
                for m in plain
            )
        )
    check = getattr(handler, "check_methods", None)
    if check is None:
        return []
    warnings: list[str] = check(event_types)
    return warnings

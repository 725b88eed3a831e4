"""A handler that logs everything it is given, as a careless integration would.

Used to prove that the receiver's log filter, not the handler's care, keeps phone numbers
out of the log. Events whose payload says "FailMe" fail with the payload in the error (so it
reaches the dispatcher's dead-letter line); for "FailHook" the failure hook raises too (so it
reaches a logged traceback).
"""

from __future__ import annotations

import logging

import orjson

from receiver.inbox.models import StoredEvent

__all__ = ["Chatty"]

log = logging.getLogger("bridge")


class Chatty:
    """Logs each payload at info and debug; fails for "FailMe" and "FailHook" payloads."""

    async def handle(self, event: StoredEvent) -> None:
        """Log the event in full; raise for the failing types."""
        payload = orjson.loads(event.payload)
        log.info("event %d: %s", event.id, event.payload.decode())
        log.debug("decoded: %r", payload)
        if b"FailMe" in event.payload or b"FailHook" in event.payload:
            raise RuntimeError(f"CRM refused {event.payload.decode()}")

    async def failed(self, event: StoredEvent, error: BaseException, *, final: bool) -> None:
        """Log the failure; for "FailHook", fail here as well."""
        log.warning("event %d failed (final %s): %s", event.id, final, error)
        if b"FailHook" in event.payload:
            raise ValueError(f"hook broke on {event.payload.decode()}")

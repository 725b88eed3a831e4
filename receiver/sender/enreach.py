"""Enreach Voice webhooks on the wire: a JSON POST with X-Benemen-Event and X-Benemen-Token."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

from receiver.sender.base import WireRequest

__all__ = ["EnreachWire"]

EVENT_HEADER = "X-Benemen-Event"
TOKEN_HEADER = "X-Benemen-Token"  # noqa: S105 (a header name, not a secret)
CONTENT_TYPE = "application/json; charset=utf-8"


@dataclass(frozen=True, slots=True)
class EnreachWire:
    """The request Enreach sends for one event: POST, compact UTF-8 JSON, keep-alive.

    `secret` is the endpoint's Secret; without one the platform sends no token header.
    """

    provider: ClassVar[str] = "enreach"

    secret: str | None = field(default=None, repr=False)

    def build(
        self, url: str, payload: Mapping[str, Any], *, event_type: str | None = None
    ) -> WireRequest:
        """POST `payload` as JSON to `url`, typed by its `EventType` (`event_type` is unused)."""
        event_type = payload.get("EventType")
        if not isinstance(event_type, str) or not event_type:
            raise ValueError("an Enreach payload needs a non-empty string EventType")
        headers = [(EVENT_HEADER, event_type)]
        if self.secret:
            headers.append((TOKEN_HEADER, self.secret))
        headers += [("Content-Type", CONTENT_TYPE), ("Connection", "Keep-Alive")]
        event_id = payload.get("Id")
        return WireRequest(
            method="POST",
            url=url,
            headers=tuple(headers),
            body=orjson.dumps(payload if isinstance(payload, dict) else dict(payload)),
            event_type=event_type,
            event_id=str(event_id) if event_id is not None else None,
            sensitive=frozenset({TOKEN_HEADER.lower()}),
        )

    def forged(self) -> EnreachWire:
        """The same wire with a token no receiver configured with `secret` accepts."""
        return EnreachWire(secret=f"forged-{self.secret or ''}-not-the-secret")

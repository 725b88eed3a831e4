"""What the SQL backends share: the dedup digest, the layout of an event joined with one of
its deliveries, and how an admin reads the ids it is given."""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import blake2b
from typing import Any

from receiver.inbox.models import State, StoredEvent

__all__ = ["DELIVERY_COLUMNS", "EVENT_COLUMNS", "delivery", "digest", "event_ids"]

EVENT_COLUMNS = "id, source, dedup_key, event_type, order_key, payload, received_at"
DELIVERY_COLUMNS = "event_id, subscriber, state, attempts, next_attempt_at, last_error, finished_at"


def digest(source: str, dedup_key: str) -> bytes:
    """The 16 bytes an event is deduplicated by: BLAKE2b of its source and dedup key.

    A fixed-size key keeps the unique index small enough to stay in the page cache with
    millions of events kept (a 36-character GUID per entry did not); a collision needs
    about 2**64 events.
    """
    return blake2b(f"{source}\0{dedup_key}".encode(), digest_size=16).digest()


def delivery(event_row: Sequence[Any], row: Sequence[Any]) -> StoredEvent:
    """A `StoredEvent` from an events row (`EVENT_COLUMNS`) and a deliveries row
    (`DELIVERY_COLUMNS`)."""
    return StoredEvent(
        id=event_row[0],
        source=event_row[1],
        dedup_key=event_row[2],
        event_type=event_row[3],
        order_key=event_row[4],
        payload=bytes(event_row[5]),
        state=State(row[2]),
        attempts=row[3],
        received_at=event_row[6],
        next_attempt_at=row[4],
        last_error=row[5],
        finished_at=row[6],
        subscriber=row[1],
    )


def event_ids(ids: Sequence[str] | None) -> list[int] | None:
    """The ids among `ids` (opaque text to callers) that can be ids of an inbox; others match
    nothing. Longer than 18 digits is past a 64-bit integer, so no id either."""
    if ids is None:
        return None
    texts = (i.strip() for i in ids)
    return [int(t) for t in texts if t.isdigit() and t.isascii() and len(t) <= 18]

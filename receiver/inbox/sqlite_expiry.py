"""Payload and dead-letter retention on the SQLite inbox (`expire`), for the inbox's writer
thread and for `SqliteAdmin` alike.

A finished event past `payload_retention_days` keeps its row (source, dedup key, digest, type,
order key, times) so that a late retry of it is still recognised until `purge` deletes it at
`retention_days`; its payload becomes `ERASED` and its headers and error texts go. A scan reads
events by id from the oldest, the payload's length only (a blob's length is in its header), and
stops at the first event received after the cutoff.
"""

from __future__ import annotations

import sqlite3

from receiver.inbox.models import ERASED, DeliveryKey, State
from receiver.inbox.sqlite_schema import chunks, finished_before

__all__ = ["drop_dead", "erase_events", "scrub_chunk"]


def drop_dead(conn: sqlite3.Connection, cutoff: float) -> list[DeliveryKey]:
    """Discard the dead letters that became dead before `cutoff`; which they were."""
    rows = conn.execute(
        "UPDATE deliveries SET state = ? WHERE state = ? AND finished_at < ?"
        " RETURNING event_id, subscriber",
        (State.DISCARDED, State.DEAD, cutoff),
    ).fetchall()
    return sorted((int(event_id), str(subscriber)) for event_id, subscriber in rows)


def erase_events(conn: sqlite3.Connection, ids: list[int]) -> None:
    """Remove the payload, headers and error texts of events `ids` (their rows stay)."""
    for part in chunks(ids):
        marks = ",".join("?" * len(part))
        conn.execute(
            f"UPDATE events SET payload = ?, headers = NULL WHERE id IN ({marks})",  # noqa: S608 - placeholders
            (ERASED, *part),
        )
        conn.execute(
            f"UPDATE deliveries SET last_error = NULL WHERE event_id IN ({marks})",  # noqa: S608 - placeholders
            part,
        )
        conn.execute(
            f"UPDATE attempts SET error = NULL WHERE event_id IN ({marks})",  # noqa: S608 - placeholders
            part,
        )


def scrub_chunk(
    conn: sqlite3.Connection, after: int, chunk: int, cutoff: float
) -> tuple[int, int, bool]:
    """Erase the finished events received before `cutoff` among the `chunk` after id
    `after` whose payload is still there.

    Returns how many were erased, the last id looked at, and whether that was the end.
    """
    doomed, last, finished = finished_before(conn, after, chunk, cutoff, with_payload=True)
    erase_events(conn, doomed)
    return len(doomed), last, finished

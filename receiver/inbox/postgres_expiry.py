"""Payload and dead-letter retention on the PostgreSQL inbox (`expire`): the statements the
inbox (async) and `PostgresAdmin` (sync) both run.

As on SQLite (`receiver.inbox.sqlite_expiry`): dead letters past `dead_retention_days` are
discarded and reported; finished events past `payload_retention_days` keep their row, for
dedup until `purge`, but lose their payload, headers and error texts. The scan goes by id from
the oldest, a chunk per transaction, and stops at the first event received after the cutoff.
"""

from __future__ import annotations

__all__ = ["DROP_DEAD", "ERASE", "ERASE_COUNTS", "PAYLOADS", "SCRUB", "SCRUB_SCAN"]

DROP_DEAD = (
    "UPDATE receiver_deliveries SET state = 4 WHERE state = 3 AND finished_at < %s"
    " RETURNING event_id, subscriber"
)
"""Discard the dead letters that became dead before `%s`; which they were."""

SCRUB_SCAN = (
    "SELECT id, received_at, octet_length(payload) > 0 FROM receiver_events"
    " WHERE id > %(after)s ORDER BY id LIMIT %(chunk)s"
)
"""The next chunk of events by id, and whether each still has its payload."""

SCRUB = """
WITH doomed AS (
    SELECT e.id FROM receiver_events e
    WHERE e.id = ANY(%s) AND octet_length(e.payload) > 0
      AND NOT EXISTS (SELECT 1 FROM receiver_deliveries d
                      WHERE d.event_id = e.id AND d.state IN (0, 1, 3))
    FOR UPDATE
), erased AS (
    UPDATE receiver_events e SET payload = ''::bytea, headers = NULL
    FROM doomed WHERE e.id = doomed.id RETURNING e.id
), errors AS (
    UPDATE receiver_deliveries d SET last_error = NULL FROM erased WHERE d.event_id = erased.id
), attempts AS (
    UPDATE receiver_attempts a SET error = NULL FROM erased WHERE a.event_id = erased.id
)
SELECT count(*) FROM erased
"""
"""Erase the finished events among `%s` that still have their payload; how many."""

PAYLOADS = (
    "SELECT id, source, dedup_key, order_key, payload FROM receiver_events"
    " WHERE id > %s AND octet_length(payload) > 0 ORDER BY id LIMIT %s"
)
"""The next events that still have their payload (what `receiver inbox erase` searches)."""

ERASE_COUNTS = (
    "SELECT state, count(*) FROM receiver_deliveries WHERE event_id = ANY(%s) GROUP BY state"
)
"""The deliveries of the events `%s` by state, before an erasure."""

ERASE = """
WITH events AS (
    UPDATE receiver_events SET payload = ''::bytea, headers = NULL
    WHERE id = ANY(%(ids)s) RETURNING id
), deliveries AS (
    UPDATE receiver_deliveries
    SET last_error = NULL, owner = CASE WHEN state IN (0, 1, 3) THEN NULL ELSE owner END,
        state = CASE WHEN state IN (0, 1, 3) THEN 4 ELSE state END
    WHERE event_id = ANY(%(ids)s)
), attempts AS (
    UPDATE receiver_attempts SET error = NULL WHERE event_id = ANY(%(ids)s)
)
SELECT count(*) FROM events
"""
"""Erase the events `ids`: payload, headers and error texts gone, open and dead deliveries
discarded; their rows (and dedup keys) stay."""

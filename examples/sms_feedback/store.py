"""One SQLite table, keyed by call id: what is known of each call and what became of its SMS.

A row's `state` moves one way:

    open ──► due ──► sending ──► sent
      │        ▲        ├──► due again (the gateway was unreachable; later, same key)
      │        └────────┤
      ▼                 ├──► failed   (the gateway refused it, or too many tries)
    skipped             └──► unknown  (sending was cut short and the gateway cannot tell)

`open` while the call is not known to be answered and over; `skipped` for a caller who gets
nothing (hidden, internal). Every change is one statement guarded by the state it expects, so
two processes (a receiver and one waiting to take over) can share the file and still only one
of them claims a row. The claim (`sending`) is committed *before* the gateway is called: a
crash after it leaves the row `sending`, never `due`, so nothing is sent twice by mistake.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FeedbackStore", "Row"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback_sms (
    call_id     TEXT PRIMARY KEY,
    caller      TEXT,           -- the number to text; masked once the row is final
    queue       TEXT,           -- the name of the service pool that answered
    answered_at TEXT,           -- provider's Timestamp of the first QueueCallInUserConnected
    ended_at    TEXT,           -- provider's Timestamp of the last QueueCallInDisconnected
    state       TEXT NOT NULL DEFAULT 'open',
    due_at      REAL,           -- Unix time from which it may be sent (delay, quiet hours)
    attempts    INTEGER NOT NULL DEFAULT 0,
    claimed_at  REAL,
    sent_at     REAL,
    message_id  TEXT,           -- the gateway's id of the message
    note        TEXT,           -- why skipped, failed or unknown
    updated_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_sms_due ON feedback_sms (state, due_at);
"""

FINAL = ("sent", "failed", "unknown", "skipped")
"""States a row never leaves."""


@dataclass(frozen=True, slots=True)
class Row:
    """One call's row."""

    call_id: str
    caller: str | None
    queue: str | None
    answered_at: str | None
    ended_at: str | None
    state: str
    due_at: float | None
    attempts: int
    claimed_at: float | None
    sent_at: float | None
    message_id: str | None
    note: str | None
    updated_at: float

    @property
    def over_after_answer(self) -> bool:
        """Whether the call was answered and then ended (by the provider's timestamps)."""
        if self.answered_at is None or self.ended_at is None:
            return False
        return self.answered_at <= self.ended_at


class FeedbackStore:
    """The table in `path`; each call opens its own connection (any thread, any process)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30.0, isolation_level=None)) as db:
            db.row_factory = sqlite3.Row
            yield db

    def note(
        self,
        call_id: str,
        *,
        answered_at: str | None,
        ended_at: str | None,
        caller: str | None,
        queue: str | None,
        now: float,
    ) -> Row:
        """Record that the call was answered (`answered_at`) or ended (`ended_at`); its row.

        The earliest answer and the latest end are kept, so events arriving out of order, a
        call that rang in two pools, and a repeated event all leave the same row; the first
        caller number and pool name given are kept.
        """
        with self._connect() as db:
            db.execute(
                """
                INSERT INTO feedback_sms (call_id, caller, queue, answered_at, ended_at, updated_at)
                VALUES (:id, :caller, :queue, :answered, :ended, :now)
                ON CONFLICT (call_id) DO UPDATE SET
                    caller = coalesce(caller, excluded.caller),
                    queue = coalesce(queue, excluded.queue),
                    answered_at = min(coalesce(answered_at, excluded.answered_at),
                                      coalesce(excluded.answered_at, answered_at)),
                    ended_at = max(coalesce(ended_at, excluded.ended_at),
                                   coalesce(excluded.ended_at, ended_at)),
                    updated_at = excluded.updated_at
                """,
                {
                    "id": call_id,
                    "caller": caller or None,
                    "queue": queue,
                    "answered": answered_at,
                    "ended": ended_at,
                    "now": now,
                },
            )
            found = self._get(db, call_id)
        assert found is not None  # just written
        return found

    def schedule(self, call_id: str, due_at: float, now: float) -> bool:
        """Make an open row due at `due_at`; False when it was not open (already decided)."""
        return self._move(call_id, ("open",), "due", now, due_at=due_at)

    def skip(self, call_id: str, reason: str, masked: str, now: float) -> bool:
        """Decide an open row gets no SMS, keeping only the masked number."""
        return self._move(call_id, ("open",), "skipped", now, note=reason, caller=masked)

    def claim_due(self, now: float, limit: int = 20) -> list[Row]:
        """Take up to `limit` rows due by `now`: they become `sending`, committed at once."""
        with self._connect() as db:
            rows = db.execute(
                """
                UPDATE feedback_sms
                SET state = 'sending', claimed_at = :now, attempts = attempts + 1, updated_at = :now
                WHERE call_id IN (
                    SELECT call_id FROM feedback_sms
                    WHERE state = 'due' AND due_at <= :now ORDER BY due_at LIMIT :limit
                ) AND state = 'due'
                RETURNING *
                """,
                {"now": now, "limit": limit},
            ).fetchall()
        return [Row(**dict(row)) for row in rows]

    def sent(self, call_id: str, message_id: str, masked: str, now: float) -> bool:
        """The gateway took the message."""
        return self._move(
            call_id, ("sending",), "sent", now, message_id=message_id, sent_at=now, caller=masked
        )

    def failed(self, call_id: str, state: str, reason: str, masked: str, now: float) -> bool:
        """Give up on a claimed row for good (`failed` or `unknown`)."""
        return self._move(call_id, ("sending",), state, now, note=reason, caller=masked)

    def retry(self, call_id: str, due_at: float, reason: str, now: float) -> bool:
        """Put a claimed row back, due again at `due_at`."""
        return self._move(call_id, ("sending",), "due", now, due_at=due_at, note=reason)

    def stale_claims(self, older_than: float) -> list[Row]:
        """Rows left `sending` since before `older_than`: their sender stopped mid-send."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM feedback_sms WHERE state = 'sending' AND claimed_at < ?",
                (older_than,),
            ).fetchall()
        return [Row(**dict(row)) for row in rows]

    def rows(self) -> list[Row]:
        """Every row, oldest change first (for reports and tests)."""
        with self._connect() as db:
            found = db.execute("SELECT * FROM feedback_sms ORDER BY updated_at, call_id")
            return [Row(**dict(row)) for row in found.fetchall()]

    def _get(self, db: sqlite3.Connection, call_id: str) -> Row | None:
        row = db.execute("SELECT * FROM feedback_sms WHERE call_id = ?", (call_id,)).fetchone()
        return None if row is None else Row(**dict(row))

    def _move(
        self,
        call_id: str,
        expected: tuple[str, ...],
        state: str,
        now: float,
        **values: str | float | None,
    ) -> bool:
        columns = "".join(f", {name} = :{name}" for name in values)
        marks = ", ".join(f":s{n}" for n in range(len(expected)))
        params = {"id": call_id, "state": state, "now": now, **values}
        params |= {f"s{n}": value for n, value in enumerate(expected)}
        with self._connect() as db:
            cursor = db.execute(
                f"UPDATE feedback_sms SET state = :state, updated_at = :now{columns} "  # noqa: S608 (column names are ours)
                f"WHERE call_id = :id AND state IN ({marks})",
                params,
            )
            return cursor.rowcount == 1

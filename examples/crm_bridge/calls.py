"""The queue calls an agent has answered and that have not ended yet, kept in a SQLite file.

Enreach says who answered a queue call (`QueueCallInUserConnected`) in one event and that it
ended (`QueueCallInDisconnected`) in a later one; the CRM activity needs both. The receiver
hands a subscriber the events of one call in order, one at a time, so the bridge writes the
answer down at the first and reads it back at the second. A file, not a dict: a worker that
restarts between the two still knows the call was answered.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = ["Answer", "AnsweredCalls"]


@dataclass(frozen=True, slots=True)
class Answer:
    """Who answered a call, and when."""

    agent: str | None
    answered_at: datetime | None


class AnsweredCalls:
    """Answered calls by call id, in the SQLite file at `path` (made if missing)."""

    def __init__(self, path: Path) -> None:
        # Each statement is a few microseconds on a local file: run on the event loop.
        self.db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS answered"
            " (call_id TEXT PRIMARY KEY, agent TEXT, answered_at TEXT)"
        )

    def remember(self, call_id: str, answer: Answer) -> None:
        """Note that `call_id` was answered (again: a transfer's last agent wins)."""
        when = answer.answered_at.isoformat() if answer.answered_at else None
        self.db.execute(
            "INSERT OR REPLACE INTO answered VALUES (?, ?, ?)", (call_id, answer.agent, when)
        )

    def recall(self, call_id: str) -> Answer | None:
        """How `call_id` was answered; None if it was not (or is forgotten)."""
        row = self.db.execute(
            "SELECT agent, answered_at FROM answered WHERE call_id = ?", (call_id,)
        ).fetchone()
        if row is None:
            return None
        agent, when = row
        return Answer(agent, datetime.fromisoformat(when) if when else None)

    def forget(self, call_id: str) -> None:
        """Drop `call_id` once its activity is in the CRM."""
        self.db.execute("DELETE FROM answered WHERE call_id = ?", (call_id,))

"""Looking inside an inbox from another process: the `receiver inbox` commands."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from receiver.exceptions import StorageError
from receiver.inbox.models import State, StoredEvent
from receiver.inbox.sqlite import COLUMNS, connect, missing_folder, row_to_event

__all__ = ["InboxAdmin", "InboxStats"]


@dataclass(frozen=True, slots=True)
class InboxStats:
    """Counts by state and what is waiting."""

    path: str
    file_bytes: int
    by_state: dict[str, int]
    by_source: dict[str, int]
    oldest_open_age: float | None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "path": self.path,
            "file_bytes": self.file_bytes,
            "by_state": self.by_state,
            "by_source": self.by_source,
            "oldest_open_age_seconds": self.oldest_open_age,
        }


class InboxAdmin:
    """Synchronous queries and the replay of dead letters."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            missing = missing_folder(path)
            raise StorageError(f"no inbox at {path}" + (f": {missing}" if missing else ""))
        self.path = path
        self.conn = connect(path, busy_timeout=5.0)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def stats(self) -> InboxStats:
        """Counts by state and source, and the age of the oldest unfinished event."""
        by_state = {s.label: 0 for s in State}
        for state, count in self.conn.execute("SELECT state, count(*) FROM events GROUP BY state"):
            by_state[State(state).label] = count
        by_source = dict(
            self.conn.execute("SELECT source, count(*) FROM events GROUP BY source").fetchall()
        )
        oldest = self.conn.execute(
            "SELECT min(received_at) FROM events WHERE state < 2"
        ).fetchone()[0]
        size = sum(
            p.stat().st_size
            for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
            if p.exists()
        )
        return InboxStats(
            path=str(self.path),
            file_bytes=size,
            by_state=by_state,
            by_source=by_source,
            oldest_open_age=None if oldest is None else max(0.0, time.time() - oldest),
        )

    def list(
        self,
        *,
        state: State | None = None,
        source: str | None = None,
        event_type: str | None = None,
        limit: int = 50,
    ) -> list[StoredEvent]:
        """The newest events matching the filters, newest first."""
        where: list[str] = []
        params: list[Any] = []
        if state is not None:
            where.append("state = ?")
            params.append(int(state))
        if source is not None:
            where.append("source = ?")
            params.append(source)
        if event_type is not None:
            where.append("event_type = ?")
            params.append(event_type)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self.conn.execute(
            f"SELECT {COLUMNS} FROM events {clause} ORDER BY id DESC LIMIT ?",  # noqa: S608 - fixed fragments, values bound
            [*params, limit],
        ).fetchall()
        return [row_to_event(r) for r in rows]

    def get(self, event_id: int) -> StoredEvent | None:
        """One event by its inbox id."""
        row = self.conn.execute(
            f"SELECT {COLUMNS} FROM events WHERE id = ?",  # noqa: S608 - fixed fragment
            (event_id,),
        ).fetchone()
        return None if row is None else row_to_event(row)

    def replay(self, event_ids: Sequence[int] | None) -> int:
        """Make dead letters pending again (all of them when `event_ids` is None)."""
        now = time.time()
        update = (
            "UPDATE events SET state = 0, attempts = 0, next_attempt_at = ?, finished_at = NULL"
            " WHERE state = 3"
        )
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            if event_ids is None:
                count = self.conn.execute(update, (now,)).rowcount
            else:
                count = 0
                for event_id in event_ids:
                    count += self.conn.execute(update + " AND id = ?", (now, event_id)).rowcount
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return int(count)

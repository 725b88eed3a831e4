"""Each agent's states as intervals in SQLite: what the handlers write and the dashboard reads.

An agent's intervals cover its time without gaps from its first event on: entering a state at
`t` ends the interval that holds `t` there and starts one in the new state, which runs until
the next interval's start (or is still open). So an event that arrives late (a retry, another
provider's clock) splits the interval it falls in and lands in its place; an event repeated or
naming the state the agent is already in changes nothing; two states at the same second keep
the one that arrived last (the receiver delivers one agent's events in order). Times are UTC
epoch seconds. Logged-out time is an interval too (`LOGGED_OUT`), kept out of the report.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LOGGED_OUT", "Call", "Interval", "Now", "Store"]

LOGGED_OUT = "LOGGED OUT"
"""The state of an agent between a logout and the next login; not counted as time in a state."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
    agent TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    name TEXT,
    availability TEXT
);
CREATE TABLE IF NOT EXISTS intervals (
    agent TEXT NOT NULL REFERENCES agents (agent),
    state TEXT NOT NULL,
    start REAL NOT NULL,
    end REAL,
    PRIMARY KEY (agent, start)
);
CREATE INDEX IF NOT EXISTS intervals_by_time ON intervals (start, end);
CREATE TABLE IF NOT EXISTS calls (
    call_id TEXT NOT NULL,
    agent TEXT NOT NULL REFERENCES agents (agent),
    start REAL NOT NULL,
    seconds INTEGER NOT NULL,
    PRIMARY KEY (call_id, agent)
);
"""


@dataclass(frozen=True, slots=True)
class Interval:
    """Time an agent spent in one state; `end` None while the agent is still in it."""

    agent: str
    state: str
    start: float
    end: float | None


@dataclass(frozen=True, slots=True)
class Now:
    """An agent's current state: since when, and its name when known."""

    agent: str
    provider: str
    name: str | None
    state: str
    since: float


@dataclass(frozen=True, slots=True)
class Call:
    """A call an agent answered (from an Engage end call event)."""

    call_id: str
    agent: str
    start: float
    seconds: int


class Store:
    """The example's SQLite file; one short connection per operation, so processes can share it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once so two writers never interleave."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- writing -----------------------------------------------------------------------------

    def enter(self, agent: str, provider: str, state: str, at: float, name: str | None) -> None:
        """Record that `agent` entered `state` at `at` (see the module's docstring)."""
        with self._writing() as db:
            _remember(db, agent, provider, name)
            _enter(db, agent, state, at)

    def availability(self, agent: str) -> str | None:
        """The availability last recorded for an Enreach user (None before any)."""
        with self._connect() as db:
            row = db.execute("SELECT availability FROM agents WHERE agent = ?", (agent,)).fetchone()
        return None if row is None else row[0]

    def set_availability(
        self, agent: str, provider: str, availability: str, name: str | None
    ) -> None:
        """Remember an Enreach user's availability, for the state after a call ends."""
        with self._writing() as db:
            _remember(db, agent, provider, name)
            db.execute("UPDATE agents SET availability = ? WHERE agent = ?", (availability, agent))

    def add_call(self, call: Call, provider: str, name: str | None) -> None:
        """Record an answered call once (a repeated end call event changes nothing)."""
        with self._writing() as db:
            _remember(db, call.agent, provider, name)
            db.execute(
                "INSERT OR IGNORE INTO calls (call_id, agent, start, seconds) VALUES (?, ?, ?, ?)",
                (call.call_id, call.agent, call.start, call.seconds),
            )

    # -- reading -----------------------------------------------------------------------------

    def current(self) -> list[Now]:
        """Every agent's latest state, by agent."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT a.agent, a.provider, a.name, i.state, i.start FROM agents a"
                " JOIN intervals i ON i.agent = a.agent AND i.start ="
                " (SELECT MAX(start) FROM intervals WHERE agent = a.agent) ORDER BY a.agent"
            ).fetchall()
        return [Now(*row) for row in rows]

    def state_of(self, agent: str) -> str | None:
        """The agent's latest state (None before its first)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT state FROM intervals WHERE agent = ? ORDER BY start DESC LIMIT 1", (agent,)
            ).fetchone()
        return None if row is None else str(row[0])

    def overlapping(self, low: float, high: float) -> list[Interval]:
        """Intervals that overlap [low, high), by agent and start (not clipped)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT agent, state, start, end FROM intervals"
                " WHERE start < ? AND (end IS NULL OR end > ?) ORDER BY agent, start",
                (high, low),
            ).fetchall()
        return [Interval(*row) for row in rows]

    def calls(self, low: float, high: float) -> list[Call]:
        """Answered calls that started in [low, high)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT call_id, agent, start, seconds FROM calls"
                " WHERE start >= ? AND start < ? ORDER BY start",
                (low, high),
            ).fetchall()
        return [Call(*row) for row in rows]


def _remember(db: sqlite3.Connection, agent: str, provider: str, name: str | None) -> None:
    db.execute(
        "INSERT INTO agents (agent, provider, name) VALUES (?, ?, ?) ON CONFLICT (agent)"
        " DO UPDATE SET name = COALESCE(excluded.name, agents.name)",
        (agent, provider, name),
    )


def _enter(db: sqlite3.Connection, agent: str, state: str, at: float) -> None:
    holder = db.execute(
        "SELECT state, start, end FROM intervals WHERE agent = ? AND start <= ?"
        " ORDER BY start DESC LIMIT 1",
        (agent, at),
    ).fetchone()
    if holder is None:  # before everything known of the agent: up to its first interval
        first = db.execute("SELECT MIN(start) FROM intervals WHERE agent = ?", (agent,)).fetchone()[
            0
        ]
        db.execute(
            "INSERT INTO intervals (agent, state, start, end) VALUES (?, ?, ?, ?)",
            (agent, state, at, first),
        )
    else:
        held, start, end = holder
        if held == state:
            return
        if start == at:
            db.execute(
                "UPDATE intervals SET state = ? WHERE agent = ? AND start = ?", (state, agent, at)
            )
        else:
            db.execute(
                "UPDATE intervals SET end = ? WHERE agent = ? AND start = ?", (at, agent, start)
            )
            db.execute(
                "INSERT INTO intervals (agent, state, start, end) VALUES (?, ?, ?, ?)",
                (agent, state, at, end),
            )
    _merge_around(db, agent, at)


def _merge_around(db: sqlite3.Connection, agent: str, at: float) -> None:
    """Join the interval starting at `at` with a neighbour in the same state."""
    rows = db.execute(
        "SELECT state, start, end FROM intervals WHERE agent = ? AND (start = ? OR end = ?"
        " OR start = (SELECT end FROM intervals WHERE agent = ? AND start = ?)) ORDER BY start",
        (agent, at, at, agent, at),
    ).fetchall()
    for (state, start, _), (next_state, next_start, next_end) in itertools.pairwise(rows):
        if state == next_state:
            db.execute("DELETE FROM intervals WHERE agent = ? AND start = ?", (agent, next_start))
            db.execute(
                "UPDATE intervals SET end = ? WHERE agent = ? AND start = ?",
                (next_end, agent, start),
            )
            _merge_around(db, agent, start)
            return

"""What the dashboard and the CSV export show for one day, computed from the stored intervals.

A day is midnight to midnight in `WFM_ADHERENCE_TIME_ZONE` (UTC by default). Each interval
counts for the part of it inside the day; one still open counts up to now (or to the day's
end, for a past day). Logged-out time is left out.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from examples.wfm_adherence.store import LOGGED_OUT, Interval, Now, Store

__all__ = ["CSV_COLUMNS", "AgentDay", "Segment", "day_bounds", "day_report", "export_csv"]

CSV_COLUMNS = ("agent", "day", "state", "seconds")


@dataclass(frozen=True, slots=True)
class Segment:
    """The part of an interval inside the day, as fractions of the day for the chart."""

    state: str
    start: float
    end: float
    left: float
    width: float


@dataclass(frozen=True, slots=True)
class AgentDay:
    """One agent's day: current state, time per state, the timeline, calls answered."""

    agent: str
    name: str | None
    provider: str
    state: str | None
    since: float | None
    segments: list[Segment]
    seconds: dict[str, int]
    calls: int
    talk_seconds: int


def day_bounds(day: date, zone: tzinfo) -> tuple[float, float]:
    """Epoch seconds of the day's first moment and of the next day's."""
    first = datetime.combine(day, time(), zone)
    after = datetime.combine(day + timedelta(days=1), time(), zone)
    return first.timestamp(), after.timestamp()


def _segments(intervals: list[Interval], low: float, high: float, now: float) -> list[Segment]:
    segments = []
    for interval in intervals:
        end = interval.end if interval.end is not None else max(now, interval.start)
        start, end = max(interval.start, low), min(end, high)
        if end <= start or interval.state == LOGGED_OUT:
            continue
        span = high - low
        segments.append(
            Segment(interval.state, start, end, (start - low) / span, (end - start) / span)
        )
    return segments


def day_report(store: Store, day: date, zone: tzinfo, now: float) -> list[AgentDay]:
    """Every agent seen on `day` or still in a state now, by agent."""
    low, high = day_bounds(day, zone)
    by_agent: dict[str, list[Interval]] = defaultdict(list)
    for interval in store.overlapping(low, high):
        by_agent[interval.agent].append(interval)
    calls: dict[str, list[int]] = defaultdict(list)
    for call in store.calls(low, high):
        calls[call.agent].append(call.seconds)
    agents: list[AgentDay] = []
    for current in store.current():
        segments = _segments(by_agent.get(current.agent, []), low, high, now)
        if not segments and current.state == LOGGED_OUT and current.agent not in calls:
            continue
        agents.append(_agent_day(current, segments, calls.get(current.agent, [])))
    return agents


def _agent_day(current: Now, segments: list[Segment], calls: list[int]) -> AgentDay:
    seconds: dict[str, float] = defaultdict(float)
    for segment in segments:
        seconds[segment.state] += segment.end - segment.start
    return AgentDay(
        agent=current.agent,
        name=current.name,
        provider=current.provider,
        state=current.state,
        since=current.since,
        segments=segments,
        seconds={state: round(total) for state, total in sorted(seconds.items())},
        calls=len(calls),
        talk_seconds=sum(calls),
    )


def export_csv(agents: list[AgentDay], day: date) -> str:
    """`agent,day,state,seconds`: one row per agent and state with time in it that day."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for agent in agents:
        for state, seconds in agent.seconds.items():
            writer.writerow((agent.agent, day.isoformat(), state, seconds))
    return out.getvalue()

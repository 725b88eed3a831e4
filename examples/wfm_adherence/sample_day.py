"""Known agent events as the platforms send them: payload builders, and the demo's day.

`engage_state`, `engage_end_call`, `enreach_availability` and `enreach_status` build the fields
of one event, in the shape `receiver.sender`'s `WfmWire` and `EnreachWire` put on the wire
(the same shapes `receiver send --provider engage_wfm` and `receiver send` do). `demo_day`
is the morning `python -m examples.wfm_adherence` sends: four agents, two per platform, at
times relative to now, so the dashboard shows each in a state right now.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "ACCOUNT",
    "ORGANIZATION",
    "Agent",
    "Planned",
    "demo_day",
    "engage_end_call",
    "engage_state",
    "enreach_availability",
    "enreach_status",
]

ACCOUNT = "40000001"
"""The demo's Engage account id."""
ORGANIZATION = "7c1e3b6a-0d1f-4a8e-9b1e-3f0c2d4e5a6b"
"""The demo's Enreach organization id."""


@dataclass(frozen=True, slots=True)
class Agent:
    """An agent of one platform: Engage `agent_id` or Enreach `UserId`, and a login name."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Planned:
    """One event to send: to which endpoint (`agents`, `calls`, `enreach`) and its fields."""

    endpoint: str
    at: datetime
    payload: dict[str, Any]


def _wall(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S}"


def engage_state(
    agent: Agent, state: str, at: datetime, previous: str | None = None, seconds: int = 0
) -> dict[str, Any]:
    """An Engage WFM agent event: LOGIN, LOGOUT or a state entered at `at` (UTC wall time)."""
    fields: dict[str, Any] = {
        "agent_id": agent.id,
        "username": agent.name,
        "account_id": ACCOUNT,
        "agent_login_id": "7" + agent.id,
        "external_agent_id": "",
        "source_ip": "198.51.100.20",
        "event_type": state,
        "duration": str(seconds),
        "date_time": _wall(at),
    }
    if state not in ("LOGIN", "LOGOUT"):
        fields |= {
            "prev_state": previous or "",
            "prev_aux_state": (previous or "").title(),
            "event_aux_type": state.title(),
            "pending_disp": "false",
        }
    return fields


def engage_end_call(agent: Agent, call_id: str, start: datetime, seconds: int) -> dict[str, Any]:
    """An Engage end call event for an inbound call `agent` answered."""
    return {
        "call_id": call_id,
        "event_type": "ACD-CALL",
        "call_state": "ANSWERED",
        "call_start": _wall(start),
        "call_duration": str(seconds),
        "queue_duration": "12",
        "account_id": ACCOUNT,
        "gate_id": "3101",
        "gate_name": "Customer Care",
        "dnis": "+18005550100",
        "ani": "+15550201234",
        "agent_disposition": "Resolved",
        "recording_url": f"https://recordings.example.com/engage/{call_id}.wav",
        "agent_id": agent.id,
        "username": agent.name,
    }


def _enreach(event_type: str, agent: Agent, at: datetime, **fields: Any) -> dict[str, Any]:
    stamp = f"{at.astimezone(UTC):%Y-%m-%dT%H:%M:%S}.0000000"
    return {
        "Id": str(uuid.uuid4()),
        "EventType": event_type,
        "Timestamp": stamp,
        "RootEntityType": "Organization",
        "RootEntityId": ORGANIZATION,
        "EntityType": "User",
        "EntityId": agent.id,
        "OrganizationId": ORGANIZATION,
        "UserId": agent.id,
        **fields,
    }


def enreach_availability(agent: Agent, availability: str, at: datetime) -> dict[str, Any]:
    """An Enreach `UserAvailability`: Available, Busy, DoNotDisturb or OffWork from `at`."""
    stamp = f"{at.astimezone(UTC):%Y-%m-%dT%H:%M:%S}"
    return _enreach(
        "UserAvailability",
        agent,
        at,
        Availability=availability,
        StartTime=stamp,
        EndTime="9999-12-31T23:59:59.9999999",
        EventSource="User",
        Note="",
        ProfileId="0f5a2c1e-6b7d-4e3f-8a9b-1c2d3e4f5a6b",
        UserName=agent.name,
    )


def enreach_status(agent: Agent, talking: bool, at: datetime) -> dict[str, Any]:
    """An Enreach `UserStatus`: whether the user is on a call from `at`."""
    return _enreach(
        "UserStatus",
        agent,
        at,
        ActiveQueueId=None,
        ActiveQueues=1,
        Available=True,
        CanBeAllocatedTo=not talking,
        ParkedCalls=0,
        Schedule=True,
        ServiceTerminals=1,
        Serving=True,
        ServingCallback=False,
        Talking=talking,
        WrapUpEnd=None,
    )


ANA = Agent("1001", "ana.alves@example.com")
BEN = Agent("1002", "ben.berg@example.com")
EEVA = Agent("5d0c9a8e-1b2f-4c3d-9e4f-a1b2c3d4e5f6", "eeva.esko@example.com")
OLLI = Agent("8e7f6a5b-4c3d-4b1a-8f9e-0d1c2b3a4f5e", "olli.oja@example.com")


def demo_day(now: datetime) -> list[Planned]:
    """The demo's events, in the order they happened, ending at `now`."""

    def ago(minutes: int) -> datetime:
        return now - timedelta(minutes=minutes)

    def engage(agent: Agent, steps: list[tuple[int, str]]) -> list[Planned]:
        planned, previous, since = [], None, None
        for minutes, state in steps:
            at = ago(minutes)
            seconds = int((at - since).total_seconds()) if since else 0
            planned.append(Planned("agents", at, engage_state(agent, state, at, previous, seconds)))
            previous, since = state, at
        return planned

    ana = [(150, "LOGIN"), (150, "AVAILABLE"), (140, "ENGAGED"), (134, "WORKING")]
    ana += [(133, "AVAILABLE"), (90, "ON BREAK"), (75, "AVAILABLE"), (8, "ENGAGED")]
    events = engage(ANA, ana)
    events.append(Planned("calls", ago(134), engage_end_call(ANA, "900100", ago(140), 360)))
    events += engage(
        BEN,
        [(180, "LOGIN"), (180, "AVAILABLE"), (95, "TRAINING"), (65, "AVAILABLE"), (40, "LUNCH")],
    )
    events += [
        Planned("enreach", ago(120), enreach_availability(EEVA, "Available", ago(120))),
        Planned("enreach", ago(110), enreach_status(EEVA, True, ago(110))),
        Planned("enreach", ago(100), enreach_status(EEVA, False, ago(100))),
        Planned("enreach", ago(20), enreach_availability(EEVA, "DoNotDisturb", ago(20))),
        Planned("enreach", ago(60), enreach_availability(OLLI, "Available", ago(60))),
        Planned("enreach", ago(5), enreach_status(OLLI, True, ago(5))),
    ]
    return sorted(events, key=lambda planned: planned.at)

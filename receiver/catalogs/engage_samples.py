"""Realistic RingCentral Engage Voice payloads: WFM agent and end call events, web service calls.

WFM samples hold the fields the platform sends (all text; `external_agent_id` may be None),
keyed by the WFM event type the receiver stores them under. The web service sample fills the
JSON template of the Engage documentation (`agentId`, `agentUsername`, ...) plus `uii`. The
same seed gives the same payload.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

__all__ = [
    "WEB_SERVICE_SAMPLE_TYPES",
    "WEB_SERVICE_TEMPLATE",
    "WFM_SAMPLE_TYPES",
    "Agent",
    "end_call_fields",
    "make_agent",
    "on_call_fields",
    "segment_fields",
    "state_fields",
    "web_service_sample",
    "wfm_sample",
    "wfm_time",
]

WFM_SAMPLE_TYPES: tuple[str, ...] = ("AgentLogin", "AgentLogout", "AgentState", "EndCall")
WEB_SERVICE_SAMPLE_TYPES: tuple[str, ...] = ("CallDetails",)

WEB_SERVICE_TEMPLATE: dict[str, str] = {
    "agentId": "#agent_id#",
    "agentUsername": "#agent_username#",
    "ani": "#ani#",
    "dnis": "#dnis#",
    "callStart": "#call_start#",
    "duration": "#duration#",
    "recordingUrl": "#recording_url#",
}
"""The JSON body template of the Engage Web Services documentation, tags unsubstituted."""

_FIRST = ("jane", "omar", "li", "maria", "kofi", "anna", "raj", "sofia", "tom", "yuki")
_LAST = ("doe", "haddad", "wei", "garcia", "mensah", "kowalski", "patel", "rossi", "lee")
_STATES = ("ON BREAK", "LUNCH", "TRAINING", "AWAY", "WORKING", "ENGAGED", "TRANSITION")
_RECORDINGS = "https://recordings.example.com/engage/"


class Agent:
    """An Engage agent as the WFM events describe them."""

    def __init__(self, rng: random.Random, account_id: str) -> None:
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        self.agent_id = str(rng.randint(100_000, 999_999))
        self.username = f"{first}.{last}{rng.randint(1, 99)}@example.com"
        self.first_name, self.last_name = first.title(), last.title()
        self.agent_login_id = str(rng.randint(1_000_000, 9_999_999))
        self.account_id = account_id
        self.agent_phone = f"+1555010{rng.randint(0, 9999):04d}"
        self.source_ip = f"198.51.100.{rng.randint(1, 254)}"
        self.external_agent_id = f"WFM-{rng.randint(1000, 9999)}" if rng.random() < 0.7 else None

    def login_fields(self) -> dict[str, str | None]:
        """The fields LOGIN, LOGOUT and state events share."""
        return {
            "external_agent_id": self.external_agent_id,
            "agent_login_id": self.agent_login_id,
            "account_id": self.account_id,
            "agent_id": self.agent_id,
            "agent_phone": self.agent_phone,
            "username": self.username,
            "source_ip": self.source_ip,
        }


def make_agent(rng: random.Random, account_id: str | None = None) -> Agent:
    """A new agent (in `account_id`, or a new account)."""
    return Agent(rng, account_id or str(rng.randint(10_000_000, 99_999_999)))


def wfm_time(moment: datetime) -> str:
    """A time as WFM writes it: `2020-06-30 19:44:01`, no zone."""
    return f"{moment:%Y-%m-%d %H:%M:%S}"


def _rng(kind: str, seed: int | None) -> random.Random:
    # S311: samples need variety and repeatability, not secrecy.
    return random.Random(f"{kind}:{seed}") if seed is not None else random.Random()  # noqa: S311


def _apply(payload: dict[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    by_lower = {key.lower(): key for key in payload}
    for key, value in (overrides or {}).items():
        payload[by_lower.get(key.lower(), key)] = value
    return payload


def wfm_sample(
    event_type: str, *, seed: int | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One WFM event of `event_type` (`AgentLogin`, `AgentLogout`, `AgentState`, `EndCall`).

    Raises ValueError for another type.
    """
    if event_type not in WFM_SAMPLE_TYPES:
        raise ValueError(f"not a WFM event type: {event_type!r}")
    rng = _rng(event_type, seed)
    agent = make_agent(rng)
    now = datetime(2025, 1, 1, 8) + timedelta(
        days=rng.randrange(365), seconds=rng.randrange(9 * 3600)
    )
    if event_type == "EndCall":
        return _apply(end_call_fields(rng, agent, now, answered=rng.random() < 0.8), overrides)
    if event_type in ("AgentLogin", "AgentLogout"):
        payload = {
            **agent.login_fields(),
            "event_type": "LOGIN" if event_type == "AgentLogin" else "LOGOUT",
            "duration": "0" if event_type == "AgentLogin" else str(rng.randint(600, 30000)),
            "date_time": wfm_time(now),
        }
        return _apply(payload, overrides)
    state = rng.choice(_STATES)
    payload = state_fields(agent, now, state, "AVAILABLE", rng.randint(5, 900))
    if state in ("ENGAGED", "WORKING"):
        payload |= on_call_fields(rng)
    return _apply(payload, overrides)


def state_fields(
    agent: Agent,
    at: datetime,
    state: str,
    previous: str,
    seconds_in_previous: int,
    *,
    aux: str | None = None,
    previous_aux: str | None = None,
) -> dict[str, str | None]:
    """An agent state event: `agent` left `previous` for `state` at `at`."""
    return {
        "agent_id": agent.agent_id,
        "prev_state": previous,
        "prev_aux_state": previous_aux or previous.title(),
        "agent_phone": agent.agent_phone,
        "source_ip": agent.source_ip,
        "external_agent_id": agent.external_agent_id,
        "duration": str(seconds_in_previous),
        "agent_login_id": agent.agent_login_id,
        "account_id": agent.account_id,
        "event_type": state,
        "event_aux_type": aux or state.title(),
        "date_time": wfm_time(at),
        "pending_disp": "false",
        "username": agent.username,
    }


def on_call_fields(rng: random.Random, *, call_id: str | None = None) -> dict[str, str]:
    """The fields a state event carries while the agent is on a call."""
    outbound = rng.random() < 0.3
    return {
        "call_id": call_id or str(rng.randint(10**11, 10**12 - 1)),
        "call_source_id": str(rng.randint(1000, 9999)),
        "call_source_name": "Outbound Sales" if outbound else "Customer Care",
        "dnis": f"+1800555{rng.randint(0, 9999):04d}",
        "call_type": "VPD" if outbound else "ACD",
    }


def end_call_fields(
    rng: random.Random,
    agent: Agent | None,
    start: datetime,
    *,
    answered: bool = True,
    call_id: str | None = None,
    outbound: bool = False,
    seconds: int | None = None,
) -> dict[str, str | None]:
    """An end call event for a call that started at `start` (answered by `agent`)."""
    call = call_id or str(rng.randint(10**11, 10**12 - 1))
    duration = seconds if seconds is not None else rng.randint(30, 900)
    if outbound:
        state = "ANSWERED" if answered else rng.choice(("ABANDONED", "MACHINE"))
    else:
        state = "ANSWERED" if answered else rng.choice(("ABANDON", "DEFLECTED"))
    fields: dict[str, str | None] = {
        "recording_url": f"{_RECORDINGS}{call}.wav" if answered else "",
        "queue_duration": str(0 if outbound else rng.randint(0, 240)),
        "agent_disposition": rng.choice(("Resolved", "Callback", "Sale")) if answered else "",
        "gate_name": "Outbound Sales" if outbound else "Customer Care",
        "call_state": state,
        "call_duration": str(duration if answered else 0),
        "call_id": call,
        "account_id": agent.account_id if agent else str(rng.randint(10**7, 10**8 - 1)),
        "event_type": "VPD-CALL" if outbound else "ACD-CALL",
        "gate_id": str(rng.randint(10_000, 99_999)),
        "call_start": wfm_time(start),
        "dnis": f"+1800555{rng.randint(0, 9999):04d}",
        "ani": f"+1555020{rng.randint(0, 9999):04d}",
    }
    if answered and agent is not None:
        fields |= {
            "agent_id": agent.agent_id,
            "external_agent_id": agent.external_agent_id,
            "username": agent.username,
        }
    return fields


def web_service_sample(
    event_type: str = "CallDetails",
    *,
    seed: int | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The documentation's JSON template filled in for one agent segment, plus `uii`."""
    if event_type not in WEB_SERVICE_SAMPLE_TYPES:
        raise ValueError(f"not a web service sample: {event_type!r}")
    rng = _rng(event_type, seed)
    agent = make_agent(rng)
    start = datetime(2025, 1, 1, 8) + timedelta(
        days=rng.randrange(365), seconds=rng.randrange(9 * 3600)
    )
    uii = f"{start:%Y%m%d%H%M%S}{rng.randint(0, 999_999):06d}"
    return _apply(segment_fields(rng, agent, uii, start, rng.randint(20, 900)), overrides)


def segment_fields(
    rng: random.Random, agent: Agent, uii: str, start: datetime, seconds: int
) -> dict[str, str]:
    """What the documented template sends for `agent`'s segment of call `uii`."""
    segment = rng.randint(1000, 9999)
    return {
        "agentId": agent.agent_id,
        "agentUsername": agent.username,
        "ani": f"+1555020{rng.randint(0, 9999):04d}",
        "dnis": f"+1800555{rng.randint(0, 9999):04d}",
        "callStart": f"{start:%Y-%m-%d %H:%M:%S}.{rng.randint(0, 9999):04d}",
        "duration": str(seconds),
        "recordingUrl": f"{_RECORDINGS}{uii}-{segment}.wav",
        "uii": uii,
    }

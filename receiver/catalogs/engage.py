"""RingCentral Engage Voice as plain data: the WFM Generic HTTP fields and the Web Services tags.

Sources, handlers, samples and docs read these tables; nothing here parses a request.
"""

from __future__ import annotations

import re

__all__ = [
    "AGENT_FIELDS",
    "AGENT_STATES",
    "CALL_FIELDS",
    "CALL_STATES",
    "CALL_TYPES",
    "DEFAULT_NAMES",
    "END_CALL_FIELDS",
    "END_CALL_TYPES",
    "LITERAL_TAG",
    "LOGIN_FIELDS",
    "TRIGGERS",
    "WEB_SERVICE_FIELDS",
    "WEB_SERVICE_TAGS",
    "WFM_EVENT_TYPES",
    "normalized_name",
]

# -- Workforce Management "Generic HTTP" ----------------------------------------------------

AGENT_FIELDS: tuple[str, ...] = (
    "agent_id",
    "prev_state",
    "prev_aux_state",
    "agent_phone",
    "source_ip",
    "external_agent_id",
    "duration",
    "agent_login_id",
    "account_id",
    "event_type",
    "event_aux_type",
    "date_time",
    "pending_disp",
    "username",
)
"""Every agent state event carries these (`external_agent_id` may be null)."""

CALL_FIELDS: tuple[str, ...] = (
    "call_id",
    "call_source_id",
    "call_source_name",
    "dnis",
    "call_type",
)
"""Added to an agent state event while the agent is on a call."""

LOGIN_FIELDS: tuple[str, ...] = (
    "external_agent_id",
    "duration",
    "agent_login_id",
    "account_id",
    "event_type",
    "agent_id",
    "date_time",
    "agent_phone",
    "username",
    "source_ip",
)
"""What a LOGIN or LOGOUT event carries."""

END_CALL_FIELDS: tuple[str, ...] = (
    "recording_url",
    "queue_duration",
    "agent_disposition",
    "gate_name",
    "call_state",
    "call_duration",
    "call_id",
    "account_id",
    "event_type",
    "gate_id",
    "call_start",
    "dnis",
    "ani",
    "agent_id",
    "external_agent_id",
    "username",
)
"""What an end call event carries; the last three only when an agent answered."""

AGENT_STATES: tuple[str, ...] = (
    "LOGIN",
    "LOGOUT",
    "AVAILABLE",
    "TRANSITION",
    "ENGAGED",
    "WORKING",
    "LUNCH",
    "ON BREAK",
    "TRAINING",
    "AWAY",
)
"""The documented values of an agent event's `event_type`; accounts add custom ones."""

END_CALL_TYPES: tuple[str, ...] = ("ACD-CALL", "VPD-CALL")
"""The `event_type` of end call events: inbound (ACD) and outbound (VPD)."""

CALL_TYPES: tuple[str, ...] = ("ACD", "VPD")
"""An agent state event's `call_type`: inbound (ACD) or outbound dialer (VPD)."""

CALL_STATES: tuple[str, ...] = ("ANSWERED", "ABANDON", "ABANDONED", "DEFLECTED", "MACHINE")
"""End call `call_state`: inbound DEFLECTED, ANSWERED, ABANDON; outbound ANSWERED, ABANDONED,
MACHINE."""

WFM_EVENT_TYPES: tuple[str, ...] = ("AgentLogin", "AgentLogout", "AgentState", "EndCall")
"""The event types the receiver stores WFM events under (one handler method each)."""

# -- Web Services --------------------------------------------------------------------------

TRIGGERS: tuple[str, ...] = (
    "Dequeue",
    "AgentConnect",
    "PostCall",
    "TransferTermination",
    "AgentTermination",
    "PostDisposition",
)
"""The queue events a web service can be attached to."""

WEB_SERVICE_TAGS: dict[str, str] = {
    "agent_id": "agent_id",
    "agent_username": "agent_username",
    "agent_first_name": "agent_first_name",
    "agent_last_name": "agent_last_name",
    "ani": "ani",
    "dnis": "dnis",
    "call_start": "call_start",
    "duration": "duration",
    "call_duration": "call_duration",
    "recording_url": "recording_url",
    "agent_recording_url": "sess_agent_perspective_recording_url",
    "uii": "uii",
    "agent_disposition": "agent_disposition",
    "agent_notes": "agent_notes",
    "queue_id": "queue_id",
    "account_id": "account_id",
}
"""Typed field of a `CallDetailsEvent` → the `#tag#` that fills it."""

WEB_SERVICE_FIELDS: tuple[str, ...] = tuple(WEB_SERVICE_TAGS)
"""The typed fields a received name can be mapped to (the `fields` option)."""

_ALIASES: dict[str, tuple[str, ...]] = {
    "agent_recording_url": ("agentperspectiverecordingurl",),
    "uii": ("calluii",),
}

_NOT_ALNUM = re.compile(r"[^0-9a-z]")


def normalized_name(name: str) -> str:
    """`agentUsername`, `agent_username` and `Agent-UserName` all give `agentusername`."""
    return _NOT_ALNUM.sub("", name.lower())


DEFAULT_NAMES: dict[str, str] = {
    normalized: field
    for field, tag in WEB_SERVICE_TAGS.items()
    for normalized in (normalized_name(field), normalized_name(tag), *_ALIASES.get(field, ()))
}
"""A received name, normalized, → the typed field it fills unless the `fields` option says."""

LITERAL_TAG = re.compile(r"#[A-Za-z0-9_]+#")
"""A whole value that is an unsubstituted tag (`#agent_username#`): the value is missing."""

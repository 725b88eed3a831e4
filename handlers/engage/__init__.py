"""RingCentral Engage Voice: WFM Generic HTTP events and Web Services call details.

`WfmHandler` receives agent state and end call events (`on_agent_login`, `on_agent_logout`,
`on_agent_state`, `on_end_call`); `WebServicesHandler` receives what a configured web service
sends, as `CallDetailsEvent`s.
"""

from handlers.engage.values import parse_seconds, parse_wall_time
from handlers.engage.web_services import CallDetailsEvent, WebServicesHandler, decode_call_details
from handlers.engage.wfm import (
    AgentState,
    AgentStateEvent,
    CallState,
    CallType,
    EndCallEvent,
    EndCallType,
    ValidationRequest,
    WfmEvent,
    WfmHandler,
    decode_wfm,
)

__all__ = [
    "AgentState",
    "AgentStateEvent",
    "CallDetailsEvent",
    "CallState",
    "CallType",
    "EndCallEvent",
    "EndCallType",
    "ValidationRequest",
    "WebServicesHandler",
    "WfmEvent",
    "WfmHandler",
    "decode_call_details",
    "decode_wfm",
    "parse_seconds",
    "parse_wall_time",
]

"""Typed RingCentral Engage Voice WFM events and `WfmHandler`, the base class of their handlers.

Subclass `WfmHandler` and override `on_agent_login`, `on_agent_logout`, `on_agent_state`
and/or `on_end_call`; an event whose method is not overridden goes to `on_any`. Times are the
platform's wall-clock times, made aware in the endpoint's `time_zone`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from handlers.base import Handler
from handlers.engage.values import FieldReader, load_envelope, zone
from handlers.enreach.values import TolerantStrEnum, empty_mapping
from receiver.exceptions import DecodeError
from receiver.inbox.models import StoredEvent

__all__ = [
    "AgentState",
    "AgentStateEvent",
    "CallState",
    "CallType",
    "EndCallEvent",
    "EndCallType",
    "ValidationRequest",
    "WfmEvent",
    "WfmHandler",
    "decode_wfm",
]


class AgentState(TolerantStrEnum):
    """An agent state; custom states of the account are kept as sent (`is_known` False)."""

    LOGIN = "LOGIN"
    LOGOUT = "LOGOUT"
    AVAILABLE = "AVAILABLE"
    TRANSITION = "TRANSITION"
    ENGAGED = "ENGAGED"
    WORKING = "WORKING"
    LUNCH = "LUNCH"
    ON_BREAK = "ON BREAK"
    TRAINING = "TRAINING"
    AWAY = "AWAY"


class CallType(TolerantStrEnum):
    """The kind of call an agent is on: ACD (inbound queue) or VPD (outbound dialer)."""

    ACD = "ACD"
    VPD = "VPD"


class EndCallType(TolerantStrEnum):
    """The `event_type` of an end call event: an inbound or an outbound call ended."""

    ACD_CALL = "ACD-CALL"
    VPD_CALL = "VPD-CALL"


class CallState(TolerantStrEnum):
    """How a call ended (inbound: DEFLECTED, ANSWERED, ABANDON; outbound: ANSWERED, ABANDONED,
    MACHINE)."""

    ANSWERED = "ANSWERED"
    ABANDON = "ABANDON"
    ABANDONED = "ABANDONED"
    DEFLECTED = "DEFLECTED"
    MACHINE = "MACHINE"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStateEvent:
    """An agent logged in, logged out, or entered a state (default or custom)."""

    agent_id: str
    """The agent's id in Engage."""
    event_type: AgentState
    """The state entered: LOGIN, LOGOUT, AVAILABLE, ON BREAK, ... or a custom state."""
    event_aux_type: str | None = None
    """The auxiliary (sub) state entered, such as `Available`."""
    prev_state: AgentState | None = None
    """The state left (absent on LOGIN and LOGOUT events)."""
    prev_aux_state: str | None = None
    """The auxiliary state left."""
    date_time: datetime | None = None
    """When the state changed, in the endpoint's time zone."""
    duration: str | None = None
    """The `duration` value as sent (the platform does not document its unit)."""
    username: str | None = None
    agent_login_id: str | None = None
    account_id: str | None = None
    external_agent_id: str | None = None
    """The agent's id in the workforce management system, when set."""
    agent_phone: str | None = None
    source_ip: str | None = None
    pending_disp: bool | None = None
    """Whether a disposition is pending for the agent's last call."""
    call_id: str | None = None
    """The call the agent is on, while on a call (also `call_source_id`, `dnis`, ...)."""
    call_source_id: str | None = None
    call_source_name: str | None = None
    dnis: str | None = None
    call_type: CallType | None = None
    fields: Mapping[str, str | None] = field(default_factory=empty_mapping, repr=False)
    """Every field as received, by the name it came under."""
    raw: bytes = field(default=b"", compare=False, repr=False)
    """The stored payload (see docs/providers.md for its shape)."""

    @property
    def is_login(self) -> bool:
        """Whether this is the LOGIN event."""
        return self.event_type == AgentState.LOGIN

    @property
    def is_logout(self) -> bool:
        """Whether this is the LOGOUT event."""
        return self.event_type == AgentState.LOGOUT


@dataclass(frozen=True, slots=True, kw_only=True)
class EndCallEvent:
    """A call ended: its outcome, durations, recording and (when answered) agent."""

    call_id: str
    event_type: EndCallType | None = None
    """ACD-CALL (inbound) or VPD-CALL (outbound)."""
    call_state: CallState | None = None
    call_start: datetime | None = None
    """When the call started, in the endpoint's time zone."""
    call_duration: int | None = None
    """Seconds."""
    queue_duration: int | None = None
    """Seconds in queue."""
    recording_url: str | None = None
    """None when there is no recording (an unanswered call); may answer 404 for a minute or two."""
    agent_disposition: str | None = None
    gate_id: str | None = None
    gate_name: str | None = None
    account_id: str | None = None
    dnis: str | None = None
    ani: str | None = None
    agent_id: str | None = None
    """The answering agent (answered calls only), also `username`, `external_agent_id`."""
    username: str | None = None
    external_agent_id: str | None = None
    fields: Mapping[str, str | None] = field(default_factory=empty_mapping, repr=False)
    """Every field as received, by the name it came under."""
    raw: bytes = field(default=b"", compare=False, repr=False)
    """The stored payload (see docs/providers.md for its shape)."""

    @property
    def is_outbound(self) -> bool:
        """Whether the call was an outbound (VPD) call."""
        return self.event_type == EndCallType.VPD_CALL

    @property
    def answered(self) -> bool:
        """Whether the call was answered."""
        return self.call_state == CallState.ANSWERED


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationRequest:
    """A request that carried only a `Validation-Token` (the token was echoed in the 200)."""

    validation_token: str
    raw: bytes = field(default=b"", compare=False, repr=False)


WfmEvent = AgentStateEvent | EndCallEvent | ValidationRequest
"""Any event a WFM endpoint stores."""

_METHODS = {
    "AgentLogin": "on_agent_login",
    "AgentLogout": "on_agent_logout",
    "AgentState": "on_agent_state",
    "EndCall": "on_end_call",
    "Validation": "on_validation",
}
_NO_METHOD = "<not a WFM event type>"


def decode_wfm(stored: StoredEvent) -> WfmEvent:
    """The typed event of a stored WFM event; `DecodeError` for a value of the wrong form."""
    envelope = load_envelope(stored)
    family = envelope.get("family")
    where = zone(str(envelope.get("time_zone") or "UTC"))
    read = FieldReader(envelope["fields"], f"{stored.event_type} #{stored.id}", where)
    raw = stored.payload
    if family == "agent":
        agent_id, state = read.text("agent_id"), read.text("event_type")
        if agent_id is None or state is None:
            raise DecodeError(f"{read.what}: agent event without agent_id or event_type")
        prev_state = read.text("prev_state")
        call_type = read.text("call_type")
        return AgentStateEvent(
            agent_id=agent_id,
            event_type=AgentState(state),
            event_aux_type=read.text("event_aux_type"),
            prev_state=AgentState(prev_state) if prev_state else None,
            prev_aux_state=read.text("prev_aux_state"),
            date_time=read.time("date_time"),
            duration=read.text("duration"),
            username=read.text("username"),
            agent_login_id=read.text("agent_login_id"),
            account_id=read.text("account_id"),
            external_agent_id=read.text("external_agent_id"),
            agent_phone=read.text("agent_phone"),
            source_ip=read.text("source_ip"),
            pending_disp=read.flag("pending_disp"),
            call_id=read.text("call_id"),
            call_source_id=read.text("call_source_id"),
            call_source_name=read.text("call_source_name"),
            dnis=read.text("dnis"),
            call_type=CallType(call_type) if call_type else None,
            fields=read.fields,
            raw=raw,
        )
    if family == "call":
        call_id = read.text("call_id")
        if call_id is None:
            raise DecodeError(f"{read.what}: end call event without call_id")
        end_type, call_state = read.text("event_type"), read.text("call_state")
        return EndCallEvent(
            call_id=call_id,
            event_type=EndCallType(end_type) if end_type else None,
            call_state=CallState(call_state) if call_state else None,
            call_start=read.time("call_start"),
            call_duration=read.seconds("call_duration"),
            queue_duration=read.seconds("queue_duration"),
            recording_url=read.text("recording_url"),
            agent_disposition=read.text("agent_disposition"),
            gate_id=read.text("gate_id"),
            gate_name=read.text("gate_name"),
            account_id=read.text("account_id"),
            dnis=read.text("dnis"),
            ani=read.text("ani"),
            agent_id=read.text("agent_id"),
            username=read.text("username"),
            external_agent_id=read.text("external_agent_id"),
            fields=read.fields,
            raw=raw,
        )
    if family == "validation":
        return ValidationRequest(validation_token=read.text("validation_token") or "", raw=raw)
    raise DecodeError(f"{read.what}: unknown WFM event family {family!r}")


class WfmHandler(Handler[WfmEvent]):
    """Base class of RingCentral Engage Voice WFM handlers: one method per event family.

    LOGIN and LOGOUT go to `on_agent_login` and `on_agent_logout`, every other agent state
    (custom ones included) to `on_agent_state`, end calls to `on_end_call`; a method that is not
    overridden passes its event to `on_any`.
    """

    source_kind = "engage_wfm"
    provider_name = "Engage WFM"
    known_event_types = tuple(_METHODS)
    _provider_base = True

    def decode(self, stored: StoredEvent) -> WfmEvent:
        """Decode the stored envelope into its typed event; raise `DecodeError`."""
        return decode_wfm(stored)

    def method_name(self, event_type: str) -> str:
        """`AgentLogin` → `on_agent_login`, ..., `EndCall` → `on_end_call`."""
        return _METHODS.get(event_type, _NO_METHOD)

    async def on_agent_login(self, event: AgentStateEvent) -> None:
        """Handle an agent's LOGIN event."""
        await self.on_any(event)

    async def on_agent_logout(self, event: AgentStateEvent) -> None:
        """Handle an agent's LOGOUT event."""
        await self.on_any(event)

    async def on_agent_state(self, event: AgentStateEvent) -> None:
        """Handle an agent entering any other state, custom states included."""
        await self.on_any(event)

    async def on_end_call(self, event: EndCallEvent) -> None:
        """Handle the end of a call (inbound ACD-CALL or outbound VPD-CALL)."""
        await self.on_any(event)

    async def on_validation(self, event: ValidationRequest) -> None:
        """Handle a subscription validation request (already answered with its token)."""
        await self.on_any(event)

"""Typed RingCentral Engage Voice Web Services events and `WebServicesHandler`.

A web service sends whatever template its administrator wrote; the endpoint maps received names
to the typed fields of `CallDetailsEvent` (documented tags by default, the `fields` option
otherwise) and keeps every received field in `fields`, the unmapped ones also in `extra`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from handlers.base import Handler, method_for
from handlers.engage.values import FieldReader, load_envelope, zone
from handlers.enreach.values import empty_mapping
from receiver.catalogs.engage import TRIGGERS
from receiver.inbox.models import StoredEvent

__all__ = ["CallDetailsEvent", "WebServicesHandler", "decode_call_details"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallDetailsEvent:
    """What one web service call carried: typed documented tags, and every field as received.

    A field whose value was missing, empty or a literal unsubstituted tag (`#agent_username#`)
    is None. One call transferred between agents gives one event per agent segment, each with
    its own agent and recording.
    """

    event_type: str
    """The endpoint's `event_type` (the trigger, e.g. `AgentTermination`; default `CallDetails`)."""
    uii: str | None = None
    """The call's unique id (`#uii#`); shared by every agent segment of the call."""
    agent_id: str | None = None
    agent_username: str | None = None
    """Usually the agent's e-mail address."""
    agent_first_name: str | None = None
    agent_last_name: str | None = None
    ani: str | None = None
    """The customer's number."""
    dnis: str | None = None
    """The number the customer called (or the agent's number)."""
    call_start: datetime | None = None
    """When the call started (`2020-04-22 00:00:00.0000`), in the endpoint's time zone."""
    duration: int | None = None
    """Seconds (`#duration#`, sent as seconds or HH:MM:SS)."""
    call_duration: int | None = None
    """Seconds (`#call_duration#`, sent as seconds or HH:MM:SS)."""
    recording_url: str | None = None
    """The segment's recording (WAV); None when there is none."""
    agent_recording_url: str | None = None
    """The dual-channel agent recording (`#sess_agent_perspective_recording_url#`)."""
    agent_disposition: str | None = None
    agent_notes: str | None = None
    queue_id: str | None = None
    account_id: str | None = None
    method: str = "POST"
    """The HTTP method the web service used."""
    fields: Mapping[str, str | None] = field(default_factory=empty_mapping, repr=False)
    """Every received field (nested names dotted), literal tags as None."""
    extra: Mapping[str, str | None] = field(default_factory=empty_mapping)
    """The received fields that fill no typed field."""
    raw: bytes = field(default=b"", compare=False, repr=False)
    """The stored payload (see docs/providers.md for its shape)."""


def decode_call_details(stored: StoredEvent) -> CallDetailsEvent:
    """The typed event of a stored web service request; `DecodeError` for a bad value."""
    envelope = load_envelope(stored)
    where = zone(str(envelope.get("time_zone") or "UTC"))
    fields = envelope["fields"]
    names_value = envelope.get("names")
    names: Mapping[str, str] = names_value if isinstance(names_value, dict) else {}
    typed = {name: fields.get(received) for name, received in names.items()}
    read = FieldReader(typed, f"{stored.event_type} #{stored.id}", where)
    used = set(names.values())
    all_fields = FieldReader(fields, read.what, where).fields
    return CallDetailsEvent(
        event_type=stored.event_type,
        uii=read.text("uii"),
        agent_id=read.text("agent_id"),
        agent_username=read.text("agent_username"),
        agent_first_name=read.text("agent_first_name"),
        agent_last_name=read.text("agent_last_name"),
        ani=read.text("ani"),
        dnis=read.text("dnis"),
        call_start=read.time("call_start"),
        duration=read.seconds("duration"),
        call_duration=read.seconds("call_duration"),
        recording_url=read.text("recording_url"),
        agent_recording_url=read.text("agent_recording_url"),
        agent_disposition=read.text("agent_disposition"),
        agent_notes=read.text("agent_notes"),
        queue_id=read.text("queue_id"),
        account_id=read.text("account_id"),
        method=str(envelope.get("method") or "POST"),
        fields=all_fields,
        extra=MappingProxyType({k: v for k, v in all_fields.items() if k not in used}),
        raw=stored.payload,
    )


class WebServicesHandler(Handler[CallDetailsEvent]):
    """Base class of Engage Voice Web Services handlers: a method per trigger.

    The endpoint's `event_type` names the trigger its web service is attached to; the event
    goes to `on_<event type in snake_case>` (`on_agent_termination`, `on_call_details` for the
    default), or to `on_any` when that method is not overridden. A subclass may define a method
    for any other configured name the same way.
    """

    source_kind = "engage_web_services"
    provider_name = "Engage Web Services"
    known_event_types = ("CallDetails", *TRIGGERS)
    configured_event_types = True
    _provider_base = True

    def decode(self, stored: StoredEvent) -> CallDetailsEvent:
        """Decode the stored envelope into a `CallDetailsEvent`; raise `DecodeError`."""
        return decode_call_details(stored)

    def method_name(self, event_type: str) -> str:
        """`on_` and the snake_case event type."""
        return method_for(event_type)

    async def on_call_details(self, event: CallDetailsEvent) -> None:
        """Handle an endpoint left at the default event type, `CallDetails`."""
        await self.on_any(event)

    async def on_dequeue(self, event: CallDetailsEvent) -> None:
        """Handle a call leaving the queue."""
        await self.on_any(event)

    async def on_agent_connect(self, event: CallDetailsEvent) -> None:
        """Handle an agent being connected to a call."""
        await self.on_any(event)

    async def on_agent_termination(self, event: CallDetailsEvent) -> None:
        """Handle the end of one agent segment (once per agent of a transferred call)."""
        await self.on_any(event)

    async def on_transfer_termination(self, event: CallDetailsEvent) -> None:
        """Handle the end of a transfer leg."""
        await self.on_any(event)

    async def on_post_call(self, event: CallDetailsEvent) -> None:
        """Handle the end of a call."""
        await self.on_any(event)

    async def on_post_disposition(self, event: CallDetailsEvent) -> None:
        """Handle an agent's disposition of a call."""
        await self.on_any(event)

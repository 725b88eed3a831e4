"""Typed Buzzeasy service hook events and `BuzzeasyHandler`, the base class of their handlers.

Subclass `BuzzeasyHandler` and override `on_work_item_closed`, `on_abandoned_conversation`
and/or `on_outbound_call` (or `on_<name>` for another hook configured by name); events without
an overridden method go to `on_any`. Property names match ignoring case and underscores
(`agentID`, `AgentId`, `agent_id`); properties not mapped to an attribute are kept in `extra`.
Timestamps keep up to 7 fractional digits (the 7th is truncated) and their `Z`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

import orjson

from handlers.base import Handler, method_for
from handlers.enreach.values import empty_mapping
from receiver.catalogs.buzzeasy import EVENT_TYPES, canonical_event_type
from receiver.catalogs.engage import normalized_name
from receiver.exceptions import DecodeError
from receiver.inbox.models import StoredEvent

__all__ = [
    "AbandonedConversation",
    "BuzzeasyAgent",
    "BuzzeasyEvent",
    "BuzzeasyHandler",
    "OutboundCall",
    "WorkItemClosed",
    "decode_buzzeasy",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class BuzzeasyEvent:
    """Any service hook event: its type (from the endpoint), id, and the body as received."""

    event_type: str
    """The hook the endpoint receives: `WorkItemClosed`, `AbandonedConversation`, ..."""
    id: str | None = None
    """The event's unique id, when the hook sends one (WorkItemClosed does)."""
    payload: Mapping[str, Any] = field(default_factory=empty_mapping, compare=False, repr=False)
    """The decoded JSON object, as sent."""
    raw: bytes = field(default=b"", compare=False, repr=False)
    """The request body, byte for byte."""
    extra: Mapping[str, Any] = field(default_factory=empty_mapping, compare=False)
    """Properties no attribute takes, by the name they came under."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BuzzeasyAgent:
    """The agent who handled a work item."""

    id: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    extra: Mapping[str, Any] = field(default_factory=empty_mapping, compare=False)
    """Properties no attribute takes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkItemClosed(BuzzeasyEvent):
    """An agent closed a work item (a task: a call, chat, e-mail, ...)."""

    event_type: str = "WorkItemClosed"
    media_type: str | None = None
    """`Webchat`, ..."""
    is_outbound: bool | None = None
    created_at: datetime | None = None
    """When the work item was created (UTC)."""
    closed_at: datetime | None = None
    """When the agent closed it (UTC)."""
    agent: BuzzeasyAgent | None = None
    customer_identifier: str | None = None
    """The customer's phone number or other identifier."""
    customer_id: str | None = None
    primary_conversation_id: str | None = None
    completion_code: str | None = None
    notes: str | None = None
    result: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AbandonedConversation(BuzzeasyEvent):
    """A customer hung up while waiting in a queue."""

    event_type: str = "AbandonedConversation"
    customer_phone_number: str | None = None
    time_in_queue: timedelta | None = None
    """Sent as seconds or as `HH:MM:SS[.fffffff]`."""
    timestamp: datetime | None = None
    queue: str | None = None
    """The queue's name (or, when the hook sends a queue object, its `name`)."""
    queue_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundCall(BuzzeasyEvent):
    """An agent started an outbound call."""

    event_type: str = "OutboundCall"
    agent_id: str | None = None
    target_phone_number: str | None = None
    """The dialed number."""
    timestamp: datetime | None = None
    """When the call was started."""


class _Wrong(Exception):
    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return orjson.dumps(value).decode()
    raise _Wrong("a string")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise _Wrong("true or false")


def _time(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _Wrong("an ISO 8601 timestamp")


_SPAN = re.compile(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?")


def _span(value: Any) -> timedelta:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value) and 0 <= value < 10**9:
            return timedelta(seconds=value)
        raise _Wrong("seconds or HH:MM:SS")
    if isinstance(value, str):
        match = _SPAN.fullmatch(value.strip())
        if match is not None:
            days, hours, minutes, seconds, fraction = match.groups()
            micro = int((fraction or "0").ljust(7, "0")[:6])
            return timedelta(
                days=int(days or 0),
                hours=int(hours),
                minutes=int(minutes),
                seconds=int(seconds),
                microseconds=micro,
            )
        try:
            return _span(float(value))
        except ValueError:
            pass
    raise _Wrong("seconds or HH:MM:SS")


def _queue_name(value: Any) -> str:
    if isinstance(value, Mapping):
        name = next((v for k, v in value.items() if k.lower() == "name"), None)
        return _text(name) if name is not None else ""
    return _text(value)


def _agent(value: Any) -> BuzzeasyAgent:
    if not isinstance(value, Mapping):
        raise _Wrong("an object")
    values, extra = _read(value, _AGENT_FIELDS, "agent.")
    return BuzzeasyAgent(**values, extra=extra)


_Shape = dict[str, tuple[str, Callable[[Any], Any]]]
"""Normalized property name → (attribute, converter)."""


def _shape(**attributes: tuple[tuple[str, ...], Callable[[Any], Any]]) -> _Shape:
    shape: _Shape = {}
    for attribute, (aliases, convert) in attributes.items():
        for name in (attribute, *aliases):
            shape[normalized_name(name)] = (attribute, convert)
    return shape


_AGENT_FIELDS = _shape(
    id=((), _text), name=((), _text), email=((), _text), phone=(("phoneNumber",), _text)
)
_COMMON: _Shape = {normalized_name("id"): ("id", _text)}
_SHAPES: dict[str, tuple[type[BuzzeasyEvent], _Shape]] = {
    "WorkItemClosed": (
        WorkItemClosed,
        _COMMON
        | _shape(
            media_type=((), _text),
            is_outbound=((), _bool),
            created_at=((), _time),
            closed_at=((), _time),
            agent=((), _agent),
            customer_identifier=((), _text),
            customer_id=((), _text),
            primary_conversation_id=((), _text),
            completion_code=((), _text),
            notes=((), _text),
            result=((), _text),
        ),
    ),
    "AbandonedConversation": (
        AbandonedConversation,
        _COMMON
        | _shape(
            customer_phone_number=(("customerPhone", "customerNumber", "phoneNumber"), _text),
            time_in_queue=(("queueTime", "timeInQueueSeconds"), _span),
            timestamp=((), _time),
            queue=(("queueName",), _queue_name),
            queue_id=((), _text),
        ),
    ),
    "OutboundCall": (
        OutboundCall,
        _COMMON
        | _shape(
            agent_id=((), _text),
            target_phone_number=(("dialedNumber",), _text),
            timestamp=((), _time),
        ),
    ),
}


def _read(
    data: Mapping[str, Any], shape: _Shape, prefix: str
) -> tuple[dict[str, Any], Mapping[str, Any]]:
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        spec = shape.get(normalized_name(key))
        if spec is None:
            extra[key] = value
        elif value is not None:
            attribute, convert = spec
            try:
                values[attribute] = convert(value)
            except _Wrong as wrong:
                raise DecodeError(
                    f"{prefix}{key} should be {wrong.expected}", field=prefix + key
                ) from None
    return values, MappingProxyType(extra)


def decode_buzzeasy(payload: Any, raw: bytes, event_type: str) -> BuzzeasyEvent:
    """Decode one service hook body of `event_type`; `DecodeError` for a value of the wrong type.

    An event type without a class of its own decodes to `BuzzeasyEvent` (its `id`, the rest in
    `extra`).
    """
    if not isinstance(payload, Mapping):
        raise DecodeError(f"{event_type} body is not a JSON object")
    name = canonical_event_type(event_type)
    cls, shape = _SHAPES.get(name, (BuzzeasyEvent, _COMMON))
    try:
        values, extra = _read(payload, shape, "")
    except DecodeError as exc:
        raise DecodeError(f"{name}: {exc}", field=exc.field) from None
    return cls(
        **values,
        event_type=name,
        payload=MappingProxyType(dict(payload)),
        raw=raw,
        extra=extra,
    )


class BuzzeasyHandler(Handler[BuzzeasyEvent]):
    """Base class of Buzzeasy handlers: one method per service hook.

    `WorkItemClosed` → `on_work_item_closed`, `AbandonedConversation` →
    `on_abandoned_conversation`, `OutboundCall` → `on_outbound_call`; a hook configured under
    another name goes to `on_<name in snake_case>` when a subclass defines it, else `on_any`.
    """

    source_kind = "buzzeasy"
    provider_name = "Buzzeasy"
    known_event_types = EVENT_TYPES
    configured_event_types = True
    _provider_base = True

    def decode(self, stored: StoredEvent) -> BuzzeasyEvent:
        """Parse the stored body and decode it into its event class; raise `DecodeError`."""
        try:
            payload = orjson.loads(stored.payload)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"stored event {stored.id}: body is not JSON ({exc})") from exc
        return decode_buzzeasy(payload, stored.payload, stored.event_type)

    def method_name(self, event_type: str) -> str:
        """`on_` and the snake_case event type (`on_work_item_closed`)."""
        return method_for(canonical_event_type(event_type))

    async def on_work_item_closed(self, event: WorkItemClosed) -> None:
        """Handle a work item an agent closed."""
        await self.on_any(event)

    async def on_abandoned_conversation(self, event: AbandonedConversation) -> None:
        """Handle a conversation abandoned in a queue."""
        await self.on_any(event)

    async def on_outbound_call(self, event: OutboundCall) -> None:
        """Handle an outbound call an agent started."""
        await self.on_any(event)

"""Typed handlers for receiver child processes: they record which method got which typed event.

Each writes, to RECORD_FILE (as `tests.support.recorder` does), a `typed` line per call of an
`on_*` method (method name, event class, the event's fields as JSON) and an `end` line with
the stored event's dedup key once `handle` returns, so `Harness.handled_keys()` works too.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from handlers import BuzzeasyHandler, WebServicesHandler, WfmHandler
from handlers.buzzeasy import AbandonedConversation, OutboundCall, WorkItemClosed
from handlers.engage import AgentStateEvent, CallDetailsEvent, EndCallEvent
from receiver.inbox.models import StoredEvent
from tests.support.recorder import _write

__all__ = ["BuzzeasyRecorder", "WebServicesRecorder", "WfmRecorder", "jsonable"]

_SKIPPED = ("raw", "payload")


def jsonable(value: Any) -> Any:
    """`value` as JSON data: dataclasses as objects, enums as values, times as ISO text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name not in _SKIPPED
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


def _typed(method: str, event: object) -> None:
    _write(
        {
            "phase": "typed",
            "method": method,
            "class": type(event).__name__,
            "event": jsonable(event),
        }
    )


async def _ended(stored: StoredEvent) -> None:
    _write(
        {
            "phase": "end",
            "key": stored.dedup_key,
            "type": stored.event_type,
            "source": stored.source,
            "order_key": stored.order_key,
        }
    )


class WfmRecorder(WfmHandler):
    """Records every WFM handler method call."""

    async def handle(self, event: StoredEvent) -> None:
        """Route as `WfmHandler` does, then record the stored event."""
        await super().handle(event)
        await _ended(event)

    async def on_agent_login(self, event: AgentStateEvent) -> None:
        """Record."""
        _typed("on_agent_login", event)

    async def on_agent_logout(self, event: AgentStateEvent) -> None:
        """Record."""
        _typed("on_agent_logout", event)

    async def on_agent_state(self, event: AgentStateEvent) -> None:
        """Record."""
        _typed("on_agent_state", event)

    async def on_end_call(self, event: EndCallEvent) -> None:
        """Record."""
        _typed("on_end_call", event)

    async def on_any(self, event: object) -> None:
        """Record what no specific method took."""
        _typed("on_any", event)


class WebServicesRecorder(WebServicesHandler):
    """Records every web service handler method call."""

    async def handle(self, event: StoredEvent) -> None:
        """Route as `WebServicesHandler` does, then record the stored event."""
        await super().handle(event)
        await _ended(event)

    async def on_call_details(self, event: CallDetailsEvent) -> None:
        """Record."""
        _typed("on_call_details", event)

    async def on_agent_termination(self, event: CallDetailsEvent) -> None:
        """Record."""
        _typed("on_agent_termination", event)

    async def on_any(self, event: CallDetailsEvent) -> None:
        """Record what no specific method took."""
        _typed("on_any", event)


class BuzzeasyRecorder(BuzzeasyHandler):
    """Records every Buzzeasy handler method call, a custom hook's method included."""

    async def handle(self, event: StoredEvent) -> None:
        """Route as `BuzzeasyHandler` does, then record the stored event."""
        await super().handle(event)
        await _ended(event)

    async def on_work_item_closed(self, event: WorkItemClosed) -> None:
        """Record."""
        _typed("on_work_item_closed", event)

    async def on_abandoned_conversation(self, event: AbandonedConversation) -> None:
        """Record."""
        _typed("on_abandoned_conversation", event)

    async def on_outbound_call(self, event: OutboundCall) -> None:
        """Record."""
        _typed("on_outbound_call", event)

    async def on_callback_requested(self, event: object) -> None:
        """Record a hook configured under a name the provider does not document."""
        _typed("on_callback_requested", event)

    async def on_any(self, event: object) -> None:
        """Record what no specific method took."""
        _typed("on_any", event)

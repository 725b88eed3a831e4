"""The handlers: ended Enreach queue calls and closed Buzzeasy work items become CRM activities.

Two classes, one per provider, since a handler class serves one provider's events; the
receiver's config binds each to its endpoints (receiver.toml here), and both write to the
same CRM. Configured by the environment (example.env):

- `CRM_URL`: the CRM's REST API, e.g. `https://crm.example.com/api`;
- `CRM_API_KEY`, or `CRM_API_KEY_FILE` naming a file that holds it;
- `CRM_BRIDGE_STATE`: the SQLite file of answered calls (default `crm_bridge.db` in the
  working directory).

Each activity is created with an idempotency key derived from the event's source and dedup
key (crm.py), so a retry, a replay or a second worker never makes a second activity.
"""

from __future__ import annotations

import logging
import os
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import Any

from handlers import BuzzeasyEvent, BuzzeasyHandler, EnreachEvent, EnreachHandler
from handlers.buzzeasy import WorkItemClosed
from handlers.enreach import QueueCallInDisconnected, QueueCallInUserConnected
from receiver import ConfigError, State, StoredEvent

from .calls import Answer, AnsweredCalls
from .crm import CrmClient, idempotency_key

__all__ = ["BuzzeasyCrmBridge", "EnreachCrmBridge"]

log = logging.getLogger("examples.crm_bridge")

_current: ContextVar[StoredEvent] = ContextVar("crm_bridge_current")
"""The stored event being handled (per task, so concurrent deliveries do not mix)."""


def crm_from_environment() -> CrmClient:
    """The CRM client of `CRM_URL` and `CRM_API_KEY` (or `CRM_API_KEY_FILE`); `ConfigError`
    naming what is missing."""
    url = os.environ.get("CRM_URL", "").strip()
    if not url:
        raise ConfigError("CRM_URL is not set: the CRM's REST API, e.g. https://crm.example/api")
    key = os.environ.get("CRM_API_KEY", "").strip()
    key_file = os.environ.get("CRM_API_KEY_FILE", "").strip()
    if not key and key_file:
        try:
            key = Path(key_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"CRM_API_KEY_FILE {key_file}: {exc.strerror}") from exc
    if not key:
        raise ConfigError("no CRM API key: set CRM_API_KEY or CRM_API_KEY_FILE")
    return CrmClient(url, key)


def _key() -> str:
    stored = _current.get()
    return idempotency_key(stored.source, stored.dedup_key)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def _seconds(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, round((end - start).total_seconds()))


def _report(event: object, stored: StoredEvent, error: BaseException, number: str | None) -> None:
    """Log a failed attempt with the caller (masked in the log like every phone number)."""
    what = "now a dead letter" if stored.state is State.DEAD else "will be retried"
    kind = getattr(event, "event_type", stored.event_type)
    log.warning("%s with %s did not reach the CRM (%s): %s", kind, number, what, error)


class EnreachCrmBridge(EnreachHandler):
    """Each queue call that ends becomes one call activity: answered (by whom, for how long)
    or unanswered. Other events pass by."""

    entity_types = frozenset({"Queue"})

    def __init__(self) -> None:
        super().__init__()
        self.crm = crm_from_environment()
        self.calls = AnsweredCalls(Path(os.environ.get("CRM_BRIDGE_STATE") or "crm_bridge.db"))

    async def handle(self, stored: StoredEvent) -> None:
        """Handle `stored` with its source and dedup key at hand for the idempotency key."""
        token = _current.set(stored)
        try:
            await super().handle(stored)
        finally:
            _current.reset(token)

    async def on_queue_call_in_user_connected(self, event: QueueCallInUserConnected) -> None:
        """An agent answered: note who and when, for the activity at the end of the call."""
        if event.call_id is not None:
            self.calls.remember(str(event.call_id), Answer(event.user_name, event.timestamp))

    async def on_queue_call_in_disconnected(self, event: QueueCallInDisconnected) -> None:
        """The call ended: one activity, then the call's answer is no longer needed."""
        call_id = str(event.call_id) if event.call_id is not None else None
        answer = self.calls.recall(call_id) if call_id else None
        activity: dict[str, Any] = {
            "type": "call",
            "direction": "inbound",
            "outcome": "answered" if answer else "unanswered",
            "phone": event.caller_number,
            "agent": answer.agent if answer else None,
            "queue": event.queue_name,
            "started_at": _iso(answer.answered_at) if answer else None,
            "ended_at": _iso(event.timestamp),
            "duration_seconds": _seconds(answer.answered_at, event.timestamp) if answer else None,
            "call_id": call_id,
            "external_id": _key(),
        }
        await self.crm.create_activity(activity, key=_key())
        if call_id:
            self.calls.forget(call_id)

    async def on_any(self, event: EnreachEvent) -> None:
        """Other queue events are not the CRM's business."""

    async def on_error(
        self, event: EnreachEvent | None, stored: StoredEvent, error: BaseException
    ) -> None:
        """Say which call's activity failed (the receiver logs the attempt too)."""
        _report(event, stored, error, getattr(event, "caller_number", None))


class BuzzeasyCrmBridge(BuzzeasyHandler):
    """Each closed Buzzeasy work item becomes one activity: a call for Voice, else its
    medium's (chat, email). Other hooks pass by."""

    def __init__(self) -> None:
        super().__init__()
        self.crm = crm_from_environment()

    async def handle(self, stored: StoredEvent) -> None:
        """Handle `stored` with its source and dedup key at hand for the idempotency key."""
        token = _current.set(stored)
        try:
            await super().handle(stored)
        finally:
            _current.reset(token)

    async def on_work_item_closed(self, event: WorkItemClosed) -> None:
        """The agent closed the work item: one activity."""
        medium = (event.media_type or "unknown").lower()
        agent = event.agent
        activity: dict[str, Any] = {
            "type": "call" if medium == "voice" else medium,
            "direction": "outbound" if event.is_outbound else "inbound",
            "outcome": event.completion_code or event.result or "closed",
            "phone": event.customer_identifier,
            "agent": (agent.email or agent.name) if agent else None,
            "queue": None,
            "started_at": _iso(event.created_at),
            "ended_at": _iso(event.closed_at),
            "duration_seconds": _seconds(event.created_at, event.closed_at),
            "call_id": event.primary_conversation_id or event.id,
            "notes": event.notes,
            "external_id": _key(),
        }
        await self.crm.create_activity(activity, key=_key())

    async def on_any(self, event: BuzzeasyEvent) -> None:
        """Abandoned conversations and outbound call starts are not activities here."""

    async def on_error(
        self, event: BuzzeasyEvent | None, stored: StoredEvent, error: BaseException
    ) -> None:
        """Say which work item's activity failed (the receiver logs the attempt too)."""
        _report(event, stored, error, getattr(event, "customer_identifier", None))

"""A CRM bridge: log answered queue calls and missed calls to a CRM's REST API.

Run it:

    CRM_URL=https://crm.example.com/api RECEIVER_ENREACH_SECRET=... \\
        ./dev serve --handler examples.crm_bridge:CrmBridge

Each handled event becomes one POST to the CRM. If the CRM is down the handler raises,
and the receiver retries with backoff, then keeps the event as a dead letter to replay.
Events of one call arrive here in order, one at a time.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import httpx

from handlers import EnreachEvent, EnreachHandler
from handlers.enreach import QueueCallInDisconnected, QueueCallInUserConnected
from receiver.inbox.models import StoredEvent

__all__ = ["CrmBridge", "CrmClient"]

log = logging.getLogger("examples.crm_bridge")


class CrmClient:
    """The few calls this bridge makes to the CRM."""

    def __init__(self, base_url: str, *, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=10.0)

    async def log_call(self, record: dict[str, Any]) -> None:
        """Create a call activity; raise on any failure so the event is retried."""
        response = await self.http.post("/activities", json=record)
        response.raise_for_status()


class CrmBridge(EnreachHandler):
    """Answered queue calls become call activities; calls that end unanswered, missed calls."""

    def __init__(self) -> None:
        super().__init__(entity_types={"Queue"})
        self.crm = CrmClient(os.environ["CRM_URL"], token=os.environ.get("CRM_TOKEN"))
        self.answered: set[str] = set()

    async def on_queue_call_in_user_connected(self, event: QueueCallInUserConnected) -> None:
        """An agent answered: log who took the call from whom."""
        if event.call_id is not None:
            self.answered.add(str(event.call_id))
        await self.crm.log_call(
            {
                "type": "call",
                "call_id": str(event.call_id),
                "from": event.caller_number,
                "agent": event.user_name,
                "queue": event.queue_name,
                "at": event.timestamp.isoformat() if event.timestamp else None,
            }
        )

    async def on_queue_call_in_disconnected(self, event: QueueCallInDisconnected) -> None:
        """The call ended; if nobody answered it, it is a missed call to follow up."""
        if str(event.call_id) in self.answered:
            self.answered.discard(str(event.call_id))
            return
        await self.crm.log_call(
            {
                "type": "missed_call",
                "call_id": str(event.call_id),
                "from": event.caller_number,
                "queue": event.queue_name,
                "reason": event.reason,
            }
        )

    async def on_any(self, event: EnreachEvent) -> None:
        """Other Queue events are not the CRM's business."""
        log.debug("ignoring %s", event.event_type)

    async def on_error(
        self, event: EnreachEvent | None, stored: StoredEvent, error: BaseException
    ) -> None:
        """Say which call failed to reach the CRM (the log redacts the number)."""
        caller = getattr(event, "caller_number", None)
        log.warning("call from %s failed to reach the CRM: %s", caller, error)

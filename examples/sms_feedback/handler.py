"""`SmsFeedback`: after an answered service-pool call ends, schedule the caller's questionnaire.

Enreach tells of a queue call ("service pool" is Enreach's name for a queue) with
`QueueCallIn*` events carrying one `CallId`: `QueueCallInUserConnected` when an agent
answers, `QueueCallInDisconnected` when the call ends, answered or not. A call is answered
and over when its row holds both, the end not before the answer by the provider's
`Timestamp`s (so a swapped pair is understood, and a call that left one pool unanswered and
was answered in another is texted only once the answered part ends). The handler writes
that into the table and returns; the sender thread (`sender.py`) does the texting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from examples.sms_feedback.gateway import HttpSmsGateway, SmsGateway
from examples.sms_feedback.policy import refusal
from examples.sms_feedback.sender import FeedbackSender, masked
from examples.sms_feedback.settings import FeedbackSettings
from examples.sms_feedback.store import FeedbackStore
from handlers import EnreachEvent, EnreachHandler
from handlers.enreach import QueueCallInDisconnected, QueueCallInUserConnected

__all__ = ["SmsFeedback"]

log = logging.getLogger("examples.sms_feedback")

Call = QueueCallInUserConnected | QueueCallInDisconnected


class SmsFeedback(EnreachHandler):
    """Texts each caller of an answered queue call a questionnaire, once, later.

    Constructing it opens the table and starts the sender thread; `aclose` (called by the
    receiver as it stops) stops it. `receiver serve` makes one from the environment.
    """

    def __init__(
        self,
        settings: FeedbackSettings | None = None,
        gateway: SmsGateway | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(entity_types={"Queue"})
        self.settings = settings or FeedbackSettings.from_env()
        self.clock = clock
        self.store = FeedbackStore(self.settings.database)
        self.gateway = gateway or HttpSmsGateway(
            self.settings.gateway_url,
            self.settings.gateway_token,
            sender=self.settings.sender_name,
            timeout=self.settings.gateway_timeout,
        )
        self.sender = FeedbackSender(self.store, self.gateway, self.settings, clock=clock)
        self.sender.start()

    async def on_queue_call_in_user_connected(self, event: QueueCallInUserConnected) -> None:
        """An agent answered: the call may get an SMS once it ends."""
        await asyncio.to_thread(self._note, event, answered=True)

    async def on_queue_call_in_disconnected(self, event: QueueCallInDisconnected) -> None:
        """The call ended: if it was answered, schedule the SMS."""
        await asyncio.to_thread(self._note, event, answered=False)

    async def on_any(self, event: EnreachEvent) -> None:
        """Other queue events say nothing about the questionnaire."""

    async def aclose(self) -> None:
        """Stop the sender thread (the message in hand is finished first)."""
        await asyncio.to_thread(self.sender.stop)

    def _note(self, event: Call, *, answered: bool) -> None:
        if event.call_id is None:  # without a call id nothing can be deduplicated: never send
            log.warning("sms-feedback: %s without a CallId; ignored", event.event_type)
            return
        call_id = str(event.call_id)
        moment = _moment(event.timestamp, latest=not answered)
        now = self.clock()
        row = self.store.note(
            call_id,
            answered_at=moment if answered else None,
            ended_at=None if answered else moment,
            caller=event.caller_number if answered else None,  # none kept for unanswered calls
            queue=event.queue_name if answered else None,  # the pool that answered
            now=now,
        )
        if row.state != "open" or not row.over_after_answer:
            return
        reason = refusal(
            row.caller,
            min_digits=self.settings.min_digits,
            internal_prefixes=self.settings.internal_prefixes,
        )
        if reason is not None:
            if self.store.skip(call_id, reason, masked(row.caller), now):
                log.info(
                    "sms-feedback: call %s from %s: no SMS, %s", call_id, masked(row.caller), reason
                )
            return
        due = self.settings.quiet_hours.next_allowed(
            datetime.fromtimestamp(now + self.settings.delay, UTC)
        )
        if self.store.schedule(call_id, due.timestamp(), now):
            local = due.astimezone(self.settings.quiet_hours.zone)
            log.info(
                "sms-feedback: call %s from %s: questionnaire due at %s",
                call_id, masked(row.caller), local.isoformat(timespec="seconds"),
            )  # fmt: skip


def _moment(at: datetime | None, *, latest: bool) -> str:
    """A provider timestamp as sortable text; a missing one sorts last for an end, first for
    an answer, so that it never stops a call from counting as answered and over."""
    if at is None:
        return "9999" if latest else "0000"
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat(timespec="microseconds")

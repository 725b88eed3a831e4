"""The sender thread: texts every row that is due, outside quiet hours, at most once.

Why a thread of its own and not the dispatcher's retries: a handler that raised `RetryLater`
to wait would count a failed attempt each time (a warning in the log, a dead letter after
`--max-attempts`), would wait at most `--backoff-max` (300 s) at a time where quiet hours last
eleven hours, and would hold up the call's lane meanwhile. So the handler only writes the due
time into the table and returns at once; this thread polls the table, which survives a
restart, so an SMS due while the receiver was down is sent when it is back.

Per row: claim it (`sending`, committed), call the gateway with the call id as idempotency
key, then record `sent`. A row found still `sending` long after its claim was cut short
(the process died mid-send): with a gateway that deduplicates on the key it is sent again
with the same key (the gateway answers with the message it already has); with one that
cannot, it becomes `unknown` and is never sent, because at most once beats at least once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from examples.sms_feedback.gateway import GatewayRefused, GatewayUnavailable, SmsGateway
from examples.sms_feedback.policy import phone_number
from examples.sms_feedback.settings import FeedbackSettings
from examples.sms_feedback.store import FeedbackStore, Row
from receiver.redaction import redact_phone_numbers

__all__ = ["FeedbackSender", "masked"]

log = logging.getLogger("examples.sms_feedback")

POLL_SECONDS = 0.5
"""How often the table is looked at for rows that have come due."""
MAX_TRIES = 8
"""Tries at an unreachable gateway before a row is given up (`failed`)."""
RETRY_SECONDS = 30.0
"""Wait before the second try; doubled for each later one, up to an hour."""


def masked(number: str | None) -> str:
    """`number` with all but its last two digits hidden, as the receiver's logs write it."""
    return redact_phone_numbers(number or "") or "(none)"


class FeedbackSender:
    """Polls `store` and sends what is due through `gateway`."""

    def __init__(
        self,
        store: FeedbackStore,
        gateway: SmsGateway,
        settings: FeedbackSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.settings = settings
        self.clock = clock
        self.lease = 2 * settings.gateway_timeout + 5.0
        """Seconds after which a `sending` row is taken for one whose sender died."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sms-feedback", daemon=True)

    def start(self) -> None:
        """Start polling."""
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the message in hand, stop polling, close the gateway client."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.gateway.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a bad moment (database locked too long): try again next poll
                log.exception("sms-feedback: sending failed; trying again")
            self._stop.wait(POLL_SECONDS)

    def run_once(self) -> int:
        """Recover cut-short sends, then send what is due now; how many were sent."""
        now = self.clock()
        self._recover(now)
        if self.settings.quiet_hours.contains(datetime.fromtimestamp(now, UTC)):
            return 0
        sent = 0
        for row in self.store.claim_due(now):
            if self._stop.is_set():
                self.store.retry(row.call_id, now, "stopped before sending", now)
                continue
            sent += self._send(row)
        return sent

    def _recover(self, now: float) -> None:
        for row in self.store.stale_claims(now - self.lease):
            if self.gateway.idempotent:
                self.store.retry(row.call_id, now, "sending was cut short; same key again", now)
                log.warning(
                    "sms-feedback: call %s: sending was cut short; trying again", row.call_id
                )
            else:
                reason = "sending was cut short and the gateway cannot tell if it was sent"
                self.store.failed(row.call_id, "unknown", reason, masked(row.caller), now)
                log.warning("sms-feedback: call %s: %s; not sent again", row.call_id, reason)

    def _send(self, row: Row) -> int:
        number = phone_number(row.caller) or ""
        text = self.settings.message(queue=row.queue, call_id=row.call_id)
        try:
            message_id = self.gateway.send(to=number, text=text, key=row.call_id)
        except GatewayRefused as exc:
            self.store.failed(row.call_id, "failed", str(exc), masked(number), self.clock())
            log.error(
                "sms-feedback: call %s: SMS to %s refused: %s", row.call_id, masked(number), exc
            )
            return 0
        except GatewayUnavailable as exc:
            return self._later(row, number, exc)
        self.store.sent(row.call_id, message_id, masked(number), self.clock())
        log.info(
            "sms-feedback: call %s: questionnaire sent to %s (message %s)",
            row.call_id, masked(number), message_id,
        )  # fmt: skip
        return 1

    def _later(self, row: Row, number: str, error: GatewayUnavailable) -> int:
        now = self.clock()
        if error.maybe_sent and not self.gateway.idempotent:
            reason = f"{error} (it may have been sent)"
            self.store.failed(row.call_id, "unknown", reason, masked(number), now)
        elif row.attempts >= MAX_TRIES:
            self.store.failed(
                row.call_id, "failed", f"{error} ({row.attempts} tries)", masked(number), now
            )
        else:
            wait = min(RETRY_SECONDS * 2 ** (row.attempts - 1), 3600.0)
            self.store.retry(row.call_id, now + wait, str(error), now)
        log.warning(
            "sms-feedback: call %s: SMS to %s not sent: %s", row.call_id, masked(number), error
        )
        return 0

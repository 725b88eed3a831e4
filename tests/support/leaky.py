"""A handler that leaks the credentials it is given, as a careless integration would.

LEAK_SECRETS holds the secrets to leak, one a line (the test gives it the endpoint's own, as a
handler that reuses them to call a CRM would have them). For each event it logs every secret
raw, a Basic pair's password alone and each in an `Authorization: Basic` header; then it fails
with them all in the error's message, so they reach the dispatcher's log line, the stored
dead letter and a logged traceback from its failure hook.
"""

from __future__ import annotations

import base64
import logging
import os

from receiver.inbox.models import StoredEvent

__all__ = ["Leaky", "leaked_forms"]

log = logging.getLogger("bridge.leaky")


def leaked_forms(secret: str) -> list[str]:
    """Every form in which `Leaky` writes `secret`."""
    forms = [secret, "Basic " + base64.b64encode(secret.encode()).decode()]
    _, sep, password = secret.partition(":")
    if sep:
        forms.append(password)
    return forms


class Leaky:
    """Logs the secrets, then fails with them in its error; the failure hook fails too."""

    def __init__(self) -> None:
        self.secrets = [s for s in os.environ["LEAK_SECRETS"].splitlines() if s]

    def _leaks(self) -> str:
        return ", ".join(form for secret in self.secrets for form in leaked_forms(secret))

    async def handle(self, event: StoredEvent) -> None:
        """Log the credentials, then fail with them."""
        log.info("calling the CRM for event %d with %s", event.id, self._leaks())
        raise PermissionError(f"the CRM refused {self._leaks()}")

    async def failed(self, event: StoredEvent, error: BaseException, *, final: bool) -> None:
        """Fail again, with a traceback the receiver logs."""
        raise RuntimeError(f"could not report to the CRM with {self._leaks()}") from error

"""An ops endpoint for `on_dead` alerts: `WebhookSink` (real HTTPS on a loopback port, every
request recorded, scripted answers) that takes unsigned JSON, as a chat or paging hook does."""

from __future__ import annotations

import base64
from typing import Any

from standardwebhooks.webhooks import Webhook

from receiver.certs import DevCertificates
from tests.support.webhook_sink import WebhookSink

__all__ = ["AlertSink"]

_UNSIGNED_SECRET = "whsec_" + base64.b64encode(b"alerts are not signed").decode()


class _Unsigned(Webhook):
    """Accepts every request: alerts carry no signature."""

    def verify(self, data: bytes | str, headers: dict[str, str], *, json_parse: bool = True) -> Any:
        """Accept."""
        return None


class AlertSink(WebhookSink):
    """A `WebhookSink` that records and answers unsigned requests."""

    def __init__(self, certs: DevCertificates, *, path: str = "/ops/hook") -> None:
        super().__init__(_UNSIGNED_SECRET, certs, path=path)
        self.webhook = _Unsigned(_UNSIGNED_SECRET)

    def __enter__(self) -> AlertSink:
        self.start()
        return self

    def alerts(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The JSON bodies received (of `kind` only, when given), in arrival order."""
        bodies = [r.payload for r in list(self.received) if isinstance(r.payload, dict)]
        return [b for b in bodies if kind is None or b.get("kind") == kind]

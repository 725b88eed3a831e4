"""A mock webhook sender that behaves like the real platforms, for tests and QA.

`Sender` (async) and `SyncSender` deliver requests built by a provider's `WireFormat`
(`EnreachWire` today; one more module per provider) and report each as a `Delivery`.
"""

from __future__ import annotations

from receiver.sender.base import Attempt, Delivery, WireFormat, WireRequest
from receiver.sender.engine import Sender, SyncSender, Verify, client_tls_context
from receiver.sender.enreach import EnreachWire

__all__ = [
    "Attempt",
    "Delivery",
    "EnreachWire",
    "Sender",
    "SyncSender",
    "Verify",
    "WireFormat",
    "WireRequest",
    "client_tls_context",
]

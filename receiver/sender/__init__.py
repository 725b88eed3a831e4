"""A mock webhook sender that behaves like the real platforms, for tests and QA.

`Sender` (async) and `SyncSender` deliver requests built by a provider's `WireFormat`
(`EnreachWire`, `WfmWire`, `WebServicesWire`, `BuzzeasyWire`) and report each as a `Delivery`.
"""

from __future__ import annotations

from receiver.sender.base import (
    Attempt,
    Delivery,
    WireFormat,
    WireRequest,
    basic_authorization,
    forged_credential,
)
from receiver.sender.buzzeasy import BuzzeasyWire
from receiver.sender.engage_web_services import WebServicesWire
from receiver.sender.engage_wfm import WfmWire
from receiver.sender.engine import Sender, SyncSender, Verify, client_tls_context
from receiver.sender.enreach import EnreachWire

__all__ = [
    "Attempt",
    "BuzzeasyWire",
    "Delivery",
    "EnreachWire",
    "Sender",
    "SyncSender",
    "Verify",
    "WebServicesWire",
    "WfmWire",
    "WireFormat",
    "WireRequest",
    "basic_authorization",
    "client_tls_context",
    "forged_credential",
]

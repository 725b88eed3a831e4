"""The demo's agents and calls, as Enreach sends them, and the receiver's config for a demo.

Shared by `python -m examples.screen_pop` and the example's test, so both run the same
calls through the committed `receiver.toml`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from receiver.catalogs.samples import enreach_sample

__all__ = [
    "AGENTS",
    "CALLS",
    "RECEIVER_TOML",
    "Call",
    "allocation",
    "call_flow",
    "receiver_config",
]

RECEIVER_TOML = Path(__file__).with_name("receiver.toml")
_PAGE_SERVICE_URL = '"https://localhost:8444/events"'
_PAGE_SERVICE_CA = '"certs/ca.pem"'

AINO = uuid.UUID("3f2b8c1e-5a47-4d0b-9c61-7e8f2a1d4b90")
EINO = uuid.UUID("8a6d1f3c-2b9e-4c75-a0d4-51e7c3b2f968")
AGENTS = {AINO: "aino.lahti@example.com", EINO: "eino.virtanen@example.com"}
"""The demo's agents: Enreach user id → login name."""


@dataclass(frozen=True, slots=True)
class Call:
    """One incoming call allocated to an agent."""

    agent: uuid.UUID
    caller: str
    queue: str | None
    """None for a call to the agent's own number (no queue: `UserCallInUserAllocated` only)."""
    call_id: uuid.UUID = field(default_factory=uuid.uuid4)


CALLS = (
    Call(AINO, "+358401234567", "Laskutus"),  # Maija Mäkinen, in the customer table
    Call(EINO, "+358509876543", "Asiakaspalvelu"),  # nobody the table knows
    Call(EINO, "+358 40 765 4321", None),  # Juha Korhonen, spaced as a handset may send it
)
"""The demo's calls, in the order they ring."""


def allocation(event_type: str, call: Call, **fields: Any) -> dict[str, Any]:
    """An allocation event of `call` (`QueueCallInUserAllocated` or `UserCallInUserAllocated`)."""
    overrides: dict[str, Any] = {
        "CallId": str(call.call_id),
        "CallerNumber": call.caller,
        "UserId": str(call.agent),
        "UserName": AGENTS.get(call.agent, "agent@example.com"),
    }
    if event_type.startswith("Queue"):
        overrides["QueueName"] = call.queue
    return enreach_sample(event_type, overrides={**overrides, **fields})


def call_flow(call: Call) -> list[dict[str, Any]]:
    """What Enreach sends while `call` rings and is answered (only allocations pop)."""
    common = {"CallId": str(call.call_id), "CallerNumber": call.caller}
    if call.queue is None:
        return [
            allocation("UserCallInUserAllocated", call),
            enreach_sample(
                "UserCallInUserConnected", overrides={**common, "UserId": str(call.agent)}
            ),
        ]
    queued = {**common, "QueueName": call.queue}
    return [
        enreach_sample("QueueCallInArrived", overrides=queued),
        allocation("QueueCallInUserAllocated", call),
        allocation("UserCallInUserAllocated", call),  # Enreach tells the agent's side too
        enreach_sample("QueueCallInUserConnected", overrides={**queued, "UserId": str(call.agent)}),
    ]


def receiver_config(events_url: str, ca: Path) -> str:
    """The committed `receiver.toml`, forwarding to `events_url`, whose CA is `ca`."""
    text = RECEIVER_TOML.read_text(encoding="utf-8")
    for placeholder in (_PAGE_SERVICE_URL, _PAGE_SERVICE_CA):
        if text.count(placeholder) != 1:
            raise ValueError(f"{RECEIVER_TOML} should hold {placeholder} once")
    # A JSON string is a TOML basic string: quotes and backslashes in a path stay safe.
    text = text.replace(_PAGE_SERVICE_URL, json.dumps(events_url))
    return text.replace(_PAGE_SERVICE_CA, json.dumps(str(ca)))

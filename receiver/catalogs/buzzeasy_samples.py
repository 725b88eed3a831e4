"""Realistic Buzzeasy service hook bodies, one per documented hook; a seed fixes every byte.

WorkItemClosed follows the provider's published example; the other two hooks are documented in
prose only, so their samples use the names the prose gives, in the same camelCase.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from receiver.catalogs.buzzeasy import EVENT_TYPES, canonical_event_type

__all__ = ["BUZZEASY_SAMPLE_TYPES", "buzzeasy_sample", "buzzeasy_time", "hex_id"]

BUZZEASY_SAMPLE_TYPES: tuple[str, ...] = EVENT_TYPES

_NAMES = ("Agent John", "Agent Mia", "Agent Ravi", "Agent Lena", "Agent Sam")
_QUEUES = ("Sales", "Support", "Billing", "Returns")


def buzzeasy_time(moment: datetime) -> str:
    """A UTC time as Buzzeasy writes it: 7 fractional digits and `Z`."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}{moment.microsecond % 7}Z"


def hex_id(rng: random.Random, digits: int = 32) -> str:
    """A lower-case hex id like Buzzeasy's (`ff34b1fb68cd4f7f9921e70c08fab7a7`)."""
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def buzzeasy_sample(
    event_type: str, *, seed: int | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One body of the `event_type` hook; ValueError for an undocumented hook."""
    name = canonical_event_type(event_type)
    if name not in EVENT_TYPES:
        raise ValueError(f"not a documented Buzzeasy hook: {event_type!r}")
    # S311: samples need variety and repeatability, not secrecy.
    rng = random.Random(f"{name}:{seed}") if seed is not None else random.Random()  # noqa: S311
    now = datetime(2025, 1, 1, 8) + timedelta(
        days=rng.randrange(365), seconds=rng.randrange(9 * 3600), microseconds=rng.randrange(10**6)
    )
    phone = f"+4470{rng.randint(0, 99_999_999):08d}"
    payload: dict[str, Any]
    if name == "WorkItemClosed":
        agent_name = rng.choice(_NAMES)
        payload = {
            "id": hex_id(rng),
            "mediaType": rng.choice(("Webchat", "Voice", "Email")),
            "isOutbound": rng.random() < 0.3,
            "createdAt": buzzeasy_time(now),
            "closedAt": buzzeasy_time(now + timedelta(seconds=rng.randint(30, 1800))),
            "agent": {
                "id": hex_id(rng, 24),
                "name": agent_name,
                "email": agent_name.split()[1].lower() + "@agent.example.com",
                "phone": f"+4420{rng.randint(0, 99_999_999):08d}",
            },
            "customerIdentifier": phone,
            "customerId": hex_id(rng),
            "primaryConversationId": hex_id(rng),
            "completionCode": rng.choice(("Success", "NoAnswer", "Escalated")),
            "notes": rng.choice(("Job well done", "", "Customer will call back")),
            "result": "Handled",
        }
    elif name == "AbandonedConversation":
        payload = {
            "customerPhoneNumber": phone,
            "timeInQueue": rng.randint(5, 600),
            "timestamp": buzzeasy_time(now),
            "queue": rng.choice(_QUEUES),
        }
    else:
        payload = {
            "agentID": hex_id(rng, 24),
            "targetPhoneNumber": phone,
            "Timestamp": buzzeasy_time(now),
        }
    by_lower = {key.lower(): key for key in payload}
    for key, value in (overrides or {}).items():
        payload[by_lower.get(key.lower(), key)] = value
    return payload

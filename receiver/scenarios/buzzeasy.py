"""Buzzeasy flows: a closed chat, a conversation abandoned in the queue, an outbound call.

Each hook goes to its own URL; the scenario sends to `<URL>/<hook slug>` (see `BuzzeasyWire`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from receiver.catalogs.buzzeasy_samples import buzzeasy_sample, buzzeasy_time, hex_id
from receiver.scenarios.flow import FlowEvent

__all__ = ["FLOWS", "BuzzeasyDirectory", "make_directory", "make_flow"]


@dataclass(frozen=True, slots=True)
class BuzzeasyDirectory:
    """The agents and queues every flow of a stream shares."""

    agents: tuple[dict[str, str], ...]
    queues: tuple[str, ...]


def make_directory(rng: random.Random, *, agents: int = 6) -> BuzzeasyDirectory:
    """A tenant with `agents` agents and a few queues."""
    names = ("John", "Mia", "Ravi", "Lena", "Sam", "Ada", "Noor", "Piet")
    people = tuple(
        {
            "id": hex_id(rng, 24),
            "name": f"Agent {names[n % len(names)]}",
            "email": f"{names[n % len(names)].lower()}{n}@agent.example.com",
            "phone": f"+4420{rng.randint(0, 99_999_999):08d}",
        }
        for n in range(agents)
    )
    return BuzzeasyDirectory(people, ("Sales", "Support", "Billing"))


class _Flow:
    def __init__(self, directory: BuzzeasyDirectory, rng: random.Random, start: datetime):
        self.directory = directory
        self.rng = rng
        self.now = start + timedelta(microseconds=rng.randrange(10**6))
        self.agent = rng.choice(directory.agents)
        self.customer = f"+4470{rng.randint(0, 99_999_999):08d}"
        self.events: list[FlowEvent] = []

    def emit(self, hook: str, **fields: Any) -> None:
        payload = buzzeasy_sample(hook, seed=self.rng.getrandbits(32), overrides=fields)
        event_id = str(payload.get("id") or f"{hook} {self.now:%H:%M:%S.%f}")
        self.events.append(FlowEvent(self.now, payload, hook, event_id))

    def work_item_closed(self, media: str, *, outbound: bool, created: datetime) -> None:
        self.emit(
            "WorkItemClosed",
            mediaType=media,
            isOutbound=outbound,
            createdAt=buzzeasy_time(created),
            closedAt=buzzeasy_time(self.now),
            agent=dict(self.agent),
            customerIdentifier=self.customer,
        )


def _chat(flow: _Flow) -> None:
    """A web chat an agent handles and closes."""
    created = flow.now
    flow.now += timedelta(seconds=flow.rng.randint(60, 1200))
    flow.work_item_closed("Webchat", outbound=False, created=created)


def _abandoned(flow: _Flow) -> None:
    """A caller hangs up while waiting in a queue."""
    waited = flow.rng.randint(5, 600)
    flow.now += timedelta(seconds=waited)
    flow.emit(
        "AbandonedConversation",
        customerPhoneNumber=flow.customer,
        timeInQueue=waited,
        timestamp=buzzeasy_time(flow.now),
        queue=flow.rng.choice(flow.directory.queues),
    )


def _outbound(flow: _Flow) -> None:
    """An agent dials a customer, talks, and closes the work item."""
    flow.emit(
        "OutboundCall",
        agentID=flow.agent["id"],
        targetPhoneNumber=flow.customer,
        Timestamp=buzzeasy_time(flow.now),
    )
    created = flow.now
    flow.now += timedelta(seconds=flow.rng.randint(30, 900))
    flow.work_item_closed("Voice", outbound=True, created=created)


FLOWS: dict[str, Callable[[_Flow], None]] = {
    "chat": _chat,
    "abandoned": _abandoned,
    "outbound": _outbound,
}
"""Every Buzzeasy flow a stream can be made of, by name."""


def make_flow(
    kind: str, directory: BuzzeasyDirectory, rng: random.Random, start: datetime
) -> list[FlowEvent]:
    """The hooks one `kind` flow fires from `start`, in the order they fire."""
    flow = _Flow(directory, rng, start)
    FLOWS[kind](flow)
    return flow.events

"""Enreach call flows: the events one call (or one agent's shift) produces, consistent and in order.

Every flow draws from one `random.Random`, so a seed fixes every id, number and time. Payloads
start from the catalog's sample of each event type, so they carry every field the spec lists;
the flow then writes its own values (call, queue, user, caller) into the fields the sample has,
matching names case-insensitively because the spec spells `UserName` and `Username` both ways.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from receiver.catalogs.samples import dotnet_datetime, enreach_sample
from receiver.scenarios.flow import FlowEvent

__all__ = ["FLOWS", "Directory", "FlowEvent", "Queue", "User", "make_directory", "make_flow"]

MAX_VALUE = "9999-12-31T23:59:59.9999999"
"""How .NET writes DateTime.MaxValue: a state with no end."""

_FIRST = ("aino", "eero", "helmi", "ilkka", "juha", "kaisa", "leena", "mikko", "noora", "otto")
_LAST = ("virtanen", "korhonen", "nieminen", "makinen", "hamalainen", "laine", "koskinen")
_QUEUES = ("Asiakaspalvelu", "Myynti", "Laskutus", "Tekninen tuki")


@dataclass(frozen=True, slots=True)
class Queue:
    """A service queue (service pool) calls arrive to."""

    id: str
    name: str
    number: str


@dataclass(frozen=True, slots=True)
class User:
    """An agent serving the queues."""

    id: str
    name: str
    number: str


@dataclass(frozen=True, slots=True)
class Directory:
    """The organization every flow of one stream shares: its queues, agents and callback list."""

    organization_id: str
    queues: tuple[Queue, ...]
    users: tuple[User, ...]
    call_list_id: str


def _stamp(at: datetime) -> str:
    return dotnet_datetime(at.replace(microsecond=0), at.microsecond * 10)


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def make_directory(rng: random.Random, *, queues: int = 3, users: int = 8) -> Directory:
    """A small organization with `queues` queues and `users` agents."""
    organization_id = _guid(rng)
    queue_list = tuple(
        Queue(_guid(rng), _QUEUES[n % len(_QUEUES)], f"+3581012{_digits(rng, 5)}")
        for n in range(queues)
    )
    user_list = tuple(
        User(
            _guid(rng),
            f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}{n}@example.com",
            f"+35840{_digits(rng, 7)}",
        )
        for n in range(users)
    )
    return Directory(organization_id, queue_list, user_list, _guid(rng))


class _Flow:
    """Builds the events of one flow on a clock that only moves forward."""

    def __init__(self, directory: Directory, rng: random.Random, start: datetime) -> None:
        self.directory = directory
        self.rng = rng
        self.now = start
        self.events: list[FlowEvent] = []
        self.queue = rng.choice(directory.queues)
        self.user = rng.choice(directory.users)
        self.call_id = _guid(rng)
        self.leg_id = _guid(rng)
        self.caller = f"+35850{_digits(rng, 7)}"
        # Values every event of the flow shares, written only into fields its sample has.
        self.context: dict[str, Any] = {
            "OrganizationId": directory.organization_id,
            "CallId": self.call_id,
            "LegId": self.leg_id,
            "CallerNumber": self.caller,
            "TargetNumber": self.queue.number,
            "QueueId": self.queue.id,
            "QueueName": self.queue.name,
            "QueueNumber": self.queue.number,
            "TechQueueId": self.queue.id,
            "TechQueueName": self.queue.name,
            "UserId": self.user.id,
            "UserName": self.user.name,
            "UserNumber": self.user.number,
        }

    def wait(self, low: float, high: float) -> None:
        """Move the clock on by a random time between `low` and `high` seconds."""
        self.now += timedelta(milliseconds=self.rng.randint(int(low * 1000), int(high * 1000)))

    def emit(self, event_type: str, **fields: Any) -> None:
        """Add an `event_type` event at the current time; `fields` are set even if not sampled."""
        payload = enreach_sample(event_type, seed=self.rng.getrandbits(32))
        _fill(payload, self.context, add=False)
        _fill(payload, fields, add=True)
        entity_ids = {
            "Queue": self.queue.id,
            "User": self.user.id,
            "CallList": self.directory.call_list_id,
        }
        # The sample already names the event and its entity type; the ids are the flow's.
        payload["RootEntityId"] = self.directory.organization_id
        payload["EntityId"] = entity_ids[payload["EntityType"]]
        payload["Id"] = _guid(self.rng)
        payload["Timestamp"] = _stamp(self.now)
        self.events.append(FlowEvent(self.now, payload))

    # -- the phases flows are made of ---------------------------------------------------

    def queue_call_arrives(self) -> None:
        self.emit("QueueCallInComing")
        self.wait(0.1, 1.0)
        self.emit("QueueCallInArrived")

    def agent_answers(self) -> None:
        self.wait(2, 45)
        self.emit("QueueCallInUserAllocated", DetailedReason="")
        self.wait(2, 12)
        self.emit("QueueCallInUserConnected", AgentLegId=_guid(self.rng))

    def call_ends(self, reason: str = "remote", tech_reason: str = "") -> None:
        self.emit("QueueCallInDisconnected", Reason=reason, TechReason=tech_reason)


def _fill(payload: dict[str, Any], values: Mapping[str, Any], *, add: bool) -> None:
    """Write `values` into the payload's fields of the same name in any casing."""
    keys = {key.lower(): key for key in payload}
    for name, value in values.items():
        key = keys.get(name.lower())
        if key is not None:
            payload[key] = value
        elif add:
            payload[name] = value


def _inbound(flow: _Flow) -> None:
    """A queue call answered by an agent, then hung up by the caller."""
    flow.queue_call_arrives()
    flow.agent_answers()
    flow.wait(20, 400)
    flow.call_ends()


def _transfer(flow: _Flow) -> None:
    """A queue call the answering agent transfers on to another number."""
    flow.queue_call_arrives()
    flow.agent_answers()
    flow.wait(15, 200)
    target = f"+35810{flow.rng.choice(('1', '2', '3'))}{_digits(flow.rng, 6)}"
    flow.emit(
        "QueueCallInTransferStarted",
        TransferApplet="TransferToNumber",
        TransferSource="User",
        TransferTarget=target,
        TechType="ServiceQueue",
    )
    flow.wait(2, 10)
    flow.emit(
        "QueueCallInTransferConnected",
        TransferApplet="TransferToNumber",
        ConnectedTarget=target,
        TechSource="ServiceQueue",
    )
    flow.wait(20, 300)
    flow.call_ends()


def _overflow(flow: _Flow) -> None:
    """A queue call nobody answers in time, turned into a callback request an agent handles."""
    flow.queue_call_arrives()
    flow.wait(60, 180)
    flow.emit(
        "QueueCallInOverflow",
        OverflowApplet="CallbackRequest",
        TechEvent="QueueTimeout",
        TechNumber=flow.queue.number,
        TechSource="ServiceQueue",
    )
    flow.wait(0.1, 1.0)
    flow.call_ends(reason="local", tech_reason="overflow_callback")
    flow.wait(0.5, 2)
    created = _stamp(flow.now)
    callback = {
        "CallBackId": _guid(flow.rng),
        "CallListId": flow.directory.call_list_id,
        "CallId": flow.call_id,
        "ChannelIn": flow.queue.name,
        "ContactNumber": flow.caller,
        "ContactName": "",
        "ContactMessage": "",
        "TypeId": 2,
        "CreationTime": created,
        "Modified": created,
        "DueDate": _stamp(flow.now + timedelta(hours=4)),
        "ExpiryDate": _stamp(flow.now + timedelta(days=7)),
        "NotBefore": None,
        "AssignedUserId": None,
        "LastModifiedUserId": None,
        "CallbackAttempts": [],
        "LastAttemptNote": "",
        "LastAttemptTimestamp": None,
        "LastAttemptTypeId": None,
        "LastAttemptUserId": None,
        "Note": "",
    }
    flow.emit("CallbackChanged", **callback)
    flow.wait(60, 900)
    callback |= {"AssignedUserId": flow.user.id, "Modified": _stamp(flow.now)}
    flow.emit("CallbackChanged", **callback)
    flow.wait(30, 300)
    attempted = _stamp(flow.now)
    attempt = {
        "CallbackAttemptTypeId": 1,
        "Id": _guid(flow.rng),
        "Note": "Soitettu, asia hoidettu",
        "Timestamp": attempted,
        "UserId": flow.user.id,
    }
    callback |= {
        "CallbackAttempts": [attempt],
        "LastAttemptNote": attempt["Note"],
        "LastAttemptTimestamp": attempted,
        "LastAttemptTypeId": 1,
        "LastAttemptUserId": flow.user.id,
        "LastModifiedUserId": flow.user.id,
        "Modified": attempted,
    }
    flow.emit("CallbackChanged", **callback)


def _availability(flow: _Flow) -> None:
    """An agent becomes available, takes a call, wraps it up, then goes to lunch."""
    profile = {"ProfileId": _guid(flow.rng), "EventSource": "User"}
    flow.emit(
        "UserAvailability",
        Availability="Available",
        StartTime=_stamp(flow.now),
        EndTime=MAX_VALUE,
        Note="",
        **profile,
    )
    flow.wait(5, 60)
    flow.queue_call_arrives()
    flow.agent_answers()
    max_wrap_up = flow.rng.choice((30, 60, 120))
    wrap_up = {"MaxWrapUpDurationSec": max_wrap_up}
    flow.wait(0.02, 0.2)
    flow.emit("UserWrapUpEnabled", **wrap_up)
    flow.wait(20, 400)
    flow.call_ends()
    flow.wait(0.02, 0.2)
    flow.emit("UserWrapUpStarted", **wrap_up)
    elapsed = flow.rng.randint(5, max_wrap_up)
    flow.now += timedelta(seconds=elapsed)
    reason = "timer" if elapsed == max_wrap_up else "manual"
    flow.emit("UserWrapUpTerminated", ElapsedTimeSec=elapsed, Reason=reason)
    flow.wait(1, 30)
    flow.emit(
        "UserAvailability",
        Availability="DoNotDisturb",
        StartTime=_stamp(flow.now),
        EndTime=_stamp(flow.now + timedelta(minutes=30)),
        Note="Lounas",
        **profile,
    )


FLOWS: dict[str, Callable[[_Flow], None]] = {
    "inbound": _inbound,
    "transfer": _transfer,
    "overflow": _overflow,
    "availability": _availability,
}
"""Every flow a stream can be made of, by name."""


def make_flow(
    kind: str, directory: Directory, rng: random.Random, start: datetime
) -> list[FlowEvent]:
    """The events of one `kind` flow starting at `start`, in the order they happen."""
    flow = _Flow(directory, rng, start)
    FLOWS[kind](flow)
    return flow.events

"""Realistic sample payloads, one per Enreach event type, made from the catalog.

A sample is the JSON object Enreach would POST: PascalCase names, GUIDs as strings, .NET
timestamps without a zone, E.164 Finnish numbers, and common properties that agree with the
body (`EntityId` is the queue's id for Queue events, the user's for User events, the list's for
CallList events; `RootEntityId` is the `OrganizationId`). The same seed gives the same payload.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from receiver.catalogs import enreach
from receiver.catalogs.model import Event, NestedType, Property

__all__ = ["ENREACH_EVENT_TYPES", "dotnet_datetime", "enreach_sample"]

ENREACH_EVENT_TYPES: tuple[str, ...] = enreach.EVENT_TYPES
"""Every documented Enreach event type, in the catalog's order."""

MAX_VALUE = "9999-12-31T23:59:59.9999999"
""".NET's `DateTime.MaxValue` as Enreach writes it: a state with no end."""

_EVENTS = {event.name: event for event in enreach.EVENTS}
_NESTED = {nested.name: nested for nested in enreach.NESTED_TYPES}

_FIRST = ("Aino", "Eino", "Matti", "Liisa", "Juha", "Sanna", "Mikko", "Laura", "Ville", "Emilia")
_LAST = ("Virtanen", "Korhonen", "Mäkinen", "Nieminen", "Mäkelä", "Hämäläinen", "Laine", "Koskinen")
_QUEUES = ("Asiakaspalvelu", "Myynti", "Laskutus", "Tekninen tuki", "Vaihde", "Ajanvaraus")
_MOBILE_PREFIXES = ("40", "41", "44", "45", "46", "50")
# The provider publishes no SupervisionState values; these only make samples look plausible.
_SUPERVISION_STATES = ("Listening", "Whispering", "Barging", "Ended")


def enreach_sample(
    event_type: str,
    *,
    seed: int | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One realistic payload of `event_type`, as Enreach would send it.

    `seed` makes the payload reproducible (without it, every call has a fresh `Id`).
    `overrides` replace or add properties by name (matching existing names case-insensitively);
    overriding the entity's id property (`QueueId`, ...) or `OrganizationId` also moves
    `EntityId` or `RootEntityId` with it, and the other way round, unless both are given.
    Raises ValueError for an event type the catalog does not document.
    """
    event = _EVENTS.get(event_type)
    if event is None:
        raise ValueError(f"not a documented Enreach event type: {event_type!r}")
    # S311: not for security; samples only need variety and, with a seed, repeatability.
    rng = random.Random(f"{event_type}:{seed}") if seed is not None else random.Random()  # noqa: S311
    payload = _Sample(rng, event).payload()
    if overrides:
        _apply(payload, overrides, event)
    return payload


def dotnet_datetime(moment: datetime, ticks: int = 0) -> str:
    """Write `moment` (to the second) plus `ticks` (units of 100 ns, below 10**7) as .NET does.

    Trailing zeros of the fraction are dropped, as in the provider's `2018-01-01T08:01:23.45`.
    """
    fraction = f".{ticks:07d}".rstrip("0") if ticks else ""
    return f"{moment:%Y-%m-%dT%H:%M:%S}{fraction}"


def _apply(payload: dict[str, Any], overrides: Mapping[str, Any], event: Event) -> None:
    by_lower = {key.lower(): key for key in payload}
    for key, value in overrides.items():
        payload[by_lower.get(key.lower(), key)] = value
    given = {key.lower() for key in overrides}
    for one, other in (("EntityId", enreach.entity_key(event)), ("RootEntityId", "OrganizationId")):
        for source, target in ((one, other), (other, one)):
            if source.lower() in given and target.lower() not in given:
                payload[by_lower[target.lower()]] = payload[by_lower[source.lower()]]


class _Sample:
    """The people, queue and call one sample payload talks about, so its values agree."""

    def __init__(self, rng: random.Random, event: Event) -> None:
        self.rng = rng
        self.event = event
        self.now = datetime(2025, 1, 1, 8) + timedelta(
            days=rng.randrange(365), seconds=rng.randrange(9 * 3600)
        )
        self.organization = self.guid()
        self.queue = self.guid()
        self.queue_name = rng.choice(_QUEUES)
        self.queue_number = "+35810" + self.digits(7)
        self.user, self.user_name, self.user_number = self.guid(), *self.person()
        self.outside_number = self.mobile()
        self.call = self.guid()
        self.leg = self.guid()
        self.call_list = self.guid()

    # -- building blocks --------------------------------------------------------------------

    def guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def digits(self, count: int) -> str:
        return "".join(self.rng.choice("0123456789") for _ in range(count))

    def mobile(self) -> str:
        return "+358" + self.rng.choice(_MOBILE_PREFIXES) + self.digits(7)

    def person(self) -> tuple[str, str]:
        first, last = self.rng.choice(_FIRST), self.rng.choice(_LAST)
        login = f"{first}.{last}@example.com".lower().translate(str.maketrans("äöå", "aoa"))
        return login, self.mobile()

    def stamp(self, moment: datetime) -> str:
        return dotnet_datetime(moment, self.rng.randrange(10_000_000))

    def minutes(self, low: int, high: int) -> timedelta:
        return timedelta(minutes=self.rng.randint(low, high), seconds=self.rng.randrange(60))

    # -- the payload ------------------------------------------------------------------------

    def payload(self) -> dict[str, Any]:
        event = self.event
        group = _GROUPS.get(event.name)
        together = group(self) if group is not None else {}
        body = {
            p.name: together[p.name] if p.name in together else self.event_value(p)
            for p in event.properties
        }
        names = enreach.OBSERVED_NAMES.get(event.name, {})
        body = {names.get(key, key): value for key, value in body.items()}
        # The order of the provider's example request: routing properties first, id last.
        return {
            "RootEntityType": "Organization",
            "RootEntityId": self.organization,
            "EventType": event.name,
            "EntityType": event.entity,
            "EntityId": body[enreach.entity_key(event)],
            **body,
            "Id": self.guid(),
            "Timestamp": self.stamp(self.now),
        }

    def event_value(self, prop: Property) -> Any:
        special = _EVENT_VALUES.get((self.event.name, prop.name)) or _VALUES.get(prop.name)
        return special(self) if special is not None else self.by_type(prop)

    def record(self, nested: NestedType) -> dict[str, Any]:
        return {prop.name: self.by_type(prop) for prop in nested.properties}

    def by_type(self, prop: Property) -> Any:
        item = prop.item_type
        if item is not None:
            return [self.record(_NESTED[item]) for _ in range(self.rng.randint(1, 3))]
        base = prop.base_type
        if base == "Guid":
            return self.guid()
        if base == "DateTime":
            return self.stamp(self.now - self.minutes(0, 120))
        if base == "bool":
            return self.rng.random() < 0.5
        if base in ("int", "long", "short"):
            return self.rng.randint(0, 10)
        return ""

    # -- values that depend on each other ---------------------------------------------------

    def user_status(self) -> dict[str, Any]:
        rng = self.rng
        available, talking = rng.random() < 0.8, rng.random() < 0.4
        serving, wrap_up = rng.random() < 0.9, not talking and rng.random() < 0.2
        return {
            "ActiveQueueId": self.queue if talking and serving else None,
            "ActiveQueues": rng.randint(1, 4) if serving else 0,
            "Available": available,
            "CanBeAllocatedTo": available and serving and not talking and not wrap_up,
            "ParkedCalls": rng.choice((0, 0, 0, 1)),
            "Schedule": available or rng.random() < 0.5,
            "ServiceTerminals": rng.randint(1, 2),
            "Serving": serving,
            "ServingCallback": serving and rng.random() < 0.3,
            "Talking": talking,
            "WrapUpEnd": self.stamp(self.now + timedelta(seconds=rng.randint(10, 60)))
            if wrap_up
            else None,
        }

    def queue_status(self) -> dict[str, Any]:
        rng = self.rng
        checked_in = rng.randint(3, 25)
        long_away = rng.randint(0, checked_in // 3)
        connected = rng.randint(0, checked_in - long_away)
        wrap_up = rng.randint(0, checked_in - long_away - connected)
        free = checked_in - long_away - connected - wrap_up
        queuing = rng.randint(0, 12) if free == 0 else rng.randint(0, 1)
        allocated = min(free, rng.randint(0, 2))
        return {
            "MaxWaitTime": rng.randint(5, 600) if queuing else 0,
            "NbrOfAgentsCheckedInQueue": checked_in,
            "NbrOfAgentsImmediatelyFree": free - allocated,
            "NbrOfAgentsLongTermAway": long_away,
            "NbrOfAgentsOnWrapUp": wrap_up,
            "NbrOfAgentsShortTermAway": connected + allocated,
            "NbrOfAllocated": allocated,
            "NbrOfConnected": connected,
            "NbrOfNotServedRequesters": queuing + allocated,
            "NbrOfProviders": checked_in - long_away,
            "NbrOfQueuingRequesters": queuing,
            "NbrOfRequesters": queuing + allocated + connected,
            "NbrOfServingAgentsEstimate": checked_in - long_away,
            "OpenStatus": rng.choice((5, 5, 5, 5, 6, 3, 1)),
        }

    def list_status(self) -> dict[str, Any]:
        rng = self.rng
        open_requests = rng.randint(0, 60)
        assigned = rng.randint(0, open_requests // 4)
        hiding = rng.randint(0, (open_requests - assigned) // 3)
        active = rng.randint(1, 10)
        serving = rng.randint(0, active)
        auto = rng.random() < 0.5
        return {
            "ExpiresIn24h": rng.randint(0, open_requests // 5),
            "IsAutoAllocate": auto,
            "NextHourOverDueDate": rng.randint(0, open_requests // 6),
            "NextHourRevealedNotBefore": rng.randint(0, hiding),
            "TotalActiveAgents": active,
            "TotalAssigned": assigned,
            "TotalAutoAllocateAgents": serving,
            "TotalFreeForAllocation": open_requests - assigned - hiding,
            "TotalHidingNotBefore": hiding,
            "TotalOpenRequests": open_requests,
            "TotalOverDueDate": rng.randint(0, open_requests // 4),
            "TotalServingAgents": serving,
            "TotalServingAutoAllocateAgents": serving if auto else 0,
        }

    def availability(self) -> dict[str, Any]:
        state = self.rng.choice(("Available", "Busy", "DoNotDisturb", "OffWork"))
        start = self.now - self.minutes(0, 180)
        continuous = state in ("Available", "OffWork") or self.rng.random() < 0.3
        note = {"Busy": "Palaveri", "DoNotDisturb": "Lounas"}.get(state, "")
        return {
            "Availability": state,
            "EndTime": MAX_VALUE if continuous else self.stamp(self.now + self.minutes(15, 90)),
            "Note": note,
            "StartTime": self.stamp(start),
        }

    def callback(self) -> dict[str, Any]:
        rng = self.rng
        created = self.now - timedelta(hours=rng.randint(1, 72))
        attempts = [self.attempt(created, i) for i in range(rng.randint(0, 3))]
        last = attempts[-1] if attempts else None
        closed = last is not None and last["CallbackAttemptTypeId"] == 1
        assigned = self.user if rng.random() < 0.5 and not closed else None
        caller = self.mobile()
        return {
            "AssignedUserId": assigned,
            "CallbackAttempts": attempts,
            "CallbackRelatedItems": [self.related() for _ in range(rng.randint(0, 2))],
            "ContactMessage": "",
            "ContactName": rng.choice(("", "", f"{rng.choice(_FIRST)} {rng.choice(_LAST)}")),
            "ContactNumber": caller,
            "CreationTime": self.stamp(created),
            "DueDate": self.stamp(created + timedelta(days=1)),
            "ExpiryDate": self.stamp(created + timedelta(days=7)),
            "LastAttemptNote": last["Note"] if last else "",
            "LastAttemptTimestamp": last["Timestamp"] if last else None,
            "LastAttemptTypeId": last["CallbackAttemptTypeId"] if last else None,
            "LastAttemptUserId": last["UserId"] if last else None,
            "LastModifiedUserId": last["UserId"] if last else None,
            "Modified": self.stamp(self.now),
            "NotBefore": None,
        }

    def attempt(self, created: datetime, index: int) -> dict[str, Any]:
        kind = self.rng.choice((1, 2, 3))
        note = {1: "Soitettu, asia hoidettu", 2: "Ei vastannut", 3: "Varattu"}[kind]
        return {
            "CallbackAttemptTypeId": kind,
            "Id": self.guid(),
            "Note": note,
            "Timestamp": self.stamp(created + timedelta(hours=index + 1)),
            "UserId": self.user,
        }

    def related(self) -> dict[str, Any]:
        return {
            "Id": self.guid(),
            "IsClosed": self.rng.random() < 0.6,
            "ListId": self.guid(),
            "StatusId": self.rng.choice((None, 1, 2, 3)),
        }

    def extra_fields(self) -> list[dict[str, Any]]:
        fields = (("Asiakasnumero", self.digits(6)), ("Kieli", "fi"), ("Aihe", "Lasku"))
        count = self.rng.randint(0, len(fields))
        return [{"Id": i + 1, "Name": n, "Value": v} for i, (n, v) in enumerate(fields[:count])]

    def attached_users(self) -> list[dict[str, Any]]:
        others = [self.guid() for _ in range(self.rng.randint(1, 5))]
        return [
            {"Active": self.rng.random() < 0.8, "Priority": self.rng.randint(1, 5), "UserId": u}
            for u in [self.user, *others]
        ]


def _pick(*choices: Any) -> Callable[[_Sample], Any]:
    return lambda s: s.rng.choice(choices)


_VALUES: dict[str, Callable[[_Sample], Any]] = {
    "AgentLegId": lambda s: s.guid(),
    "CallerNumber": lambda s: s.outside_number,
    "CallId": lambda s: s.call,
    "CallListId": lambda s: s.call_list,
    "ConnectedTarget": lambda s: s.user_number,
    "DetailedReason": _pick("", "NoAnswer", "Rejected", "AllocationTimeout"),
    "LegId": lambda s: s.leg,
    "OrganizationId": lambda s: s.organization,
    "OverflowApplet": _pick("QueueOverflow", "OpeningHours", "Voicemail"),
    "QueueId": lambda s: s.queue,
    "QueueName": lambda s: s.queue_name,
    "QueueNumber": lambda s: s.queue_number,
    "Reason": _pick("remote", "local"),
    "Target": lambda s: s.mobile(),
    "TargetNumber": lambda s: s.queue_number if s.event.entity == "Queue" else s.user_number,
    "TechEvent": _pick("QueueTimeout", "NoAgentsAvailable", "QueueFull"),
    "TechNumber": lambda s: s.queue_number,
    "TechQueueId": lambda s: s.guid(),
    "TechQueueName": lambda s: f"{s.queue_name} / jono",
    "TechReason": _pick("normal_clearing", "busy_on_busy", "ivr_menu_failure", "487"),
    "TechSource": _pick("ServiceQueue", "User", "Ivr"),
    "TechType": _pick("ServiceQueue", "User", "Ivr"),
    "TransferApplet": _pick("TransferToNumber", "TransferToQueue", "Voicemail"),
    "TransferSource": _pick("ServiceQueue", "User"),
    "TransferTarget": lambda s: s.mobile(),
    "UserId": lambda s: s.user,
    "UserName": lambda s: s.user_name,
    "Username": lambda s: s.user_name,
    "UserNumber": lambda s: s.user_number,
    "EventSource": _pick("User", "Schedule", "Calendar"),
    "ProfileId": lambda s: s.guid(),
    "MaxWrapUpDurationSec": _pick(30, 60, 90, 120),
    "ElapsedTimeSec": lambda s: s.rng.randint(5, 120),
    "SupervisorLegId": lambda s: s.guid(),
    "SupervisorUserId": lambda s: s.guid(),
    "SupervisorUserName": lambda s: s.person()[0],
    "TargetUserId": lambda s: s.user,
    "TargetUserName": lambda s: s.user_name,
    "State": _pick(*_SUPERVISION_STATES),
    "AttachedUsers": lambda s: s.attached_users(),
    "CalculatedPriority": _pick("1", "2", "3"),
    "CallbackExtras": lambda s: s.extra_fields(),
    "ChannelIn": lambda s: s.queue_name,
    "ClassificationId": lambda s: s.rng.choice((None, s.guid())),
    "RecordingId": lambda s: s.rng.choice((None, s.guid())),
    "TranscriptId": lambda s: None,
    "TypeId": _pick(1, 2, 2, 3),
}
"""Values by property name, for any event that has the property."""

_GROUPS: dict[str, Callable[[_Sample], dict[str, Any]]] = {
    "UserAvailability": _Sample.availability,
    "UserStatus": _Sample.user_status,
    "QueueStatus": _Sample.queue_status,
    "CallbackChanged": _Sample.callback,
    "CallbackListStatus": _Sample.list_status,
}
"""Events whose values must agree with each other (counters, times): made together."""

_EVENT_VALUES: dict[tuple[str, str], Callable[[_Sample], Any]] = {
    ("UserCallInUserOverflow", "Reason"): _pick(
        "NoAnswer", "DND", "OffWork", "BusyOnBusy", "TransferAll", "AVAActiveProfile"
    ),
    ("UserWrapUpTerminated", "Reason"): _pick("manual", "timer"),
    ("UserCallOutConnected", "CallerNumber"): lambda s: s.user_number,
    ("UserCallOutDisconnected", "CallerNumber"): lambda s: s.user_number,
    ("UserCallOutGoing", "CallerNumber"): lambda s: s.user_number,
    ("UserCallOutConnected", "TargetNumber"): lambda s: s.outside_number,
    ("UserCallOutDisconnected", "TargetNumber"): lambda s: s.outside_number,
    ("UserCallOutGoing", "TargetNumber"): lambda s: s.outside_number,
    ("UserSupervisionStatus", "QueueId"): lambda s: s.rng.choice((None, s.queue)),
    ("CallbackChanged", "CallId"): lambda s: s.rng.choice((None, s.call)),
    ("CallbackChanged", "Note"): _pick("", "Asiakas pyysi soittoa iltapäivällä"),
}
"""Values for one event's property, where it differs from `_VALUES`."""

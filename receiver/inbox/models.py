"""The records that flow into and out of an inbox.

An *event* is stored once (deduplicated by its source and dedup key). Each subscriber that
wants it gets a *delivery* of it, with its own state, attempts and errors; every attempt that
failed is kept as an `Attempt`, the one that succeeded in its delivery's `finished_at` and
`duration`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from receiver.exceptions import ConfigError

__all__ = [
    "ERASED",
    "PHONE_SEPARATORS",
    "Attempt",
    "Completion",
    "DeliveryKey",
    "DeliveryRecord",
    "EventFilter",
    "EventRecord",
    "Expired",
    "Headers",
    "InboxStats",
    "NewEvent",
    "State",
    "StoredEvent",
    "StoredPayload",
    "decode_headers",
    "encode_headers",
    "only_ids",
    "payload_has_phone",
    "phone_digits",
]

Headers = tuple[tuple[str, str], ...]
"""Request headers as stored with an event: (lower-case name, value) pairs in arrival order."""


def decode_headers(blob: bytes | None) -> Headers:
    """The pairs of a stored headers blob (`NewEvent.headers`); empty for none or a blob
    that is not a JSON array of [name, value] pairs of text."""
    if not blob:
        return ()
    try:
        pairs = orjson.loads(blob)
    except orjson.JSONDecodeError:
        return ()
    if not isinstance(pairs, list):
        return ()
    return tuple(
        (pair[0], pair[1])
        for pair in pairs
        if isinstance(pair, list)
        and len(pair) == 2
        and isinstance(pair[0], str)
        and isinstance(pair[1], str)
    )


def encode_headers(headers: Headers) -> bytes | None:
    """The blob `decode_headers` reads back as `headers` (None for none)."""
    return orjson.dumps(headers) if headers else None


PHONE_SEPARATORS = " \t-.()/"
"""What a phone number may be written with between its digits; ignored when comparing."""

_NO_SEPARATORS = str.maketrans("", "", PHONE_SEPARATORS)


def phone_digits(text: str) -> str | None:
    """The digits a phone number is compared by (`EventFilter.phone`): `text` without the
    separators of `PHONE_SEPARATORS` and any leading `+`; None unless what is left is
    nothing but ASCII digits, 1 to 18 of them (E.164 numbers have at most 15; 18 keeps every
    number an integer of every backend).

    So `+358 40 123 4567`, `+358401234567` and `358-40-1234567` all give `358401234567`,
    while `040 123 4567` gives `0401234567`: a national and an international form of one
    number are different numbers here (the receiver knows no country's dialling rules).
    """
    digits = text.translate(_NO_SEPARATORS).lstrip("+")
    return digits if len(digits) <= 18 and digits.isascii() and digits.isdigit() else None


class State(enum.IntEnum):
    """Where a delivery is in its life; stored as a small integer."""

    PENDING = 0
    IN_PROGRESS = 1
    DONE = 2
    DEAD = 3
    DISCARDED = 4
    """A dead letter an operator gave up on (`receiver inbox discard`)."""

    @property
    def label(self) -> str:
        """The name shown by the CLI (`pending`, `in_progress`, `done`, `dead`, `discarded`)."""
        return self.name.lower()

    @classmethod
    def parse(cls, label: str) -> State:
        """The state named `label` (as `label` shows it); ValueError naming the choices."""
        try:
            return cls[label.strip().upper()]
        except KeyError:
            choices = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown state {label!r}; choose one of {choices}") from None


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An authenticated, decoded request, ready to be appended to the inbox."""

    source: str
    """Endpoint name; dedup keys are unique per source."""
    dedup_key: str
    event_type: str
    order_key: str | None
    """A subscriber handles events sharing an order key one at a time, in arrival order."""
    payload: bytes
    """The event as JSON bytes (for JSON sources, the request body as received)."""
    headers: bytes | None = None
    """The request's headers, less credentials and hop-by-hop ones, as a JSON array of
    [lower-case name, value] pairs (`receiver.stored_headers`); None: not kept."""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One delivery: a stored event as one subscriber's handler gets it."""

    id: int
    source: str
    dedup_key: str
    event_type: str
    order_key: str | None
    payload: bytes
    state: State
    attempts: int
    """Failed attempts of this delivery so far (the running attempt is number attempts + 1)."""
    received_at: float
    next_attempt_at: float
    last_error: str | None
    finished_at: float | None
    subscriber: str = "default"
    """The subscriber this delivery is for."""

    @property
    def key(self) -> DeliveryKey:
        """(event id, subscriber): what the work queue knows this delivery by."""
        return (self.id, self.subscriber)


DeliveryKey = tuple[int, str]
"""A delivery's identity in the work queue: its event's id and its subscriber's name."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt of a delivery that did not succeed (or, in a history, the one that did)."""

    number: int
    """1 for the first attempt; after a replay, counting starts over (the history is kept)."""
    started_at: float
    duration: float
    outcome: str
    """`retry` (another attempt follows), `dead` (it was the last), or `done`."""
    error: str | None
    """The exception's type and message, then its traceback; or the HTTP status and the start
    of the answer for a forwarding subscriber."""
    subscriber: str = "default"


class StoredPayload(NamedTuple):
    """One event's payload as `InboxAdmin.payloads` gives it, with what identifies it."""

    id: int
    source: str
    dedup_key: str
    order_key: str | None
    payload: bytes


class Completion(NamedTuple):
    """A delivery whose handler returned: when its successful attempt started, how long.

    A named tuple, not a dataclass: one is made per delivery on the dispatch path, and a
    tuple costs a fraction of a frozen dataclass to make.
    """

    event_id: int
    subscriber: str
    started_at: float
    duration: float


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One subscriber's delivery of an event, as the admin side shows it."""

    subscriber: str
    state: State
    attempts: int
    next_attempt_at: float
    finished_at: float | None
    last_error: str | None
    duration: float | None
    """How long the successful attempt took, once done."""


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event with every delivery and the history of its attempts (`receiver inbox show`)."""

    id: int
    source: str
    dedup_key: str
    event_type: str
    order_key: str | None
    payload: bytes
    received_at: float
    deliveries: tuple[DeliveryRecord, ...]
    history: tuple[Attempt, ...]
    """Every attempt of every delivery, oldest first; the successful ones included."""
    headers: Headers = ()
    """The request's headers as stored (`NewEvent.headers`); empty when none were kept."""


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which deliveries an admin listing or bulk action covers; every given field must match."""

    subscriber: str | None = None
    source: str | None = None
    event_type: str | None = None
    states: tuple[State, ...] = ()
    """Any of these states; empty: any state."""
    order_key: str | None = None
    since: float | None = None
    """Received at or after (unix time)."""
    until: float | None = None
    """Received before (unix time)."""
    phone: str | None = None
    """A phone number found anywhere in the event's payload: some string value of it (at
    any depth, keys excluded) whose `phone_digits` equal this number's, or an integer
    value written as exactly those digits. ConfigError when it is no phone number."""
    with_payload: bool = False
    """Only events whose payload is still there (not `ERASED`): what a replay can deliver."""
    event_ids: tuple[int, ...] | None = None
    """Only these events (None: any). How a search done outside the backend (a phone number
    in encrypted payloads) narrows what the backend lists."""

    def __post_init__(self) -> None:
        if self.phone is not None and phone_digits(self.phone) is None:
            raise ConfigError(
                "the phone filter is not a phone number (up to 18 digits, an optional leading"
                " +, and spaces, dashes, dots, slashes or brackets between them)"
            )


@dataclass(frozen=True, slots=True)
class InboxStats:
    """Counts by state, subscriber and source, and what is waiting."""

    location: str
    size_bytes: int | None
    events: int
    by_state: dict[str, int]
    """Deliveries by state label."""
    by_subscriber: dict[str, dict[str, int]]
    """Deliveries by subscriber, then state label."""
    by_source: dict[str, int]
    """Events by source."""
    oldest_open_age: dict[str, float] = field(default_factory=dict)
    """Seconds since the oldest unfinished delivery of each subscriber that has one arrived."""

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready mapping."""
        return {
            "inbox": self.location,
            "size_bytes": self.size_bytes,
            "events": self.events,
            "by_state": self.by_state,
            "by_subscriber": self.by_subscriber,
            "by_source": self.by_source,
            "oldest_open_age_seconds": self.oldest_open_age,
        }


@dataclass(frozen=True, slots=True)
class Expired:
    """What one pass of `expire` did: payloads removed past `payload_retention_days`, and the
    dead letters given up on past `dead_retention_days`."""

    scrubbed: int = 0
    """Finished events whose payload, headers and error texts were removed (what dedup and
    the counters need stays: source, dedup key, type, order key, times, states)."""
    dropped: tuple[DeliveryKey, ...] = ()
    """Dead letters (event id, subscriber) now discarded: kept longer than
    `dead_retention_days` without a replay."""


ERASED = b""
"""A payload removed, by `expire` past `payload_retention_days` or by `receiver inbox erase`:
its dedup key stays until `retention_days`, so a provider's retry is still acknowledged and
not delivered again."""


def only_ids(where: EventFilter, ids: list[int] | None) -> list[int] | None:
    """The event ids a backend keeps for `where` and an action's own `ids`: both lists apply
    (None: no limit)."""
    if where.event_ids is None:
        return ids
    if ids is None:
        return list(where.event_ids)
    kept = set(where.event_ids)
    return [i for i in ids if i in kept]


def payload_has_phone(payload: bytes, digits: str | None) -> bool:
    """Whether JSON `payload` holds a string value whose `phone_digits` are `digits`, or an
    integer written as them, at any depth (keys are not values); False if it is not JSON."""
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    todo: list[Any] = [document]
    while todo:
        value = todo.pop()
        if isinstance(value, dict):
            todo.extend(value.values())
        elif isinstance(value, list):
            todo.extend(value)
        elif isinstance(value, str):
            if phone_digits(value) == digits:
                return True
        elif isinstance(value, int) and not isinstance(value, bool) and str(value) == digits:
            return True
    return False

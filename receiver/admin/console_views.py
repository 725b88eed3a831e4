"""What the console's pages show, made from the inbox's records: rows of events, counts, an
event's fields, and the masking every text goes through.

Pure functions and small records, no I/O: `receiver.admin.console` reads the inbox and renders
these with the templates.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from receiver.commands.inbox import first_line, utc
from receiver.inbox.models import (
    Attempt,
    DeliveryRecord,
    EventRecord,
    State,
    StoredEvent,
)
from receiver.redaction import mask_personal

__all__ = [
    "MAX_FIELDS_SHOWN",
    "STATE_LABELS",
    "AttemptView",
    "Counts",
    "DeliveryView",
    "EventRow",
    "Field",
    "Masker",
    "Page",
    "attempt_view",
    "clock",
    "delivery_views",
    "event_rows",
    "payload_fields",
    "payload_text",
    "utc",
]

STATE_LABELS = tuple(s.label for s in State)
"""Every delivery state, in the order the pages list them."""

MAX_FIELDS_SHOWN = 500
"""Fields an event's page lists at most (the raw payload has the rest)."""

# -- masking ----------------------------------------------------------------------------------


class Masker:
    """Hides configured secrets always, and phone numbers and e-mail addresses unless `reveal`."""

    def __init__(self, secrets: Iterable[str], *, reveal: bool = False) -> None:
        """`secrets`: every text to hide (`receiver.runtime.secret_texts`)."""
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self.reveal = reveal

    def __call__(self, text: str | None) -> str:
        """`text` with what may not be shown masked ("" for None)."""
        if not text:
            return ""
        for secret in self.secrets:
            text = text.replace(secret, "[secret]")
        if not self.reveal:
            text = mask_personal(text)
        return text


# -- times ------------------------------------------------------------------------------------


def clock(ts: float | None, now: float | None = None) -> str:
    """`09:00:01` for a time today (UTC), else `11-29 09:00`."""
    if ts is None:
        return "-"
    when = dt.datetime.fromtimestamp(ts, dt.UTC)
    today = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC).date()
    return when.strftime("%H:%M:%S" if when.date() == today else "%m-%d %H:%M")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1000
    if ms < 10:
        return f"{ms:.1f} ms"
    return f"{ms:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


# -- the list ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    """What every page's frame needs: which tab is on, the forms' CSRF token, whether a
    sign-out button is shown."""

    nav: str
    csrf: str
    signed_in: bool


@dataclass(slots=True)
class DeliveryView:
    """One subscriber's delivery as a list row or an event's page shows it."""

    subscriber: str
    state: str
    attempts: int
    error: str
    """The last error's first line, masked."""
    finished: str = "-"
    duration: str = "-"
    next_attempt: str = "-"
    history: list[AttemptView] = field(default_factory=list)


@dataclass(slots=True)
class EventRow:
    """An event in a list, with those of its deliveries that match the filters."""

    id: str
    received_at: float
    received: str
    time: str
    source: str
    event_type: str
    call: str
    """The order key as stored (for the filter link)."""
    call_shown: str
    """The order key as shown: masked like any text (an order key may be a phone number)."""
    deliveries: list[DeliveryView]

    @property
    def worst(self) -> str:
        """The state that most needs a look (dead first), for the row's colour."""
        states = {d.state for d in self.deliveries}
        for label in ("dead", "pending", "in_progress", "discarded", "done"):
            if label in states:
                return label
        return "done"


def event_rows(
    deliveries: Sequence[StoredEvent], mask: Masker, *, oldest_first: bool = False
) -> list[EventRow]:
    """One row per event, its deliveries in the list's order; newest event first unless
    `oldest_first` (a call's story)."""
    rows: dict[str, EventRow] = {}
    now = time.time()
    for d in deliveries:
        key = str(d.id)
        row = rows.get(key)
        if row is None:
            row = rows[key] = EventRow(
                id=key,
                received_at=d.received_at,
                received=utc(d.received_at),
                time=clock(d.received_at, now),
                source=d.source,
                event_type=d.event_type,
                call=d.order_key or "",
                call_shown=mask(d.order_key),
                deliveries=[],
            )
        row.deliveries.append(
            DeliveryView(
                subscriber=d.subscriber,
                state=d.state.label,
                attempts=d.attempts,
                error=mask(first_line(d.last_error)),
            )
        )
    ordered = list(rows.values())
    for row in ordered:
        row.deliveries.sort(key=lambda v: v.subscriber)
    ordered.sort(key=lambda r: (r.received_at, _id_order(r.id)), reverse=not oldest_first)
    return ordered


def _id_order(event_id: str) -> tuple[int, str]:
    return (int(event_id), "") if event_id.isdigit() else (0, event_id)


@dataclass(slots=True)
class Counts:
    """Deliveries by event type and state, with totals."""

    states: list[str]
    rows: list[tuple[str, list[int], int]]
    """(event type, count per state in `states`, total)."""
    totals: list[int]
    total: int

    @classmethod
    def of(cls, counts: Mapping[tuple[str, str], int]) -> Counts:
        """From the inbox's `{(event type, state label): n}`."""
        seen = {state for (_, state), n in counts.items() if n}
        states = [s for s in STATE_LABELS if s in seen or s in ("done", "dead")]
        types = sorted({t for (t, _), n in counts.items() if n})
        rows = []
        for event_type in types:
            cells = [counts.get((event_type, s), 0) for s in states]
            rows.append((event_type, cells, sum(cells)))
        totals = [sum(r[1][i] for r in rows) for i in range(len(states))]
        return cls(states=states, rows=rows, totals=totals, total=sum(totals))


# -- an event ---------------------------------------------------------------------------------


@dataclass(slots=True)
class AttemptView:
    """One attempt in a delivery's history."""

    number: int
    outcome: str
    started: str
    duration: str
    error: str
    """The first line, masked."""
    traceback: str
    """The rest (the traceback), masked; "" if none."""


@dataclass(slots=True)
class Field:
    """One decoded field of a payload: a dotted name, its value as text, what it means."""

    name: str
    value: str
    about: str = ""


def attempt_view(attempt: Attempt, mask: Masker) -> AttemptView:
    """An attempt with its error masked and split into its first line and the rest."""
    text = mask((attempt.error or "").strip())
    first, _, rest = text.partition("\n")
    return AttemptView(
        number=attempt.number,
        outcome=attempt.outcome,
        started=utc(attempt.started_at),
        duration=_duration(attempt.duration),
        error=first.strip(),
        traceback=rest.strip("\n"),
    )


def delivery_views(record: EventRecord, mask: Masker) -> list[DeliveryView]:
    """Each delivery of `record` with its own attempts, newest attempt last."""
    views = []
    for d in sorted(record.deliveries, key=lambda x: x.subscriber):
        views.append(_delivery_view(d, record, mask))
    return views


def _delivery_view(d: DeliveryRecord, record: EventRecord, mask: Masker) -> DeliveryView:
    waiting = d.state in (State.PENDING, State.IN_PROGRESS)
    return DeliveryView(
        subscriber=d.subscriber,
        state=d.state.label,
        attempts=d.attempts,
        error=mask(first_line(d.last_error)),
        finished=utc(d.finished_at),
        duration=_duration(d.duration),
        next_attempt=utc(d.next_attempt_at) if waiting else "-",
        history=[attempt_view(a, mask) for a in record.history if a.subscriber == d.subscriber],
    )


def _decoded(raw: bytes) -> Any:
    """The payload as JSON, or None when it is not JSON."""
    try:
        value = json.loads(raw)
        json.dumps(value)  # may nest too deep to write back out
    except (ValueError, RecursionError):
        return None
    return value


def payload_text(raw: bytes, mask: Masker) -> str:
    """The payload, indented when JSON, masked."""
    value = _decoded(raw)
    if value is None:
        return mask(raw.decode("utf-8", "replace"))
    return mask(json.dumps(value, indent=2, ensure_ascii=False))


def payload_fields(raw: bytes, mask: Masker, about: Mapping[str, str] | None = None) -> list[Field]:
    """The payload's values by dotted name (`Call.Agent.Id`, `Items.0`), masked, each with
    what the provider's catalog says of it (`about`, by lower-case name)."""
    value = _decoded(raw)
    if not isinstance(value, dict):
        return []
    about = about or {}
    out: list[Field] = []
    stack: list[tuple[str, Any]] = [(str(k), v) for k, v in reversed(value.items())]
    while stack and len(out) < MAX_FIELDS_SHOWN:
        name, item = stack.pop()
        if isinstance(item, dict) and item:
            stack.extend((f"{name}.{k}", v) for k, v in reversed(item.items()))
        elif isinstance(item, list) and item:
            stack.extend((f"{name}.{i}", v) for i, v in reversed(list(enumerate(item))))
        else:
            text = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
            out.append(Field(name, mask(text), about.get(name.lower(), "")))
    return out

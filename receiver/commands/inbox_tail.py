"""`receiver inbox tail`: follow new events and delivery attempts as they happen.

It polls the inbox (`InboxAdmin.list` for events, `InboxAdmin.recent_attempts` for attempts)
every `--interval` seconds, looking back `FOLLOW_GRACE` seconds past the newest time it saw for
what was stamped earlier but committed later, and prints each event and each attempt once, in
time order within a poll: a line of text each, or with `--json` one JSON object per line. It
reads only, from any process: the receivers and workers go on unaware of it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from receiver.commands.inbox import first_line, utc
from receiver.inbox.base import FOLLOW_GRACE, InboxAdmin, attempt_key
from receiver.inbox.models import Attempt, EventFilter, StoredEvent
from receiver.logs import printable
from receiver.redaction import mask_personal

__all__ = ["PAGE", "Follower", "add_tail_arguments", "tail"]

PAGE = 500
"""Rows asked of the inbox at once; a poll pages on while pages come back full."""


def _interval(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0.05 <= seconds <= 3600:
        raise argparse.ArgumentTypeError(
            f"{printable(text, 40)!r} is not a number of seconds from 0.05 to 3600"
        )
    return seconds


def add_tail_arguments(parser: argparse.ArgumentParser) -> None:
    """The options `tail` has besides the filters it shares with `list`."""
    parser.add_argument(
        "--interval",
        type=_interval,
        default=0.5,
        metavar="SECONDS",
        help="how often to look for what is new (default 0.5)",
    )
    parser.add_argument(
        "--show-phone-numbers",
        action="store_true",
        help="print phone numbers in call ids and errors unmasked",
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Line:
    """One thing to print: when it happened, and as text and as JSON."""

    at: float
    order: tuple[int, int]
    """Ties in `at`: events before attempts, then by event id."""
    text: str
    data: dict[str, Any]


class Follower:
    """What is new in an inbox since the last poll, each event and attempt once."""

    def __init__(
        self, admin: InboxAdmin, where: EventFilter, start: float, *, show_phones: bool = False
    ) -> None:
        """`where`: the filters (its `since` is ignored); `start`: print what happened from
        this unix time on."""
        self.admin = admin
        self.where = dataclasses.replace(where, since=None, until=None)
        self.start = start
        self._mask: Callable[[str], str] = str if show_phones else mask_personal
        self._events_seen: dict[int, float] = {}
        self._attempts_seen: dict[tuple[int, str, int, str, float], float] = {}
        self._newest_event = start
        self._newest_attempt = start

    def poll(self) -> list[Line]:
        """Everything new since the last poll, oldest first."""
        lines = [*self._events(), *self._attempts()]
        return sorted(lines, key=lambda line: (line.at, line.order))

    # -- events: `list` newest first, read back to the grace before the newest seen --------

    def _events(self) -> Iterator[Line]:
        since = max(self.start, self._newest_event - FOLLOW_GRACE)
        where = dataclasses.replace(self.where, since=since)
        by_event: dict[int, list[StoredEvent]] = {}
        page = self.admin.list(where, limit=PAGE)
        while True:
            for delivery in page:
                if delivery.id not in self._events_seen:
                    by_event.setdefault(delivery.id, []).append(delivery)
            if len(page) < PAGE:
                break
            oldest = min(d.received_at for d in page)
            if where.until is not None and oldest >= where.until:
                break  # a page of one instant: no way further back
            where = dataclasses.replace(where, until=oldest)
            page = self.admin.list(where, limit=PAGE)
        for event_id, deliveries in by_event.items():
            first = deliveries[0]
            self._events_seen[event_id] = first.received_at
            self._newest_event = max(self._newest_event, first.received_at)
            yield self._event_line(first, sorted({d.subscriber for d in deliveries}))
        self._forget(self._events_seen, self._newest_event)

    def _event_line(self, event: StoredEvent, subscribers: list[str]) -> Line:
        call = self._mask(event.order_key) if event.order_key else None
        event_type = self._mask(event.event_type)
        data = {
            "kind": "event",
            "at": utc(event.received_at),
            "event_id": str(event.id),
            "source": event.source,
            "event_type": event_type,
            "call_id": call,
            "subscribers": subscribers,
        }
        text = (
            f"{utc(event.received_at)}  event    {printable(str(event.id), 20):>6}  "
            f"{printable(event.source, 40)}  {printable(event_type, 80)}"
            f"  call {printable(call or '-', 80)}"
            f"  -> {', '.join(printable(s, 40) for s in subscribers)}"
        )
        return Line(event.received_at, (0, event.id), text, data)

    # -- attempts: `recent_attempts` oldest first, from the grace before the newest seen ----

    def _attempts(self) -> Iterator[Line]:
        since = max(self.start, self._newest_attempt - FOLLOW_GRACE)
        while True:
            batch = self.admin.recent_attempts(since, self.where, limit=PAGE)
            for delivery, attempt in batch:
                key = attempt_key(delivery, attempt)
                ended = attempt.started_at + attempt.duration
                if key in self._attempts_seen or ended < self.start:
                    continue
                self._attempts_seen[key] = ended
                self._newest_attempt = max(self._newest_attempt, ended)
                yield self._attempt_line(delivery, attempt, ended)
            if len(batch) < PAGE:
                break
            last = batch[-1][1]
            after = last.started_at + last.duration
            if after <= since:
                break  # a page of one instant: no way further on
            since = after  # no grace here, or a full window would be read over and over
        self._forget(self._attempts_seen, self._newest_attempt)

    def _attempt_line(self, delivery: StoredEvent, attempt: Attempt, ended: float) -> Line:
        error = self._mask(first_line(attempt.error)) or None
        call = self._mask(delivery.order_key) if delivery.order_key else None
        data = {
            "kind": "attempt",
            "at": utc(ended),
            "event_id": str(delivery.id),
            "subscriber": attempt.subscriber,
            "number": attempt.number,
            "outcome": attempt.outcome,
            "duration": round(attempt.duration, 6),
            "error": error,
            "source": delivery.source,
            "event_type": self._mask(delivery.event_type),
            "call_id": call,
        }
        text = (
            f"{utc(ended)}  attempt  {printable(str(delivery.id), 20):>6}  "
            f"{printable(attempt.subscriber, 40)} #{attempt.number}  {attempt.outcome:<5}  "
            f"{attempt.duration:.3f}s  {printable(error or '', 300)}"
        )
        return Line(ended, (1, delivery.id), text.rstrip(), data)

    @staticmethod
    def _forget(seen: dict[Any, float], newest: float) -> None:
        """Drop what is too old to come back in a poll (memory stays bounded)."""
        if len(seen) > PAGE:
            horizon = newest - 2 * FOLLOW_GRACE
            for key in [k for k, at in seen.items() if at < horizon]:
                del seen[key]


class _Stopped(Exception):
    """SIGTERM arrived."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


def tail(admin: InboxAdmin, where: EventFilter, args: argparse.Namespace) -> int:
    """Print what is new every `args.interval` seconds until SIGTERM or Ctrl-C; then a
    summary line on stderr and status 0. A reader that leaves ends it quietly (`receiver.cli`
    turns the BrokenPipeError into status 141)."""
    start = args.since if args.since is not None else time.time()
    follower = Follower(admin, where, start, show_phones=args.show_phone_numbers)
    events = attempts = 0
    previous = signal.signal(signal.SIGTERM, _stop)
    print(
        f"receiver inbox tail: following events and attempts from {utc(start)}; Ctrl-C to stop",
        file=sys.stderr,
        flush=True,
    )
    try:
        while True:
            for line in follower.poll():
                if args.json:
                    print(json.dumps(line.data), flush=True)
                else:
                    print(line.text, flush=True)
                if line.data["kind"] == "event":
                    events += 1
                else:
                    attempts += 1
            time.sleep(args.interval)
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"receiver inbox tail: {events} event(s), {attempts} attempt(s)", file=sys.stderr)
    return 0

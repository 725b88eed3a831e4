"""The filters of the console's list pages, as typed in a GET form, and where a form may send
the browser back to."""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from receiver.commands.inbox import parse_when
from receiver.exceptions import ConfigError
from receiver.inbox.models import EventFilter, State

__all__ = ["FILTER_FIELDS", "MAX_FIELD", "Query", "QueryError", "local_path"]

FILTER_FIELDS = ("endpoint", "subscriber", "type", "state", "call", "phone", "since", "until")
"""The query parameters the list pages filter by."""

MAX_FIELD = 200
"""Characters a filter value may have; longer ones are cut (no real name or key is that long)."""


class QueryError(ValueError):
    """A filter the console cannot use (its message is shown to the operator)."""


def _parse_when(text: str, now: float) -> float:
    """Unix time of an age (`15m`: that long ago) or an ISO 8601 time (naive is UTC)."""
    try:
        return parse_when(text, now=now)
    except argparse.ArgumentTypeError as exc:
        raise QueryError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Query:
    """The filters of a list page, as the operator typed them (query parameters)."""

    endpoint: str = ""
    subscriber: str = ""
    type: str = ""
    state: str = ""
    call: str = ""
    phone: str = ""
    since: str = ""
    until: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, str], **defaults: str) -> Query:
        """The filters in `params` (blank ones take `defaults`), stripped and cut to length."""
        values = {}
        for name in FILTER_FIELDS:
            given = params.get(name)
            value = given if given is not None else defaults.get(name, "")
            values[name] = value.strip()[:MAX_FIELD]
        return cls(**values)

    def params(self, **changes: str) -> dict[str, str]:
        """The non-blank filters as query parameters, with `changes` applied."""
        values = {**dataclasses.asdict(self), **changes}
        return {name: values[name] for name in FILTER_FIELDS if values[name]}

    def link(self, path: str, **changes: str) -> str:
        """`path` with these filters (and `changes`) as its query string."""
        query = urlencode(self.params(**changes))
        return f"{path}?{query}" if query else path

    @property
    def active(self) -> bool:
        """Whether any filter but the time window is set."""
        return any(getattr(self, name) for name in FILTER_FIELDS[:6])

    def to_filter(
        self, *, now: float | None = None, states: Sequence[State] = (), order_key: str = ""
    ) -> EventFilter:
        """The inbox filter (`states` override the `state` field; `order_key` the call's
        stored form); QueryError saying what is wrong."""
        now = time.time() if now is None else now
        if not states and self.state:
            try:
                states = (State.parse(self.state),)
            except ValueError as exc:
                raise QueryError(str(exc)) from None
        since = _parse_when(self.since, now) if self.since else None
        until = _parse_when(self.until, now) if self.until else None
        fields: dict[str, Any] = {
            "source": self.endpoint or None,
            "subscriber": self.subscriber or None,
            "event_type": self.type or None,
            "states": tuple(states),
            "order_key": (order_key or self.call) or None,
            "since": since,
            "until": until,
        }
        if self.phone:
            fields["phone"] = self.phone
        try:
            return EventFilter(**fields)
        except ConfigError as exc:
            raise QueryError(str(exc)) from None

    def call_keys(self) -> list[str]:
        """The order keys `call` may be stored as: as typed, lower case (Enreach's call ids),
        and `call:`-prefixed (RingCentral Engage's)."""
        if not self.call:
            return [""]
        keys = [self.call, self.call.lower()]
        if not self.call.startswith("call:"):
            keys.append("call:" + self.call)
        return list(dict.fromkeys(keys))


def local_path(target: str | None, default: str = "/") -> str:
    """`target` if it is a path on this site (no scheme, no host, not `//x`), else `default`."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if not target.isprintable():
        return default
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else default

"""Reading Engage's text values: wall-clock times, durations, flags, and the stored envelope."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from datetime import datetime, tzinfo
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import orjson

from receiver.exceptions import DecodeError
from receiver.inbox.models import StoredEvent

__all__ = [
    "FieldReader",
    "load_envelope",
    "parse_seconds",
    "parse_wall_time",
    "zone",
]

_CLOCK = re.compile(r"(?:(\d+)[.:])?(\d{1,3}):([0-5]\d):([0-5]\d)(?:\.\d+)?")
_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})


@lru_cache(maxsize=64)
def zone(name: str) -> tzinfo:
    """The time zone named `name` (IANA); raises `DecodeError` for an unknown name."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise DecodeError(f"unknown time zone {name!r}") from None


def parse_wall_time(text: str, where: tzinfo) -> datetime:
    """`2020-06-30 19:44:01` (or ISO, up to 7 fractional digits) as an aware datetime.

    Engage writes local wall-clock time without a zone; `where` is the zone the endpoint is
    configured with. A value that carries its own offset keeps it. ValueError if not a time.
    """
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=where)


def parse_seconds(text: str) -> int:
    """Whole seconds from `95`, `95.4` (rounded down) or `HH:MM:SS` (`D.HH:MM:SS` too).

    ValueError when the text is neither.
    """
    clock = _CLOCK.fullmatch(text)
    if clock is not None:
        days, hours, minutes, seconds = (int(part or 0) for part in clock.groups())
        return ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    number = float(text)
    if not 0 <= number < 10**12:
        raise ValueError(text)
    return int(number)


def load_envelope(stored: StoredEvent) -> dict[str, Any]:
    """The JSON object an Engage source stored; `DecodeError` if it is not one."""
    try:
        envelope = orjson.loads(stored.payload)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"stored event {stored.id}: payload is not JSON ({exc})") from exc
    if not isinstance(envelope, dict) or not isinstance(envelope.get("fields"), dict):
        raise DecodeError(f"stored event {stored.id}: payload has no fields object")
    return envelope


class FieldReader:
    """Typed reads of one event's text fields; a bad value raises `DecodeError` naming it."""

    def __init__(self, fields: Mapping[str, Any], what: str, where: tzinfo) -> None:
        self.fields: Mapping[str, str | None] = MappingProxyType(
            {str(k): v if v is None else str(v) for k, v in fields.items()}
        )
        self._lower = {k.lower(): v for k, v in reversed(list(self.fields.items()))}
        self.what = what
        self.zone = where

    def text(self, name: str) -> str | None:
        """The stripped value of `name` (any casing); empty is None."""
        value = self.fields.get(name)
        if value is None:
            value = self._lower.get(name.lower())
        return value.strip() or None if value else None

    def time(self, name: str) -> datetime | None:
        """The value of `name` as an aware datetime in the endpoint's zone."""
        value = self.text(name)
        if value is None:
            return None
        try:
            return parse_wall_time(value, self.zone)
        except ValueError:
            raise self.wrong(name, value, "a date and time") from None

    def seconds(self, name: str) -> int | None:
        """The value of `name` as whole seconds."""
        value = self.text(name)
        if value is None:
            return None
        try:
            return parse_seconds(value)
        except ValueError:
            raise self.wrong(name, value, "a duration (seconds or HH:MM:SS)") from None

    def flag(self, name: str) -> bool | None:
        """The value of `name` as a boolean (`true`/`false`, `1`/`0`, `yes`/`no`)."""
        value = self.text(name)
        if value is None:
            return None
        folded = value.lower()
        if folded in _TRUE:
            return True
        if folded in _FALSE:
            return False
        raise self.wrong(name, value, "true or false")

    def wrong(self, name: str, value: str, expected: str) -> DecodeError:
        """The error for a value of `name` that is not `expected`."""
        shown = value if len(value) <= 40 else value[:37] + "..."
        return DecodeError(f"{self.what}: {name} should be {expected}, not {shown!r}", field=name)

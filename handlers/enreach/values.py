"""Value types the generated Enreach classes build on: tolerant enums and .NET DateTime text."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Any, Self

__all__ = [
    "CONTINUOUS",
    "TolerantIntEnum",
    "TolerantStrEnum",
    "empty_mapping",
    "is_continuous",
    "parse_datetime",
]

CONTINUOUS = datetime.max
"""What .NET's `DateTime.MaxValue` (`9999-12-31T23:59:59.9999999`) decodes to: "no end"."""


def parse_datetime(text: str) -> datetime:
    """Parse a .NET `DateTime` as Enreach writes it (`2018-01-01T08:01:23.45`); ValueError if not.

    Enreach writes no time zone, so the result is naive; a trailing `Z` or `+02:00` is accepted
    and gives an aware datetime. .NET writes up to 7 fractional digits and `datetime` keeps 6:
    the 7th is truncated (not rounded), so `DateTime.MaxValue` becomes `datetime.max` instead
    of overflowing, and ordering between timestamps is preserved.
    """
    # Python 3.11's fromisoformat takes any number of fractional digits and truncates past 6.
    return datetime.fromisoformat(text)


def is_continuous(value: datetime | None) -> bool:
    """Whether `value` is `DateTime.MaxValue`, which Enreach sends for a state with no end."""
    return value is not None and value.replace(tzinfo=None) == CONTINUOUS


def empty_mapping() -> Mapping[str, Any]:
    """A new read-only empty mapping (the default of `payload` and `extra`)."""
    return MappingProxyType({})


class TolerantStrEnum(StrEnum):
    """A string enumeration that accepts values the provider has not documented.

    Known values match case-insensitively (`"queue"` gives `EntityType.QUEUE`). Any other
    string gives a pseudo-member that is an instance of the enum, equal to the string sent,
    and has `is_known == False`. Pseudo-members are not cached, so compare them with `==`,
    never `is`.
    """

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, str):
            return None
        folded = value.casefold()
        for member in cls:
            if member.value.casefold() == folded:
                return member
        pseudo = str.__new__(cls, value)
        pseudo._name_ = value
        pseudo._value_ = value
        return pseudo

    @property
    def is_known(self) -> bool:
        """Whether the value is one the provider documents."""
        return self._value_ in type(self)._value2member_map_


class TolerantIntEnum(IntEnum):
    """An integer enumeration that accepts values the provider has not documented.

    Any other integer gives a pseudo-member equal to that integer, named after it, with
    `is_known == False`. Pseudo-members are not cached: compare them with `==`.
    """

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        pseudo = int.__new__(cls, value)
        pseudo._name_ = str(value)
        pseudo._value_ = value
        return pseudo

    @property
    def is_known(self) -> bool:
        """Whether the value is one the provider documents."""
        return self._value_ in type(self)._value2member_map_

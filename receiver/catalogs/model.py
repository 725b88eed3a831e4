"""The shapes a provider catalog is written in: events, nested types, properties, enumerations."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Enumeration", "Event", "Member", "NestedType", "Property", "snake_case"]

_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_LIST = re.compile(r"List<(\w+)>")


def snake_case(name: str) -> str:
    """`CallerNumber` → `caller_number`, `NbrOfAgentsOnWrapUp` → `nbr_of_agents_on_wrap_up`."""
    return _WORD_BOUNDARY.sub("_", name).lower()


@dataclass(frozen=True, slots=True)
class Property:
    """One property of an event or nested type, named and typed as the provider's table has it."""

    name: str
    """The name in the provider's table (`CallerNumber`); payloads match it case-insensitively."""
    type: str
    """The type as the table writes it: `Guid`, `Guid?`, `DateTime`, `List<CallbackAttempt>`, ..."""
    description: str
    attribute: str
    """The Python attribute name (`caller_number`)."""
    enum: str | None = None
    """The enumeration its values come from, when the table types it as plain `string`/`int`."""
    open_ended: bool = False
    """`DateTime.MaxValue` in this property means "no end" (a continuous state)."""

    @property
    def nullable(self) -> bool:
        """Whether the table marks the type nullable (`Guid?`)."""
        return self.type.endswith("?")

    @property
    def base_type(self) -> str:
        """The type without the nullable mark (`Guid?` → `Guid`)."""
        return self.type.removesuffix("?")

    @property
    def item_type(self) -> str | None:
        """The element type of a list (`List<CallbackAttempt>` → `CallbackAttempt`), else None."""
        match = _LIST.fullmatch(self.base_type)
        return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class NestedType:
    """A record that appears only inside events (`CallbackAttempt`)."""

    name: str
    description: str
    properties: tuple[Property, ...]


@dataclass(frozen=True, slots=True)
class Event:
    """One event type: its name (as sent in `EventType`), entity group and properties."""

    name: str
    entity: str
    """The entity group the event belongs to, which is also its `EntityType`."""
    description: str
    properties: tuple[Property, ...]

    @property
    def method(self) -> str:
        """The handler method name (`UserWrapUpStarted` → `on_user_wrap_up_started`)."""
        return "on_" + snake_case(self.name)


@dataclass(frozen=True, slots=True)
class Member:
    """One documented value of an enumeration."""

    name: str
    """The name as the provider writes it (`DoNotDisturb`, `OpenUncertain`)."""
    value: str | int
    """The value on the wire: the name itself for string enumerations, a number otherwise."""
    description: str

    @property
    def attribute(self) -> str:
        """The Python member name (`DoNotDisturb` → `DO_NOT_DISTURB`)."""
        return snake_case(self.name).upper()


@dataclass(frozen=True, slots=True)
class Enumeration:
    """A set of documented values; senders may add more, so decoders must tolerate others."""

    name: str
    description: str
    wire: str
    """`string` or `integer`: how values travel in JSON."""
    members: tuple[Member, ...]

"""The Enreach enumerations, tolerant of undocumented values.

Generated from the catalog by `python -m receiver.catalogs.codegen`; do not edit.
"""

from handlers.enreach.values import TolerantIntEnum, TolerantStrEnum

__all__ = ["Availability", "CallbackType", "EntityType", "OpenStatus", "RootEntityType"]


class RootEntityType(TolerantStrEnum):
    """Kind of top-level container an event belongs to."""

    UNDEFINED = "Undefined"
    """Placeholder kept for compatibility with types added later."""
    ORGANIZATION = "Organization"
    """An organization (tenant); every current event belongs to one."""


class EntityType(TolerantStrEnum):
    """Kind of entity an event is about."""

    UNDEFINED = "Undefined"
    """Placeholder kept for compatibility with types added later."""
    USER = "User"
    """An end user, such as an agent."""
    QUEUE = "Queue"
    """A service pool: one queue that handles service calls."""
    CALL_LIST = "CallList"
    """A call list of callback requests and outbound calls."""


class Availability(TolerantStrEnum):
    """A user's availability state."""

    AVAILABLE = "Available"
    """Can take calls."""
    BUSY = "Busy"
    """Busy."""
    DO_NOT_DISTURB = "DoNotDisturb"
    """Does not want calls."""
    OFF_WORK = "OffWork"
    """Not working."""


class OpenStatus(TolerantIntEnum):
    """Estimate of whether a service queue is open."""

    NA = 0
    """Not available."""
    NO_ACTIVE_HANDLER = 1
    """No active handling endpoint or number: in effect closed."""
    NO_ACTIVE_HANDLER_UNCERTAIN = 2
    """No active handler, but scripts on some handlers make it uncertain."""
    CLOSED = 3
    """The only active handler is ServiceClosed."""
    CLOSED_UNCERTAIN = 4
    """The only active handler is ServiceClosed, but scripts make it uncertain."""
    OPEN = 5
    """The queue is open."""
    OPEN_UNCERTAIN = 6
    """The queue is open, but scripts make it uncertain."""


class CallbackType(TolerantIntEnum):
    """How a callback request came about (`TypeId`)."""

    EXPLICIT_REQUEST = 1
    """The caller explicitly asked to be called back."""
    OVERFLOWN_CALL = 2
    """A call overflowed into the call list."""
    MANUAL_ITEM = 3
    """Someone created the item by hand."""

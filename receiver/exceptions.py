"""Every exception the receiver raises on purpose."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DecodeError",
    "PermanentError",
    "ReceiverError",
    "RetryLater",
    "StorageError",
    "VerificationError",
]


class ReceiverError(Exception):
    """Base class of every error raised by this package."""


class ConfigError(ReceiverError):
    """The configuration cannot work; the message is one line a user can act on."""


class VerificationError(ReceiverError):
    """A request failed authentication (missing or wrong credentials)."""


class PermanentError(ReceiverError):
    """A failed attempt that no retry can fix: the delivery becomes a dead letter at once.

    A handler raises it (or a subclass) for an event it will never accept; the forwarding
    subscriber raises it for a 4xx answer other than 408 and 429.
    """


class RetryLater(ReceiverError):
    """A failed attempt to retry, not before `retry_after` seconds when that is given.

    The dispatcher waits the longer of its own backoff and `retry_after` (a `Retry-After`
    header), capped at its longest backoff.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DecodeError(PermanentError):
    """A request or stored payload could not be decoded."""

    def __init__(self, message: str, *, event_id: str | None = None, field: str | None = None):
        super().__init__(message)
        self.event_id = event_id
        self.field = field


class StorageError(ReceiverError):
    """The inbox could not store or update an event (disk full, database locked, ...)."""

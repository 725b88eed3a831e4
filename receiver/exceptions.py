"""Every exception the receiver raises on purpose."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DecodeError",
    "ReceiverError",
    "StorageError",
    "VerificationError",
]


class ReceiverError(Exception):
    """Base class of every error raised by this package."""


class ConfigError(ReceiverError):
    """The configuration cannot work; the message is one line a user can act on."""


class VerificationError(ReceiverError):
    """A request failed authentication (missing or wrong credentials)."""


class DecodeError(ReceiverError):
    """A request or stored payload could not be decoded."""

    def __init__(self, message: str, *, event_id: str | None = None, field: str | None = None):
        super().__init__(message)
        self.event_id = event_id
        self.field = field


class StorageError(ReceiverError):
    """The inbox could not store or update an event (disk full, database locked, ...)."""

"""Receive contact-center webhooks over HTTPS: durable inbox, dedup, dispatch to handlers."""

from receiver.alerts import DeadLetter, DeadLettersSuppressed
from receiver.exceptions import (
    ConfigError,
    DecodeError,
    ReceiverError,
    StorageError,
    VerificationError,
)
from receiver.handling import EventHandler
from receiver.inbox.models import NewEvent, State, StoredEvent

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DeadLetter",
    "DeadLettersSuppressed",
    "DecodeError",
    "EventHandler",
    "NewEvent",
    "ReceiverError",
    "State",
    "StorageError",
    "StoredEvent",
    "VerificationError",
    "__version__",
]

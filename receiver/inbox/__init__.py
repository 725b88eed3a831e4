"""Durable storage with dedup between the request path and the dispatchers."""

from receiver.inbox.base import Inbox, InboxAdmin, InboxOptions, open_admin, open_inbox
from receiver.inbox.models import NewEvent, State, StoredEvent

__all__ = [
    "Inbox",
    "InboxAdmin",
    "InboxOptions",
    "NewEvent",
    "State",
    "StoredEvent",
    "open_admin",
    "open_inbox",
]

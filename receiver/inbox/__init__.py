"""Durable storage with dedup between the request path and the dispatcher."""

from receiver.inbox.base import Inbox, inbox_path, open_inbox
from receiver.inbox.models import NewEvent, State, StoredEvent

__all__ = ["Inbox", "NewEvent", "State", "StoredEvent", "inbox_path", "open_inbox"]

"""Buzzeasy (Geomant) service hooks as plain data: the event types and their URL slugs."""

from __future__ import annotations

from receiver.catalogs.engage import normalized_name
from receiver.catalogs.model import snake_case

__all__ = ["EVENT_TYPES", "canonical_event_type", "url_slug"]

EVENT_TYPES: tuple[str, ...] = ("AbandonedConversation", "OutboundCall", "WorkItemClosed")
"""The documented service hooks; the portal spells the first two with a space."""

_BY_NORMALIZED = {normalized_name(name): name for name in EVENT_TYPES}


def canonical_event_type(name: str) -> str:
    """`Abandoned Conversation` → `AbandonedConversation`; an undocumented name stays as given."""
    return _BY_NORMALIZED.get(normalized_name(name), name.strip())


def url_slug(event_type: str) -> str:
    """`WorkItemClosed` → `work-item-closed`: the path the examples and scenarios use."""
    return snake_case(canonical_event_type(event_type).replace(" ", "")).replace("_", "-")

"""Provider catalogs: every event type a provider sends, as plain data read from its spec.

Event classes, handler methods, JSON Schemas and sample payloads are made from these.
"""

from receiver.catalogs import enreach
from receiver.catalogs.model import Enumeration, Event, Member, NestedType, Property

__all__ = ["Enumeration", "Event", "Member", "NestedType", "Property", "enreach"]

"""`EnreachHandler`: decode stored Enreach events, filter by subscription, route by type."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Set

import orjson

from handlers.enreach.decode import decode
from handlers.enreach.enums import EntityType
from handlers.enreach.events import EnreachEvent
from handlers.enreach.methods import EnreachMethods
from receiver.catalogs import enreach
from receiver.exceptions import DecodeError
from receiver.inbox.models import StoredEvent

__all__ = ["EnreachHandler"]

_METHODS = {event.name.lower(): event.method for event in enreach.EVENTS}
# Not an identifier, so no class can define it: undocumented types always reach `on_any`.
_NO_METHOD = "<undocumented Enreach event type>"


class EnreachHandler(EnreachMethods):
    """Base class of Enreach handlers: a `Handler[EnreachEvent]` with one method per event type.

    Override `on_<event type>` methods (`on_queue_call_in_user_allocated`); an event whose
    method is not overridden, or whose type the catalog does not know, goes to `on_any`.

    Like an Enreach subscription, a handler can take every entity or only some: set
    `entity_types` (e.g. `{"Queue"}`) and/or `entity_ids` as class attributes or constructor
    arguments. An event must pass both filters that are set; events without the property
    then never match.
    """

    source_kind = "enreach"
    provider_name = "Enreach"
    known_event_types = enreach.EVENT_TYPES
    _provider_base = True

    entity_types: Set[str] | None = None
    """Accept only events whose `EntityType` is one of these (case-insensitive); None: all."""
    entity_ids: Set[uuid.UUID] | None = None
    """Accept only events whose `EntityId` is one of these; None: all (`AllEntities`)."""

    def __init__(
        self,
        *,
        entity_types: Iterable[str] | None = None,
        entity_ids: Iterable[uuid.UUID | str] | None = None,
    ) -> None:
        super().__init__()
        types = self.entity_types if entity_types is None else entity_types
        ids = self.entity_ids if entity_ids is None else entity_ids
        if types is not None:
            # EntityType matches documented names case-insensitively and keeps others as sent.
            self.entity_types = frozenset(EntityType(t) for t in types)
        if ids is not None:
            self.entity_ids = frozenset(
                i if isinstance(i, uuid.UUID) else uuid.UUID(i) for i in ids
            )

    def decode(self, stored: StoredEvent) -> EnreachEvent:
        """Parse the stored JSON body and decode it into its event class; raise `DecodeError`."""
        try:
            payload = orjson.loads(stored.payload)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"stored event {stored.id}: body is not JSON ({exc})") from exc
        return decode(payload, stored.payload, stored.event_type)

    def method_name(self, event_type: str) -> str:
        """`on_` and the snake_case event type; undocumented types get a name no method has."""
        return _METHODS.get(event_type.lower(), _NO_METHOD)

    def accepts(self, event: EnreachEvent) -> bool:
        """Whether the event's `EntityType` and `EntityId` pass this handler's filters."""
        if self.entity_types is not None and event.entity_type not in self.entity_types:
            return False
        return self.entity_ids is None or event.entity_id in self.entity_ids

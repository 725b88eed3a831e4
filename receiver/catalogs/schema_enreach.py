"""JSON Schemas of the Enreach (formerly Benemen) events, made from `receiver.catalogs.enreach`.

Enreach POSTs one JSON event per request, its type in both `EventType` and the
`X-Benemen-Event` header and the endpoint's secret in `X-Benemen-Token`; `EventType` tells
the event types apart, so their union is a `oneOf`. The schemas use the names the provider's
tables use, allow properties they do not list (senders add fields) and values outside an
enumeration's documented members (senders add values); decoding is more forgiving still (see
`handlers.enreach.decode`).
"""

from __future__ import annotations

from collections.abc import Sequence

from receiver.catalogs import enreach
from receiver.catalogs.model import Enumeration, Event, NestedType, Property
from receiver.catalogs.schema_base import (
    DATETIME_PATTERN,
    GUID_PATTERN,
    ProviderSchema,
    Refs,
    Schema,
    empty_response,
)

__all__ = ["ENREACH"]

_EVENTS = {event.name: event for event in enreach.EVENTS}
_ENUMERATIONS = {enumeration.name: enumeration for enumeration in enreach.ENUMERATIONS}
_INTEGER_BITS = {"int": 32, "long": 64, "short": 16}
_REQUIRED = [prop.name for prop in enreach.COMMON_PROPERTIES]


def _definitions(event_types: Sequence[str], refs: Refs) -> dict[str, Schema]:
    definitions: dict[str, Schema] = {}
    for name in event_types:
        definitions[name] = _event_schema(_EVENTS[name], refs)
    for nested in enreach.NESTED_TYPES:
        definitions[nested.name] = _nested_schema(nested, refs)
    for enumeration in enreach.ENUMERATIONS:
        definitions[enumeration.name] = _enum_schema(enumeration)
    return definitions


def _webhook(event_type: str, operation_id: str, refs: Refs) -> Schema:
    event = _EVENTS[event_type]
    operation = {
        "operationId": operation_id,
        "summary": event.description,
        "tags": [event.entity],
        "parameters": [
            {
                "name": "X-Benemen-Event",
                "in": "header",
                "required": True,
                "description": "The event type.",
                "schema": {"const": event.name},
            }
        ],
        "security": [{"benemenToken": []}],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": refs(event.name)}}},
        },
        "responses": empty_response(),
    }
    return {"post": operation}


def _event_schema(event: Event, refs: Refs) -> Schema:
    properties = {p.name: _property_schema(p, refs) for p in enreach.COMMON_PROPERTIES}
    event_type = properties["EventType"]
    properties["EventType"] = {"description": event_type["description"], "const": event.name}
    properties.update((p.name, _property_schema(p, refs)) for p in event.properties)
    return {
        "title": event.name,
        "description": event.description,
        "type": "object",
        "properties": properties,
        "required": _REQUIRED,
        "additionalProperties": True,
    }


def _nested_schema(nested: NestedType, refs: Refs) -> Schema:
    return {
        "title": nested.name,
        "description": nested.description,
        "type": "object",
        "properties": {p.name: _property_schema(p, refs) for p in nested.properties},
        "additionalProperties": True,
    }


def _enum_schema(enumeration: Enumeration) -> Schema:
    known = [
        {"const": m.value, "title": m.name, "description": m.description}
        for m in enumeration.members
    ]
    return {
        "title": enumeration.name,
        "description": f"{enumeration.description} Values not listed here may also arrive.",
        "anyOf": [*known, {"type": enumeration.wire}],
    }


def _property_schema(prop: Property, refs: Refs) -> Schema:
    schema = _value_schema(prop, refs)
    if prop.nullable or prop.base_type == "string" or prop.item_type is not None:
        # .NET strings and lists are references: the sender may write null for them.
        if isinstance(schema.get("type"), str):
            schema = {**schema, "type": [schema["type"], "null"]}
        else:
            schema = {"anyOf": [schema, {"type": "null"}]}
    return {"description": prop.description, **schema}


def _value_schema(prop: Property, refs: Refs) -> Schema:
    item = prop.item_type
    if item is not None:
        return {"type": "array", "items": {"$ref": refs(item)}}
    base = prop.base_type
    if prop.enum is not None:
        return {"$ref": refs(prop.enum)}
    if base in _ENUMERATIONS:
        return {"$ref": refs(base)}
    if base in enreach.OPAQUE_TYPES:
        return {"type": ["string", "integer"], "$comment": f"{base}: values not published"}
    if base == "Guid":
        return {"type": "string", "format": "uuid", "pattern": GUID_PATTERN}
    if base == "DateTime":
        return {"type": "string", "pattern": DATETIME_PATTERN}
    if base == "bool":
        return {"type": "boolean"}
    if base in _INTEGER_BITS:
        bound = 2 ** (_INTEGER_BITS[base] - 1)
        return {"type": "integer", "minimum": -bound, "maximum": bound - 1}
    return {"type": "string"}


ENREACH = ProviderSchema(
    name="enreach",
    title="Enreach",
    description="Requests Enreach (formerly Benemen) POSTs to a subscribed endpoint:"
    " one JSON event per request, its type in the X-Benemen-Event header and the"
    " configured secret in X-Benemen-Token. Answer 200 with no body, quickly;"
    " anything else is retried a few times and then dropped.",
    union_description="The JSON body of any documented Enreach webhook request.",
    event_types=enreach.EVENT_TYPES,
    exclusive=True,
    security_schemes={
        "benemenToken": {
            "type": "apiKey",
            "in": "header",
            "name": "X-Benemen-Token",
            "description": "The secret configured for the endpoint, sent as is.",
        }
    },
    definitions=_definitions,
    webhook=_webhook,
)
"""The Enreach schemas: every event type of the catalog."""

"""JSON Schema (draft 2020-12) and OpenAPI 3.1 documents, made from the Enreach catalog.

The schemas describe what the provider sends, under the names its tables use. They allow
properties they do not list (senders add fields) and values outside an enumeration's
documented members (senders add values); decoding is more forgiving still (see
`handlers.enreach.decode`).
"""

from __future__ import annotations

from typing import Any

from receiver.catalogs import enreach
from receiver.catalogs.model import Enumeration, Event, NestedType, Property

__all__ = ["DATETIME_PATTERN", "DIALECT", "GUID_PATTERN", "enreach_json_schema", "enreach_openapi"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"
"""The JSON Schema dialect of every schema made here."""

DATETIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})?$"
"""A .NET `DateTime` as Enreach writes it: no zone (one is tolerated), up to 7 fraction digits."""

GUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
"""A GUID as .NET writes it by default."""

_EVENTS = {event.name: event for event in enreach.EVENTS}
_ENUMERATIONS = {enumeration.name: enumeration for enumeration in enreach.ENUMERATIONS}
_INTEGER_BITS = {"int": 32, "long": 64, "short": 16}
_REQUIRED = [prop.name for prop in enreach.COMMON_PROPERTIES]


def enreach_json_schema(event_type: str | None = None) -> dict[str, Any]:
    """The JSON Schema of one event type's payload, or of any documented Enreach event.

    Raises ValueError for an event type the catalog does not document.
    """
    definitions = _definitions("#/$defs/", _select(event_type))
    if event_type is None:
        return {
            "$schema": DIALECT,
            "title": "Enreach webhook event",
            "description": "The JSON body of any documented Enreach webhook request.",
            "oneOf": [{"$ref": f"#/$defs/{name}"} for name in enreach.EVENT_TYPES],
            "$defs": definitions,
        }
    top = definitions.pop(event_type)
    return {"$schema": DIALECT, **top, "$defs": definitions}


def enreach_openapi(event_type: str | None = None) -> dict[str, Any]:
    """An OpenAPI 3.1 document whose `webhooks` are the Enreach events (or just `event_type`).

    Raises ValueError for an event type the catalog does not document.
    """
    events = _select(event_type)
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": DIALECT,
        "info": {
            "title": "Enreach webhooks",
            "version": "1",
            "description": "Requests Enreach (formerly Benemen) POSTs to a subscribed endpoint:"
            " one JSON event per request, its type in the X-Benemen-Event header and the"
            " configured secret in X-Benemen-Token. Answer 200 with no body, quickly;"
            " anything else is retried a few times and then dropped.",
        },
        "webhooks": {event.name: {"post": _operation(event)} for event in events},
        "components": {
            "schemas": _definitions("#/components/schemas/", events),
            "securitySchemes": {
                "benemenToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Benemen-Token",
                    "description": "The secret configured for the endpoint, sent as is.",
                }
            },
        },
    }


# -- pieces -----------------------------------------------------------------------------------


def _select(event_type: str | None) -> list[Event]:
    if event_type is None:
        return list(enreach.EVENTS)
    event = _EVENTS.get(event_type)
    if event is None:
        raise ValueError(f"not a documented Enreach event type: {event_type!r}")
    return [event]


def _operation(event: Event) -> dict[str, Any]:
    return {
        "operationId": event.name,
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
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{event.name}"}}
            },
        },
        "responses": {
            "200": {"description": "Received. Any body is ignored by the sender; send none."}
        },
    }


def _definitions(prefix: str, events: list[Event]) -> dict[str, Any]:
    definitions: dict[str, Any] = {}
    for event in events:
        definitions[event.name] = _event_schema(event, prefix)
    for nested in enreach.NESTED_TYPES:
        definitions[nested.name] = _nested_schema(nested, prefix)
    for enumeration in enreach.ENUMERATIONS:
        definitions[enumeration.name] = _enum_schema(enumeration)
    return definitions


def _event_schema(event: Event, prefix: str) -> dict[str, Any]:
    properties = {p.name: _property_schema(p, prefix) for p in enreach.COMMON_PROPERTIES}
    event_type = properties["EventType"]
    properties["EventType"] = {"description": event_type["description"], "const": event.name}
    properties.update((p.name, _property_schema(p, prefix)) for p in event.properties)
    return {
        "title": event.name,
        "description": event.description,
        "type": "object",
        "properties": properties,
        "required": _REQUIRED,
        "additionalProperties": True,
    }


def _nested_schema(nested: NestedType, prefix: str) -> dict[str, Any]:
    return {
        "title": nested.name,
        "description": nested.description,
        "type": "object",
        "properties": {p.name: _property_schema(p, prefix) for p in nested.properties},
        "additionalProperties": True,
    }


def _enum_schema(enumeration: Enumeration) -> dict[str, Any]:
    wire = enumeration.wire
    known = [
        {"const": m.value, "title": m.name, "description": m.description}
        for m in enumeration.members
    ]
    return {
        "title": enumeration.name,
        "description": f"{enumeration.description} Values not listed here may also arrive.",
        "anyOf": [*known, {"type": wire}],
    }


def _property_schema(prop: Property, prefix: str) -> dict[str, Any]:
    schema = _value_schema(prop, prefix)
    if prop.nullable or prop.base_type == "string" or prop.item_type is not None:
        # .NET strings and lists are references: the sender may write null for them.
        if isinstance(schema.get("type"), str):
            schema = {**schema, "type": [schema["type"], "null"]}
        else:
            schema = {"anyOf": [schema, {"type": "null"}]}
    return {"description": prop.description, **schema}


def _value_schema(prop: Property, prefix: str) -> dict[str, Any]:
    item = prop.item_type
    if item is not None:
        return {"type": "array", "items": {"$ref": prefix + item}}
    base = prop.base_type
    if prop.enum is not None:
        return {"$ref": prefix + prop.enum}
    if base in _ENUMERATIONS:
        return {"$ref": prefix + base}
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

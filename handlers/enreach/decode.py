"""Turn an Enreach JSON payload into its typed event: forgiving of names, strict about types.

Property names match case-insensitively; missing properties and JSON nulls become None;
properties the catalog does not know go to `extra`. A value of the wrong JSON type raises
`DecodeError` naming the event id and the property, because guessing would hide a changed
sender. The per-class lookup tables are built once, at import.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from types import MappingProxyType
from typing import Any

from handlers.enreach import enums, events
from handlers.enreach.values import parse_datetime
from receiver.catalogs import enreach
from receiver.catalogs.model import Property
from receiver.exceptions import DecodeError

__all__ = ["decode"]

Converter = Callable[[Any, str], Any]
"""Turns one non-null JSON value into its Python value, or raises `_WrongType`."""


class _WrongType(Exception):
    def __init__(self, path: str, expected: str, value: object) -> None:
        super().__init__(path)
        self.path = path
        self.expected = expected
        self.value = value


@dataclass(frozen=True, slots=True)
class _Shape:
    cls: type[Any]
    fields: Mapping[str, tuple[str, Converter]]
    """Lower-cased table name → (attribute, converter)."""


def decode(
    payload: Mapping[str, Any], raw: bytes, event_type: str | None = None
) -> events.EnreachEvent:
    """Decode one Enreach payload; `event_type` (the `X-Benemen-Event` header) wins over the body's.

    Undocumented event types decode to the base `EnreachEvent`, with every property other than
    the common ones in `extra`. Raises `DecodeError` when the payload is not a JSON object or a
    value has the wrong type.
    """
    if not isinstance(payload, Mapping):
        raise DecodeError(f"Enreach payload is a JSON {_json_type(payload)}, not an object")
    name = event_type or _lookup(payload, "eventtype")
    if not isinstance(name, str):
        name = ""
    shape = _EVENT_SHAPES.get(name.lower(), _BASE_SHAPE)
    try:
        fields = _fill(shape, payload, "")
    except _WrongType as wrong:
        found = _lookup(payload, "id")
        event_id = found if isinstance(found, str) else None
        raise DecodeError(
            f"{name or 'Enreach event'} {event_id or '(no Id)'}: {wrong.path} should be"
            f" {wrong.expected}, not a JSON {_json_type(wrong.value)}",
            event_id=event_id,
            field=wrong.path,
        ) from None
    fields["event_type"] = name if shape is _BASE_SHAPE else shape.cls.__name__
    obj: events.EnreachEvent = shape.cls(payload=MappingProxyType(payload), raw=raw, **fields)
    return obj


def _fill(shape: _Shape, obj: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    known = shape.fields
    fields: dict[str, Any] = {}
    extra: dict[str, Any] | None = None
    for key, value in obj.items():
        spec = known.get(key.lower())
        if spec is None:
            if extra is None:
                extra = {}
            extra[key] = value
        elif value is not None:
            # When a payload carries one property under two casings, the later non-null wins.
            attribute, convert = spec
            fields[attribute] = convert(value, prefix + key)
    if extra:
        fields["extra"] = MappingProxyType(extra)
    return fields


def _lookup(payload: Mapping[str, Any], lowered: str) -> object:
    for key, value in payload.items():
        if key.lower() == lowered:
            return value
    return None


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


# -- converters ---------------------------------------------------------------------------


# Organization, queue and user ids recur in almost every event, and parsing a UUID costs
# more than the rest of a property's decoding; UUIDs are immutable, so sharing them is safe.
_parse_uuid = functools.lru_cache(maxsize=4096)(uuid.UUID)


def _guid(value: Any, path: str) -> uuid.UUID:
    if isinstance(value, str):
        try:
            return _parse_uuid(value)
        except ValueError:
            pass
    raise _WrongType(path, "a GUID string", value)


def _datetime(value: Any, path: str) -> datetime:
    if isinstance(value, str):
        try:
            return parse_datetime(value)
        except ValueError:
            pass
    raise _WrongType(path, "a date-time string", value)


def _bool(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    raise _WrongType(path, "true or false", value)


def _string(value: Any, path: str) -> str:
    if isinstance(value, str):
        return value
    raise _WrongType(path, "a string", value)


def _opaque(value: Any, path: str) -> str:
    # Values of undocumented named types: a string, or a number if the sender serialises
    # that enumeration numerically; kept as text either way.
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _WrongType(path, "a string", value)


_INTEGER_BITS = {"int": 32, "long": 64, "short": 16}


def _integer(kind: str) -> Converter:
    low, high = -(2 ** (_INTEGER_BITS[kind] - 1)), 2 ** (_INTEGER_BITS[kind] - 1) - 1
    expected = f"an integer ({kind})"

    def convert(value: Any, path: str) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return value
        raise _WrongType(path, expected, value)

    return convert


def _enumerated(enum_class: type[Enum], base: Converter) -> Converter:
    members = enum_class._value2member_map_

    def convert(value: Any, path: str) -> Enum:
        value = base(value, path)
        member = members.get(value)
        return member if member is not None else enum_class(value)

    return convert


def _records(shape: _Shape) -> Converter:
    def convert(value: Any, path: str) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise _WrongType(path, f"an array of {shape.cls.__name__}", value)
        items = []
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            if not isinstance(item, Mapping):
                raise _WrongType(item_path, f"a {shape.cls.__name__} object", item)
            items.append(shape.cls(**_fill(shape, item, item_path + ".")))
        return tuple(items)

    return convert


_SCALARS: dict[str, Converter] = {
    "Guid": _guid,
    "DateTime": _datetime,
    "bool": _bool,
    "string": _string,
    **{kind: _integer(kind) for kind in _INTEGER_BITS},
}


_ENUMERATIONS = {enumeration.name: enumeration for enumeration in enreach.ENUMERATIONS}


def _converter(prop: Property, nested: Mapping[str, _Shape]) -> Converter:
    item = prop.item_type
    if item is not None:
        return _records(nested[item])
    base = prop.base_type
    if base in enreach.OPAQUE_TYPES:
        return _opaque
    if prop.enum is not None:
        return _enumerated(getattr(enums, prop.enum), _SCALARS[base])
    if base in _ENUMERATIONS:
        wire = _string if _ENUMERATIONS[base].wire == "string" else _SCALARS["long"]
        return _enumerated(getattr(enums, base), wire)
    return _SCALARS[base]


def _shape(cls: type[Any], props: tuple[Property, ...], nested: Mapping[str, _Shape]) -> _Shape:
    fields = {p.name.lower(): (p.attribute, _converter(p, nested)) for p in props}
    return _Shape(cls, MappingProxyType(fields))


def _build() -> tuple[_Shape, dict[str, _Shape]]:
    nested: dict[str, _Shape] = {}
    for record in enreach.NESTED_TYPES:
        nested[record.name] = _shape(events.NESTED_CLASSES[record.name], record.properties, nested)
    common = enreach.COMMON_PROPERTIES
    base = _shape(events.EnreachEvent, common, nested)
    shapes = {
        event.name.lower(): _shape(
            events.EVENT_CLASSES[event.name], common + event.properties, nested
        )
        for event in enreach.EVENTS
    }
    return base, shapes


_BASE_SHAPE, _EVENT_SHAPES = _build()

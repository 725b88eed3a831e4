"""Flat `name → text` fields from query strings, form, JSON and XML bodies; pure and fast.

RingCentral Engage sends its values as text (tags substituted into a template, or URL-encoded
event details), so every decoder here gives `dict[str, str | None]`: JSON numbers and booleans
become their JSON text, `null` becomes None, nested objects and arrays become dotted names
(`call.agent.id`, `items.0`). A malformed body raises `DecodeError`, which the endpoint answers
with 400.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl
from xml.parsers import expat

import orjson

from receiver.exceptions import DecodeError

__all__ = [
    "UTF8_BOM",
    "Fields",
    "as_text",
    "fingerprint",
    "form_fields",
    "json_fields",
    "json_object",
    "lookup",
    "without_bom",
    "xml_fields",
]

UTF8_BOM = b"\xef\xbb\xbf"
"""The UTF-8 byte order mark, which some senders put before a JSON body."""

Fields = dict[str, str | None]
"""Received name → value as text (None: null or missing)."""


def as_text(value: Any) -> str | None:
    """A JSON scalar as text: strings stripped, numbers and booleans as JSON writes them."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip()
    return orjson.dumps(value).decode()


def fingerprint(values: Iterable[Any]) -> str:
    """SHA-256 (hex) of the compact JSON array of `values`: the dedup key of id-less events."""
    return hashlib.sha256(orjson.dumps(list(values))).hexdigest()


def lookup(fields: Mapping[str, str | None], name: str) -> str | None:
    """`fields[name]` stripped, else the first value named `name` in any casing; "" is None."""
    value = fields.get(name)
    if value is None and name not in fields:
        lower = name.lower()
        value = next((v for k, v in fields.items() if k.lower() == lower), None)
    return value.strip() or None if value else None


def form_fields(data: bytes | str, what: str, *, strict: bool = True) -> Fields:
    """The fields of `a=1&b=two`: a form body, or with `strict=False` a query string.

    The last of a repeated name wins; empty segments (`a=1&&b=2&`) are skipped. Strict parsing
    refuses a segment without `=`; a query string keeps it as a blank value, since part of the
    URL is the administrator's.
    """
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = "&".join(segment for segment in text.split("&") if segment)
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=strict, errors="replace")
    except ValueError as exc:
        raise DecodeError(f"{what} is not URL-encoded name=value pairs: {exc}") from exc
    return {name: value for name, value in pairs}


def without_bom(body: bytes) -> bytes:
    """`body` without a leading UTF-8 byte order mark.

    RFC 8259 §8.1 lets a receiver ignore one, and some .NET writers put one before JSON;
    orjson refuses it. Every source drops it before parsing and storing, so an event sent with
    and without one is the same event (same dedup key, same stored payload).
    """
    return body[3:] if body.startswith(UTF8_BOM) else body


def json_object(body: bytes) -> dict[str, Any]:
    """The JSON object `body` holds (a leading byte order mark ignored); `DecodeError` if none."""
    try:
        data = orjson.loads(without_bom(body))
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise DecodeError("body is not a JSON object")
    return data


def json_fields(body: bytes) -> Fields:
    """The fields of a JSON object body, nested names flattened with dots."""
    fields: Fields = {}
    _flatten(json_object(body), "", fields)
    return fields


def _flatten(value: Any, name: str, into: Fields) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{name}.{key}" if name else str(key), into)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _flatten(item, f"{name}.{index}" if name else str(index), into)
    else:
        into[name] = as_text(value)


class _Refused(Exception):
    pass


def xml_fields(body: bytes) -> Fields:
    """The leaf elements of an XML body by local name (the first of a repeated name wins).

    Attributes are ignored. A document type declaration is refused, so no entity is ever
    declared or expanded, in any encoding.
    """
    parser = expat.ParserCreate()
    fields: Fields = {}
    # One entry per open element: [local name, text chunks, has child elements].
    stack: list[list[Any]] = []

    def start(name: str, attributes: object) -> None:
        if stack:
            stack[-1][2] = True
        stack.append([name.rpartition(":")[2], [], False])

    def end(name: str) -> None:
        local, chunks, has_children = stack.pop()
        if not has_children and local not in fields:
            fields[local] = "".join(chunks).strip()

    def text(data: str) -> None:
        if stack:
            stack[-1][1].append(data)

    def refuse(*args: object) -> None:
        raise _Refused

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(body, True)
    except _Refused:
        raise DecodeError("XML with a document type declaration is refused") from None
    except expat.ExpatError as exc:
        raise DecodeError(f"body is not well-formed XML: {exc}") from exc
    return fields

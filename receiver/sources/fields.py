"""Flat `name → text` fields from query strings, form, JSON and XML bodies; pure and fast.

RingCentral Engage sends its values as text (tags substituted into a template, or URL-encoded
event details), so every decoder here gives `dict[str, str | None]`: JSON numbers and booleans
become their JSON text, `null` becomes None, nested objects and arrays become dotted names
(`call.agent.id`, `items.0`). A malformed body raises `DecodeError`, which the endpoint answers
with 400.

Every decoder is bounded, so one request cannot make the receiver spend time or memory out of
proportion to its size: JSON and XML nest at most `MAX_DEPTH` deep, a JSON body holds at
most `MAX_CONTAINERS` objects and arrays, a request gives at most `MAX_FIELDS` fields, and
flattening stops once the names and values it has written pass `decoded_limit` of the
request's size (a long key over a long array would otherwise repeat the key for every
element: 132 KB of JSON made 2 GB of fields). Past a bound, `TooLarge`
(answered 413); too deep, `DecodeError` (400).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl
from xml.parsers import expat

import orjson

from receiver.exceptions import DecodeError
from receiver.sources.base import TooLarge

__all__ = [
    "DECODED_MINIMUM",
    "MAX_CONTAINERS",
    "MAX_DEPTH",
    "MAX_FIELDS",
    "UTF8_BOM",
    "Fields",
    "as_text",
    "bounded",
    "decoded_limit",
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

MAX_DEPTH = 64
"""How deep JSON objects and arrays, or XML elements, may nest: real payloads nest a few
levels; Python code that walks a structure ~1,000 deep fails (RecursionError), and orjson
writes at most 255 levels."""

MAX_CONTAINERS = 10_000
"""The most objects and arrays one JSON body may hold; real webhooks hold a few."""

MAX_FIELDS = 10_000
"""The most fields one request may give (JSON leaves, form pairs, XML elements); real
webhooks carry tens."""

DECODED_MINIMUM = 64 * 1024
"""The decoded size a request of any size may reach (see `decoded_limit`)."""


def decoded_limit(size: int) -> int:
    """How large the flattened fields and the stored payload of a request of `size` bytes
    (query string and body) may be: 8 times `size`, at least `DECODED_MINIMUM`.

    Dotted names repeat their parents' keys, so a payload grows when flattened: an array of
    numbers under a short key about 7 times (`[0,1]` under `k` is `"k.0":"0","k.1":"1"`).
    The bound keeps every real payload and refuses only those built to grow.
    """
    return max(8 * size, DECODED_MINIMUM)


def bounded(payload: bytes, size: int) -> bytes:
    """`payload`, unless it is larger than `decoded_limit(size)` (then `TooLarge`)."""
    limit = decoded_limit(size)
    if len(payload) > limit:
        raise TooLarge(f"request larger than {limit:,} bytes once decoded into fields")
    return payload


def _too_deep() -> DecodeError:
    return DecodeError(f"body is nested deeper than {MAX_DEPTH} levels")


def _too_many_fields() -> TooLarge:
    return TooLarge(f"body has more than {MAX_FIELDS:,} fields")


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
    if text.count("&") >= MAX_FIELDS:
        raise _too_many_fields()
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
    """The JSON object `body` holds (a leading byte order mark ignored); `DecodeError` if none,
    or if it nests deeper than `MAX_DEPTH`."""
    data = _parse_object(body)
    # Fewer brackets than the limit cannot nest past it: most bodies skip the walk.
    if body.count(b"{") + body.count(b"[") > MAX_DEPTH:
        _check_depth(data)
    return data


def json_fields(body: bytes) -> Fields:
    """The fields of a JSON object body, nested names flattened with dots.

    Raises `TooLarge` past `MAX_FIELDS` fields or once names and values pass `decoded_limit`
    of the body's size (in characters), `DecodeError` when nested deeper than `MAX_DEPTH`.
    """
    return _flatten(_parse_object(body), decoded_limit(len(body)))


def _parse_object(body: bytes) -> dict[str, Any]:
    body = without_bom(body)
    # Counting first keeps the parse itself bounded: containers are what costs (a megabyte of
    # `[],` is 350,000 lists, ~100 ms to build and as long to walk); scalars are cheap.
    if body.count(b"{") + body.count(b"[") > MAX_CONTAINERS and _containers(body) > MAX_CONTAINERS:
        raise TooLarge(f"body has more than {MAX_CONTAINERS:,} objects and arrays")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):  # orjson stops at 1,024 levels
            raise _too_deep() from None
        raise DecodeError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise DecodeError("body is not a JSON object")
    return data


def _containers(body: bytes) -> int:
    """How many objects and arrays the JSON in `body` opens (brackets inside strings do not
    count)."""
    # Without escaped backslashes, then escaped quotes, every quote opens or closes a string.
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.split(b'"')[::2])
    return outside.count(b"{") + outside.count(b"[")


def _check_depth(data: dict[str, Any]) -> None:
    """Raise `DecodeError` if `data` nests deeper than `MAX_DEPTH`: level by level, so no
    recursion whatever the depth (one comprehension a level is the fastest walk in CPython)."""
    level: list[Any] = [data]
    for _ in range(MAX_DEPTH):
        level = [
            item
            for container in level
            for item in (container.values() if type(container) is dict else container)
            if type(item) is dict or type(item) is list
        ]
        if not level:
            return
    raise _too_deep()


def _flatten(root: dict[str, Any], budget: int) -> Fields:
    """`root`'s leaves by dotted name, in document order; every name and value written
    counts against `budget` (containers' names too, so empty ones cannot grow unchecked)."""
    fields: Fields = {}
    spent = 0
    # Depth-first without recursion: one (name, iterator over children) per open container.
    stack: list[tuple[str, Iterator[tuple[Any, Any]]]] = [("", iter(root.items()))]
    while stack:
        prefix, children = stack[-1]
        for key, value in children:
            name = f"{prefix}.{key}" if prefix else str(key)
            spent += len(name)
            if isinstance(value, dict | list):
                if len(stack) >= MAX_DEPTH:
                    raise _too_deep()
                items = iter(value.items()) if isinstance(value, dict) else enumerate(value)
                stack.append((name, items))
                if spent > budget:
                    raise _flattened_too_large(budget)
                break
            text = as_text(value)
            spent += len(text) if text else 0
            if spent > budget:
                raise _flattened_too_large(budget)
            fields[name] = text
            if len(fields) > MAX_FIELDS:
                raise _too_many_fields()
        else:
            stack.pop()
    return fields


def _flattened_too_large(budget: int) -> TooLarge:
    return TooLarge(f"request larger than {budget:,} bytes once decoded into fields")


class _Refused(Exception):
    pass


def xml_fields(body: bytes) -> Fields:
    """The leaf elements of an XML body by local name (the first of a repeated name wins).

    Attributes are ignored. A document type declaration is refused, so no entity is ever
    declared or expanded, in any encoding. Elements nest at most `MAX_DEPTH` deep (else
    `DecodeError`), and a body has at most `MAX_FIELDS` elements (else `TooLarge`).
    """
    parser = expat.ParserCreate()
    parser.buffer_text = True  # one call per run of text, not one per line or entity
    fields: Fields = {}
    # One entry per open element: [local name, text chunks, has child elements].
    stack: list[list[Any]] = []
    elements = 0

    def start(name: str, attributes: object) -> None:
        nonlocal elements
        elements += 1
        if elements > MAX_FIELDS:
            raise _too_many_fields()
        if len(stack) >= MAX_DEPTH:
            raise _too_deep()
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

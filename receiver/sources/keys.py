"""Dedup keys from event Ids: one key per event, however the sender spelled its Id.

A GUID is one value however it is written: .NET's `Guid.Parse` takes it with or without
hyphens, in braces or parentheses, in any case, and some writers prefix `urn:uuid:`. Every
such spelling gives the source's canonical form: hyphenated lower case (`D`) by default, or 32
lower-case digits (`N`) for a platform that writes its Ids so, so keys stored before these
spellings were recognized stay the keys of their events. Any other Id is kept exactly as text
(case and all; a number as the digits it was sent with).

An event without an Id is keyed by a fingerprint of its content, `sha256:<hex>`. An Id that
starts with `sha256:` (or with `id:`) gets `id:` in front, so no Id can take the key of an
id-less event, and the keys of all other Ids are the Ids themselves.
"""

from __future__ import annotations

import json
import re
from typing import Any

from receiver.exceptions import DecodeError

__all__ = ["FINGERPRINT_PREFIX", "exact_numbers", "id_key"]

FINGERPRINT_PREFIX = "sha256:"
"""How the key of an event without an Id starts (then the SHA-256 of its content, in hex)."""

_ESCAPE = "id:"

_HYPHENATED = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_GUID = re.compile(
    rf"(?:urn:uuid:)?{_HYPHENATED}|\{{{_HYPHENATED}\}}|\({_HYPHENATED}\)|[0-9a-f]{{32}}",
    re.IGNORECASE | re.ASCII,
)
_NOT_HEX = re.compile(r"[^0-9a-f]")


def id_key(event_id: str, *, hyphens: bool = True) -> str:
    """The dedup key of an event whose Id is `event_id` (non-empty text).

    A GUID in any spelling gives its canonical form (`hyphens`: `D`, else `N`); any other Id
    is itself, but `id:` + the Id when it starts with `sha256:` or `id:`.
    """
    if _GUID.fullmatch(event_id):
        lowered = event_id.lower()
        digits = _NOT_HEX.sub("", lowered.removeprefix("urn:uuid:"))
        if not hyphens:
            return digits
        return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
    if event_id.startswith((FINGERPRINT_PREFIX, _ESCAPE)):
        return _ESCAPE + event_id
    return event_id


def exact_numbers(body: bytes) -> Any:
    """The JSON `body` (already parsed once, so valid and within bounds) with every number
    kept as the text it was sent as.

    orjson reads an integer beyond 64 bits as a float, so `18446744073709551616` and
    `18446744073709551617` would be one Id; sources that find a float where an Id is read
    it again from here.
    """
    try:
        return json.loads(body, parse_int=str, parse_float=str)
    except ValueError as exc:  # not expected after orjson took it; refuse rather than guess
        raise DecodeError(f"body is not valid JSON: {exc}") from exc

"""What a source is: how one provider's requests are authenticated and decoded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from receiver.exceptions import DecodeError
from receiver.inbox.models import NewEvent

__all__ = ["Headers", "Source", "TooLarge", "find_key"]

Headers = Mapping[bytes, bytes]
"""Request headers by lower-case name, as ASGI gives them."""


class TooLarge(DecodeError):
    """The request would decode to more than the receiver keeps (answered 413, not 400)."""


class Source(Protocol):
    """One provider's wire format. Both methods are pure: no I/O, no clock."""

    kind: str
    methods: frozenset[str]
    echo_headers: tuple[bytes, ...]
    """Request headers copied into the response when present (lower-case names)."""

    def authenticate(self, headers: Headers, query: bytes) -> None:
        """Raise `VerificationError` unless the request carries accepted credentials."""

    def decode(self, method: str, headers: Headers, query: bytes, body: bytes) -> NewEvent:
        """Turn an authenticated request into an event; raise `DecodeError` for bad input,
        `TooLarge` for input past the decoders' bounds (`receiver.sources.fields`)."""
        ...


def find_key(data: Mapping[str, Any], name: str, lower: str) -> Any:
    """`data[name]`, else the value of the first key equal to `name` ignoring case."""
    try:
        return data[name]
    except KeyError:
        pass
    for key, value in data.items():
        if key.lower() == lower:
            return value
    return None

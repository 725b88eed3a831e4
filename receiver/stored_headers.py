"""Which request headers are stored with an event (`NewEvent.headers`), and how.

An operator looking at an event (`receiver inbox show`, the admin console) sees the headers
its request came with, less everything that could hold a credential and the hop-by-hop ones:

- every header named in `CREDENTIAL_HEADERS` (Authorization, Proxy-Authorization, Cookie, the
  sources' token headers), and the one each endpoint authenticates with (`auth_header` of
  its configuration, `extra`);
- every header whose name contains one of `CREDENTIAL_WORDS` (`X-Auth-Token`, `Api-Key`,
  `X-Session-Id`, ...): a sender or a proxy may add a credential this receiver does not know
  of, and losing a harmless header is better than storing a secret;
- the hop-by-hop headers of `HOP_BY_HOP` (`Connection`, `Keep-Alive`, `Transfer-Encoding`,
  ...), which say nothing about the event.

What is kept is a JSON array of [name, value] pairs in the order received, names in lower
case, values decoded as Latin-1 (what HTTP allows byte for byte), of at most `LIMIT` bytes: a
header that would take it past that is left out.

This runs for every stored request, so it is kept cheap: the decision for each header name
is remembered (for the first `REMEMBERED` names seen), and the blob is built by orjson.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

__all__ = [
    "CREDENTIAL_HEADERS",
    "CREDENTIAL_WORDS",
    "HOP_BY_HOP",
    "LIMIT",
    "HeaderKeeper",
]

CREDENTIAL_HEADERS = frozenset(
    {
        b"authorization",
        b"proxy-authorization",
        b"cookie",
        b"x-benemen-token",  # Enreach
        b"x-api-key",  # Buzzeasy
    }
)
"""Headers that carry credentials, never stored."""

CREDENTIAL_WORDS = (
    b"auth",
    b"token",
    b"secret",
    b"passw",
    b"cookie",
    b"key",
    b"session",
    b"signature",
    b"credential",
    b"csrf",
)
"""A header whose name contains one of these is never stored."""

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
"""Headers about one connection (RFC 9110 §7.6.1), not the request: not stored."""

LIMIT = 4096
"""Most bytes of the stored JSON."""

REMEMBERED = 512
"""Header names whose decision is remembered (past that, decided each time: a sender
inventing names cannot grow memory)."""


class HeaderKeeper:
    """Turns one endpoint's request headers into the blob stored with its events."""

    __slots__ = ("_dropped", "_names", "limit")

    def __init__(self, extra: Iterable[bytes] = (), *, limit: int = LIMIT) -> None:
        self._dropped = CREDENTIAL_HEADERS | HOP_BY_HOP | {name.lower() for name in extra}
        self._names: dict[bytes, str | None] = {}
        self.limit = limit

    def _name(self, raw: bytes) -> str | None:
        """The name to store for header `raw`, or None to leave it out."""
        name = raw.lower()
        if name in self._dropped or any(word in name for word in CREDENTIAL_WORDS):
            kept = None
        else:
            kept = name.decode("latin-1")
        if len(self._names) < REMEMBERED:
            self._names[raw] = kept
        return kept

    def __call__(self, headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
        """The JSON array of the headers to keep; None when none are."""
        names = self._names
        pairs: list[tuple[str, str]] = []
        size = 2
        for raw, value in headers:
            try:
                name = names[raw]
            except KeyError:
                name = self._name(raw)
            if name is None:
                continue
            # The quotes, brackets and commas of one pair; escapes are checked below.
            cost = len(name) + len(value) + 8
            if size + cost > self.limit:
                continue
            size += cost
            pairs.append((name, value.decode("latin-1")))
        if not pairs:
            return None
        blob = orjson.dumps(pairs)
        while len(blob) > self.limit:  # escaped control or non-ASCII characters took room
            pairs.pop()
            if not pairs:
                return None
            blob = orjson.dumps(pairs)
        return blob

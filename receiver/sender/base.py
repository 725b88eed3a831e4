"""The seam between providers and the sending engine: a wire format and what a send reports."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

__all__ = [
    "Attempt",
    "Delivery",
    "WireFormat",
    "WireRequest",
    "basic_authorization",
    "forged_credential",
]

REDACTED = "***"


@dataclass(frozen=True, slots=True)
class WireRequest:
    """One HTTP request exactly as a provider puts it on the wire."""

    method: str
    url: str
    """The full URL, query string included."""
    headers: tuple[tuple[str, str], ...]
    """In sending order, spelled as the provider spells them; Host and Content-Length are added
    by the HTTP client."""
    body: bytes
    event_type: str
    event_id: str | None = None
    """The provider's unique event id when it has one (Enreach `Id`), for reports."""
    sensitive: frozenset[str] = field(default=frozenset())
    """Lower-case names of the headers that carry a credential; shown as *** by `redacted`."""

    def header(self, name: str) -> str | None:
        """The value of header `name` (any casing), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def redacted_headers(self) -> tuple[tuple[str, str], ...]:
        """The headers with every credential value replaced by ***."""
        return tuple(
            (key, REDACTED if key.lower() in self.sensitive else value)
            for key, value in self.headers
        )

    def __repr__(self) -> str:
        return (
            f"WireRequest(method={self.method!r}, url={self.url!r}, "
            f"headers={self.redacted_headers()!r}, body={self.body!r}, "
            f"event_type={self.event_type!r}, event_id={self.event_id!r})"
        )


class WireFormat(Protocol):
    """How one provider turns an event into a request; one module per provider implements it.

    Implementations hold the provider's credential and settings (method, body kind, custom
    headers) and are pure: `build` does no I/O, so the same payload gives the same bytes.
    """

    provider: ClassVar[str]
    """Short provider name (`enreach`), used in reports and CLI choices."""

    def build(
        self, url: str, payload: Mapping[str, Any], *, event_type: str | None = None
    ) -> WireRequest:
        """The exact request the provider sends to `url` for the event `payload`.

        `event_type` names the event when the payload does not (Buzzeasy); formats whose
        payload names its type ignore it.
        """
        ...

    def forged(self) -> WireFormat:
        """The same format carrying a credential the receiver must reject."""
        ...


def basic_authorization(user_password: str) -> str:
    """`user:password` → `Basic dXNlcjpwYXNzd29yZA==`, the value of an Authorization header."""
    return "Basic " + base64.b64encode(user_password.encode()).decode("ascii")


def forged_credential(genuine: str | None, *, basic: bool = False) -> str:
    """A credential that is not `genuine` (a Basic one when `basic`), for forged requests."""
    value = basic_authorization("forged:not-the-secret") if basic else "forged-not-the-secret"
    return value if value != genuine else value + "0"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at delivering a request: what came back and how long it took."""

    number: int
    """1 for the first try, 2 for the first retry, ..."""
    status: int | None
    """The HTTP status, or None when no response arrived (timeout, refused, TLS failure)."""
    latency: float
    """Seconds from sending the request to having read the whole response (or giving up)."""
    error: str | None = None
    """Why the attempt does not count as acknowledged; None for a 200."""
    timed_out: bool = False
    """Whether the attempt was given up because the receiver did not answer in time."""

    @property
    def acknowledged(self) -> bool:
        """Whether the receiver answered 200, the only answer the platforms accept."""
        return self.status == 200


@dataclass(frozen=True, slots=True)
class Delivery:
    """Everything that happened to one request: every attempt, then delivered or discarded."""

    request: WireRequest
    attempts: tuple[Attempt, ...]

    @property
    def acknowledged(self) -> bool:
        """Whether some attempt got a 200 (the platform then stops sending)."""
        return bool(self.attempts) and self.attempts[-1].acknowledged

    @property
    def status(self) -> int | None:
        """The status of the last attempt, or None if it got no response."""
        return self.attempts[-1].status if self.attempts else None

    @property
    def error(self) -> str | None:
        """Why the request was discarded (the last attempt's error); None when acknowledged."""
        return None if self.acknowledged or not self.attempts else self.attempts[-1].error

    @property
    def retried(self) -> int:
        """How many attempts came after the first."""
        return max(len(self.attempts) - 1, 0)

    @property
    def latencies(self) -> tuple[float, ...]:
        """Seconds taken by each attempt, in order."""
        return tuple(attempt.latency for attempt in self.attempts)

"""Engage Voice Web Services on the wire: the administrator's template, method and body kind.

Tags are substituted as text, so every value goes out as a string; a tag without a value goes
out literally (`#agent_username#`) when the payload says so. The body kinds: `json` (an object
of strings), `form` (URL-encoded), `xml` (one element per field under `<call>`), `text` (one
`name: value` line per field) and `query` (the fields as URL parameters, no body).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import orjson

from receiver.sender.base import WireRequest, forged_credential

__all__ = ["WEB_SERVICE_BODIES", "WebServicesWire"]

WEB_SERVICE_BODIES = ("json", "form", "xml", "text", "query")

_CONTENT_TYPES = {
    "json": "application/json",
    "form": "application/x-www-form-urlencoded",
    "xml": "application/xml",
    "text": "text/plain; charset=utf-8",
}


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


@dataclass(frozen=True, slots=True)
class WebServicesWire:
    """The request one configured web service sends for one call's field values.

    `credential` is the value of `auth_header` (for Basic, `basic_authorization("user:pw")`);
    without one no credential header is sent.
    """

    provider: ClassVar[str] = "engage_web_services"

    credential: str | None = field(default=None, repr=False)
    auth_header: str = "Authorization"
    method: str = "POST"
    body: str = "json"
    event_type: str = "CallDetails"
    """The name reports use (the trigger the web service is attached to)."""

    def __post_init__(self) -> None:
        if self.body not in WEB_SERVICE_BODIES:
            raise ValueError(f"body must be one of {', '.join(WEB_SERVICE_BODIES)}")

    def build(
        self, url: str, payload: Mapping[str, Any], *, event_type: str | None = None
    ) -> WireRequest:
        """The request carrying `payload` (field name → value) the way `body` says."""
        values = {str(name): _text(value) for name, value in payload.items()}
        headers: list[tuple[str, str]] = []
        if self.credential:
            headers.append((self.auth_header, self.credential))
        content_type = _CONTENT_TYPES.get(self.body)
        if content_type is not None:
            headers.append(("Content-Type", content_type))
        if self.body == "query":
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(values)}"
        return WireRequest(
            method=self.method,
            url=url,
            headers=tuple(headers),
            body=self._body(values),
            event_type=event_type or self.event_type,
            event_id=values.get("uii") or None,
            sensitive=frozenset({self.auth_header.lower()}),
        )

    def _body(self, values: Mapping[str, str]) -> bytes:
        if self.body == "json":
            return orjson.dumps(dict(values))
        if self.body == "form":
            return urlencode(values).encode()
        if self.body == "xml":
            elements = "".join(f"<{n}>{escape(v)}</{n}>" for n, v in values.items())
            return f'<?xml version="1.0" encoding="UTF-8"?><call>{elements}</call>'.encode()
        if self.body == "text":
            return "".join(f"{name}: {value}\n" for name, value in values.items()).encode()
        return b""

    def forged(self) -> WebServicesWire:
        """The same wire with a credential no receiver configured with `credential` accepts."""
        return WebServicesWire(
            credential=forged_credential(self.credential, basic=True),
            auth_header=self.auth_header,
            method=self.method,
            body=self.body,
            event_type=self.event_type,
        )

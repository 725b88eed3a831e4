"""Engage Voice WFM Generic HTTP on the wire: event details URL-encoded or as a JSON body.

The platform's default puts the details in the query string; "Send body as JSON" sends a JSON
object instead. The configured header/value pairs (typically `Authorization: Basic ...`) go
with every request. The platform documents no method: the query form is sent with GET and the
body forms with POST unless told otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlencode

import orjson

from receiver.catalogs.engage import END_CALL_TYPES
from receiver.sender.base import WireRequest, forged_credential

__all__ = ["WFM_ENCODINGS", "WfmWire", "wfm_event_type"]

WFM_ENCODINGS = ("query", "json", "form")

_TYPE_OF_STATE = {"LOGIN": "AgentLogin", "LOGOUT": "AgentLogout"}


def wfm_event_type(payload: Mapping[str, Any]) -> str:
    """The type the receiver stores `payload` under (AgentLogin, AgentState, EndCall, ...)."""
    state = str(payload.get("event_type") or "").strip().upper()
    if state in END_CALL_TYPES or payload.get("call_state"):
        return "EndCall"
    return _TYPE_OF_STATE.get(state, "AgentState")


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


@dataclass(frozen=True, slots=True)
class WfmWire:
    """The request Engage's WFM integration sends for one agent or end call event.

    `credential` is the value of `auth_header` (for Basic, `basic_authorization("user:pw")`);
    without one no credential header is sent. `call_url`, when set, receives the end call
    events (the Call Event URL) while agent events go to the URL given to `build`.
    """

    provider: ClassVar[str] = "engage_wfm"

    credential: str | None = field(default=None, repr=False)
    auth_header: str = "Authorization"
    encoding: str = "query"
    method: str | None = None
    """GET or POST; None: GET for the query form, POST for the body forms."""
    call_url: str | None = None

    def __post_init__(self) -> None:
        if self.encoding not in WFM_ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(WFM_ENCODINGS)}")

    def build(
        self, url: str, payload: Mapping[str, Any], *, event_type: str | None = None
    ) -> WireRequest:
        """The request for `payload` (its fields by name); the type comes from its fields."""
        stored_type = wfm_event_type(payload)
        if stored_type == "EndCall" and self.call_url:
            url = self.call_url
        method = self.method or ("GET" if self.encoding == "query" else "POST")
        headers: list[tuple[str, str]] = []
        if self.credential:
            headers.append((self.auth_header, self.credential))
        body = b""
        if self.encoding == "query":
            query = urlencode({name: _text(value) for name, value in payload.items()})
            url = f"{url}{'&' if '?' in url else '?'}{query}"
        elif self.encoding == "json":
            headers.append(("Content-Type", "application/json"))
            body = orjson.dumps(dict(payload))
        else:
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
            body = urlencode({name: _text(value) for name, value in payload.items()}).encode()
        return WireRequest(
            method=method,
            url=url,
            headers=tuple(headers),
            body=body,
            event_type=stored_type,
            sensitive=frozenset({self.auth_header.lower()}),
        )

    def forged(self) -> WfmWire:
        """The same wire with a credential no receiver configured with `credential` accepts."""
        return WfmWire(
            credential=forged_credential(self.credential, basic=True),
            auth_header=self.auth_header,
            encoding=self.encoding,
            method=self.method,
            call_url=self.call_url,
        )

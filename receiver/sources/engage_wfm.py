"""RingCentral Engage Voice WFM "Generic HTTP": agent state and end call events, no event id.

The details arrive URL-encoded in the query string (the product's default), as a JSON body
("Send body as JSON"), or as a form body, with GET or POST; query and body fields are merged
(the body wins). The stored payload is a JSON object:

    {"family": "agent" | "call" | "validation", "encoding": "query" | "json" | "form",
     "method": "GET", "time_zone": "UTC", "fields": {"agent_id": "1001", ...}}

Dedup keys are fingerprints of the content (see `agent_fingerprint`, `end_call_fingerprint`).
"""

from __future__ import annotations

import hashlib

import orjson

from receiver.auth import HeaderAuth
from receiver.catalogs.engage import END_CALL_TYPES
from receiver.exceptions import DecodeError
from receiver.inbox.models import NewEvent
from receiver.sources.base import Headers
from receiver.sources.fields import (
    Fields,
    bounded,
    fingerprint,
    form_fields,
    json_fields,
    lookup,
    without_bom,
)

__all__ = [
    "AGENT_KEY_FIELDS",
    "END_CALL_KEY_FIELDS",
    "EngageWfmSource",
    "agent_fingerprint",
    "end_call_fingerprint",
    "request_fields",
]

VALIDATION_HEADER = b"validation-token"

AGENT_KEY_FIELDS = (
    "agent_id",
    "event_type",
    "event_aux_type",
    "prev_state",
    "prev_aux_state",
    "date_time",
    "duration",
)
"""The fields whose values make an agent event's fingerprint, in this order."""

END_CALL_KEY_FIELDS = ("call_id", "agent_id", "event_type", "call_state", "call_start")
"""The fields whose values make an end call event's fingerprint: the call and agent segment."""

_TYPE_OF_STATE = {"LOGIN": "AgentLogin", "LOGOUT": "AgentLogout"}


def agent_fingerprint(fields: Fields) -> str:
    """`agent-state:` + SHA-256 of the JSON array of the `AGENT_KEY_FIELDS` values."""
    return "agent-state:" + fingerprint(lookup(fields, name) for name in AGENT_KEY_FIELDS)


def end_call_fingerprint(fields: Fields) -> str:
    """`end-call:` + SHA-256 of the JSON array of the `END_CALL_KEY_FIELDS` values."""
    return "end-call:" + fingerprint(lookup(fields, name) for name in END_CALL_KEY_FIELDS)


def request_fields(headers: Headers, query: bytes, body: bytes) -> tuple[Fields, str]:
    """The query string's fields updated with the body's, and the body's encoding.

    A body is JSON when its Content-Type says so or it starts with `{` (after a byte order
    mark, which is dropped), else URL-encoded form data; an empty body leaves the query string
    alone (encoding `query`).
    """
    fields = form_fields(query, "the query string", strict=False) if query else {}
    body = without_bom(body)
    stripped = body.strip()
    if not stripped:
        return fields, "query"
    content_type = headers.get(b"content-type", b"").lower()
    if b"json" in content_type or stripped.startswith(b"{"):
        fields.update(json_fields(body))
        return fields, "json"
    if content_type and b"x-www-form-urlencoded" not in content_type:
        raise DecodeError(f"unsupported Content-Type {content_type.decode('latin-1')}")
    fields.update(form_fields(stripped, "body"))
    return fields, "form"


class EngageWfmSource:
    """Decodes WFM Generic HTTP requests of one endpoint (Agent Event URL, Call Event URL, or both).

    `family` limits the endpoint to agent events or end call events (the other family gets
    400); with `both` an event is an end call when its `event_type` is `ACD-CALL`/`VPD-CALL`
    or it has a `call_state`. A request that carries no fields but a `Validation-Token`
    header is stored as a `Validation` event, so the token is echoed in the 200.
    """

    kind = "engage_wfm"
    methods = frozenset({"GET", "POST"})
    echo_headers: tuple[bytes, ...] = (VALIDATION_HEADER,)

    def __init__(
        self, name: str, auth: HeaderAuth, *, family: str = "both", time_zone: str = "UTC"
    ) -> None:
        self.name = name
        self.auth = auth
        self.family = family
        self.time_zone = time_zone

    def authenticate(self, headers: Headers, query: bytes) -> None:
        """Check the configured header (or Basic credentials), in constant time."""
        self.auth.verify(headers)

    def decode(self, method: str, headers: Headers, query: bytes, body: bytes) -> NewEvent:
        """Classify the event, fingerprint it and store its fields; raise `DecodeError`."""
        fields, encoding = request_fields(headers, query, body)
        if not fields:
            token = headers.get(VALIDATION_HEADER)
            if token:
                return self._validation(token, method)
            raise DecodeError("no event fields in the query string or the body")
        event_type = lookup(fields, "event_type")
        is_end_call = (event_type or "").upper() in END_CALL_TYPES or (
            lookup(fields, "call_state") is not None
        )
        if is_end_call:
            if self.family == "agent":
                raise DecodeError("an end call event at an endpoint for agent events only")
            call_id = lookup(fields, "call_id")
            if call_id is None:
                raise DecodeError("end call event without call_id", field="call_id")
            family, stored_type = "call", "EndCall"
            dedup_key, order_key = end_call_fingerprint(fields), "call:" + call_id
        else:
            if self.family == "call":
                raise DecodeError("an agent event at an endpoint for end call events only")
            agent_id = lookup(fields, "agent_id")
            if agent_id is None:
                raise DecodeError("agent event without agent_id", field="agent_id")
            if event_type is None:
                raise DecodeError("agent event without event_type", field="event_type")
            family = "agent"
            stored_type = _TYPE_OF_STATE.get(event_type.upper(), "AgentState")
            dedup_key, order_key = agent_fingerprint(fields), "agent:" + agent_id
        payload = {
            "family": family,
            "encoding": encoding,
            "method": method,
            "time_zone": self.time_zone,
            "fields": fields,
        }
        return NewEvent(
            source=self.name,
            dedup_key=dedup_key,
            event_type=stored_type,
            order_key=order_key,
            payload=bounded(orjson.dumps(payload), len(query) + len(body)),
        )

    def _validation(self, token: bytes, method: str) -> NewEvent:
        value = token.decode("latin-1")
        payload = {
            "family": "validation",
            "encoding": "query",
            "method": method,
            "time_zone": self.time_zone,
            "fields": {"validation_token": value},
        }
        return NewEvent(
            source=self.name,
            dedup_key="validation:" + hashlib.sha256(token).hexdigest(),
            event_type="Validation",
            order_key=None,
            payload=orjson.dumps(payload),
        )

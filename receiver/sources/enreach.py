"""Enreach (formerly Benemen): JSON body, `X-Benemen-Token` secret, `X-Benemen-Event` type."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import orjson

from receiver.auth import SecretSet
from receiver.exceptions import DecodeError
from receiver.inbox.models import NewEvent
from receiver.logs import RateLimitedLog, printable
from receiver.sources.base import Headers, find_key
from receiver.sources.fields import json_object, without_bom
from receiver.sources.keys import FINGERPRINT_PREFIX, exact_numbers, id_key

__all__ = ["EnreachSource"]

TOKEN_HEADER = b"x-benemen-token"
EVENT_HEADER = b"x-benemen-event"

_mismatch_log = RateLimitedLog(logging.getLogger("receiver.sources.enreach"))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    text = text.strip()
    return text or None


class EnreachSource:
    """Decodes Enreach webhooks; the dedup key is the event `Id` (a GUID, in any spelling:
    `receiver.sources.keys`), else a fingerprint of the body."""

    kind = "enreach"
    methods = frozenset({"POST"})
    echo_headers: tuple[bytes, ...] = ()

    def __init__(self, name: str, secrets: SecretSet) -> None:
        self.name = name
        self.secrets = secrets

    def authenticate(self, headers: Headers, query: bytes) -> None:
        """Check `X-Benemen-Token` against every accepted secret, in constant time."""
        self.secrets.verify(headers.get(TOKEN_HEADER))

    def decode(self, method: str, headers: Headers, query: bytes, body: bytes) -> NewEvent:
        """Read the common properties the inbox and dispatcher need; keep the body as is
        (but for a leading byte order mark)."""
        body = without_bom(body)
        data = json_object(body)
        header_type = headers.get(EVENT_HEADER, b"").decode("latin-1").strip()
        body_type = find_key(data, "EventType", "eventtype")
        if body_type is not None and not isinstance(body_type, str):
            raise DecodeError("EventType is not a string", field="EventType")
        event_type = (body_type or "").strip() or header_type
        if body_type and header_type and body_type.strip() != header_type:
            _mismatch_log.warning(
                "X-Benemen-Event '%s' disagrees with EventType '%s'; using EventType",
                printable(header_type),
                printable(body_type),
            )
        raw_id = find_key(data, "Id", "id")
        if isinstance(raw_id, float):  # maybe an integer too large for orjson: read it exactly
            raw_id = find_key(exact_numbers(body), "Id", "id")
        event_id = _text(raw_id)
        if event_id is not None:
            dedup_key = id_key(event_id)
        else:
            dedup_key = FINGERPRINT_PREFIX + hashlib.sha256(body).hexdigest()
        order_key = _text(find_key(data, "CallId", "callid")) or _text(
            find_key(data, "EntityId", "entityid")
        )
        return NewEvent(
            source=self.name,
            dedup_key=dedup_key,
            event_type=event_type,
            order_key=order_key.lower() if order_key else None,
            payload=body,
        )

"""Buzzeasy service hooks: a JSON POST with `x-api-key`, one endpoint per event type."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from receiver.auth import HeaderAuth
from receiver.inbox.models import NewEvent
from receiver.sources.base import Headers
from receiver.sources.fields import as_text, json_object, without_bom
from receiver.sources.keys import FINGERPRINT_PREFIX, exact_numbers, id_key

__all__ = ["BuzzeasySource", "buzzeasy_order_key"]

_CONVERSATION_KEYS = ("primaryconversationid", "conversationid")
_AGENT_KEYS = ("agentid",)


def _find(data: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    """The text of the first top-level property named one of `names` (lower case, no `_`)."""
    for key, value in data.items():
        if (
            key.lower().replace("_", "") in names
            and isinstance(value, str | int)
            and not isinstance(value, bool)
        ):
            text = as_text(value)
            if text:
                return text
    return None


def _event_id(data: Mapping[str, Any], body: bytes) -> str | None:
    """The text of the body's `id`; read exactly from `body` when orjson made it a float (an
    integer beyond 64 bits)."""
    if any(isinstance(v, float) for k, v in data.items() if k.lower().replace("_", "") == "id"):
        data = exact_numbers(body)
    return _find(data, ("id",))


def buzzeasy_order_key(data: Mapping[str, Any]) -> str | None:
    """`conversation:<id>` from (primary) conversation id, else `agent:<id>`, else None."""
    conversation = _find(data, _CONVERSATION_KEYS)
    if conversation is not None:
        return "conversation:" + conversation.lower()
    agent = _find(data, _AGENT_KEYS)
    if agent is None:
        nested = next(
            (v for k, v in data.items() if k.lower() == "agent" and isinstance(v, Mapping)), None
        )
        agent = _find(nested, ("id",)) if nested is not None else None
    return "agent:" + agent.lower() if agent is not None else None


class BuzzeasySource:
    """Decodes one service hook endpoint; the endpoint, not the body, names the event type.

    The dedup key is the body's `id` (the property named in any casing; a GUID in any spelling
    gives its 32 lower-case digits, as Buzzeasy writes them, other ids are kept exactly:
    `receiver.sources.keys`) when it has one, else `sha256:` + SHA-256 of the body
    re-serialized as compact JSON with sorted keys, so spacing and key order do not make a
    copy look new. The body is stored as received, less a
    leading byte order mark.
    """

    kind = "buzzeasy"
    methods = frozenset({"POST"})
    echo_headers: tuple[bytes, ...] = ()

    def __init__(self, name: str, auth: HeaderAuth, *, event_type: str) -> None:
        self.name = name
        self.auth = auth
        self.event_type = event_type

    def authenticate(self, headers: Headers, query: bytes) -> None:
        """Check `x-api-key` against every accepted key, in constant time."""
        self.auth.verify(headers)

    def decode(self, method: str, headers: Headers, query: bytes, body: bytes) -> NewEvent:
        """Key the event by `id` or fingerprint; keep the body as is (but for a leading byte
        order mark)."""
        body = without_bom(body)
        data = json_object(body)
        event_id = _event_id(data, body)
        if event_id is not None:
            dedup_key = id_key(event_id, hyphens=False)
        else:
            canonical = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
            dedup_key = FINGERPRINT_PREFIX + hashlib.sha256(canonical).hexdigest()
        return NewEvent(
            source=self.name,
            dedup_key=dedup_key,
            event_type=self.event_type,
            order_key=buzzeasy_order_key(data),
            payload=body,
        )

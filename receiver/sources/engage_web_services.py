"""RingCentral Engage Voice Web Services: a body the administrator templates with `#tag#`s.

Each endpoint is configured like the web service it receives: the methods, the body kind
(`json`, `form`, `xml`, `text`, or `query` for URL parameters only), the dedup fields and
a mapping of received names to typed fields. URL parameters are read with every body kind
(the body wins on a shared name). A value that is a whole unsubstituted tag
(`#agent_username#`) is stored as null: the platform had no value for it. The stored payload:

    {"method": "POST", "body": "json", "time_zone": "UTC",
     "fields": {"agentId": "1001", "agentUsername": null, ...},
     "names": {"agent_id": "agentId", "agent_username": "agentUsername", ...}}

`names` tells which received field fills each typed field of `CallDetailsEvent`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import orjson

from receiver.auth import HeaderAuth
from receiver.catalogs.engage import DEFAULT_NAMES, LITERAL_TAG, normalized_name
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
    xml_fields,
)

__all__ = ["EngageWebServicesSource", "typed_names"]

TEXT_FIELD = "text"
"""The field a `text` body is stored under, whole."""


def typed_names(fields: Iterable[str], mapping: Mapping[str, str]) -> dict[str, str]:
    """Typed field → the received name that fills it.

    `mapping` (received name → typed field, names matched ignoring case) wins; other names
    fill a field when they spell a documented tag or field in any casing, with or without
    underscores (`agentUsername`, `agent_username`), looking at the part after the last dot of a
    nested name. The first received name for a field wins.
    """
    explicit = {name.lower(): typed for name, typed in mapping.items()}
    names: dict[str, str] = {}
    defaults: list[tuple[str, str]] = []
    for received in fields:
        typed = explicit.get(received.lower())
        if typed is not None:
            names.setdefault(typed, received)
            continue
        default = DEFAULT_NAMES.get(normalized_name(received.rpartition(".")[2]))
        if default is not None:
            defaults.append((default, received))
    for typed, received in defaults:
        names.setdefault(typed, received)
    return names


class EngageWebServicesSource:
    """Decodes the requests of one configured web service into `CallDetails` events.

    The dedup key is `content:` + SHA-256 of the fields as sorted-key JSON, or, with
    `dedup_fields`, `fields:` + SHA-256 of the JSON array of those fields' values (typed
    field names or received names). Agent segments of one call differ in agent and recording,
    so each is its own event.
    """

    kind = "engage_web_services"
    echo_headers: tuple[bytes, ...] = ()

    def __init__(
        self,
        name: str,
        auth: HeaderAuth,
        *,
        methods: Iterable[str] = ("POST",),
        body: str = "json",
        dedup_fields: Iterable[str] = (),
        fields: Mapping[str, str] | None = None,
        event_type: str = "CallDetails",
        time_zone: str = "UTC",
    ) -> None:
        self.name = name
        self.auth = auth
        self.methods = frozenset(methods)
        self.body = body
        self.dedup_fields = tuple(dedup_fields)
        self.mapping = dict(fields or {})
        self.event_type = event_type
        self.time_zone = time_zone

    def authenticate(self, headers: Headers, query: bytes) -> None:
        """Check the configured header (or Basic credentials), in constant time."""
        self.auth.verify(headers)

    def decode(self, method: str, headers: Headers, query: bytes, body: bytes) -> NewEvent:
        """Read the fields the body kind says, drop literal tags, key and store them."""
        fields = self._fields(query, body)
        if not fields:
            raise DecodeError(f"no fields in the URL parameters or the {self.body} body")
        for name, value in fields.items():
            if value is not None and LITERAL_TAG.fullmatch(value):
                fields[name] = None
        names = typed_names(fields, self.mapping)
        if self.dedup_fields:
            values = (
                lookup(fields, names[name]) if name in names else lookup(fields, name)
                for name in self.dedup_fields
            )
            dedup_key = "fields:" + fingerprint(values)
        else:
            canonical = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
            dedup_key = "content:" + hashlib.sha256(canonical).hexdigest()
        uii = lookup(fields, names["uii"]) if "uii" in names else None
        payload = {
            "method": method,
            "body": self.body,
            "time_zone": self.time_zone,
            "fields": fields,
            "names": names,
        }
        return NewEvent(
            source=self.name,
            dedup_key=dedup_key,
            event_type=self.event_type,
            order_key="call:" + uii if uii else None,
            payload=bounded(orjson.dumps(payload), len(query) + len(body)),
        )

    def _fields(self, query: bytes, body: bytes) -> Fields:
        fields = form_fields(query, "the query string", strict=False) if query else {}
        kind = self.body
        if kind == "query" or not body.strip():
            return fields
        if kind == "json":
            fields.update(json_fields(body))
        elif kind == "form":
            fields.update(form_fields(body.strip(), "body"))
        elif kind == "xml":
            fields.update(xml_fields(body))
        else:
            fields[TEXT_FIELD] = body.decode("utf-8", "replace")
        return fields

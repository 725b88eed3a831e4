"""Endpoint kinds and the options each takes in the config file, checked with one-line errors.

`parse_options` turns the keys an `[[endpoints]]` table has beyond the common ones (name, kind,
path, secrets, handler, max_body) into normalized values; the source of that kind reads them
from `EndpointConfig.options`.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Mapping
from typing import Any

from receiver.catalogs import buzzeasy, engage
from receiver.exceptions import ConfigError

__all__ = [
    "DEFAULT_AUTH_HEADER",
    "SOURCE_KINDS",
    "WEB_SERVICE_BODIES",
    "WEB_SERVICE_METHODS",
    "WFM_FAMILIES",
    "parse_options",
]

SOURCE_KINDS = ("enreach", "engage_wfm", "engage_web_services", "buzzeasy")
"""Every value `kind` may take."""

WFM_FAMILIES = ("agent", "call", "both")
WEB_SERVICE_BODIES = ("json", "form", "xml", "text", "query")
WEB_SERVICE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

DEFAULT_AUTH_HEADER = {
    "engage_wfm": "Authorization",
    "engage_web_services": "Authorization",
    "buzzeasy": "x-api-key",
}
"""The header whose value `secret_env`/`secret_file` give, by kind (Enreach has its own)."""

_Parse = Callable[[Any, str], Any]


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} must be a non-empty string")
    return value.strip()


def _header_name(value: Any, where: str) -> str:
    name = _string(value, where)
    if not name.isascii() or any(c in name for c in " :\t\r\n"):
        raise ConfigError(f"{where}: {name!r} is not a header name")
    return name


def _strings(value: Any, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ConfigError(f"{where} must be a string or a non-empty list of strings")
    return tuple(_string(item, where) for item in items)


def _choice(choices: tuple[str, ...]) -> _Parse:
    def parse(value: Any, where: str) -> str:
        text = _string(value, where).lower()
        if text not in choices:
            raise ConfigError(f"{where} must be one of {', '.join(choices)}, not {value!r}")
        return text

    return parse


def _time_zone(value: Any, where: str) -> str:
    name = _string(value, where)
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: unknown time zone {name!r} (use an IANA name)") from None
    return name


def _methods(value: Any, where: str) -> tuple[str, ...]:
    methods = tuple(dict.fromkeys(m.upper() for m in _strings(value, where)))
    unknown = [m for m in methods if m not in WEB_SERVICE_METHODS]
    if unknown:
        raise ConfigError(
            f"{where}: unknown method {unknown[0]}; choose from {', '.join(WEB_SERVICE_METHODS)}"
        )
    return methods


def _field_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"{where} must be a table of received name = typed field")
    mapping: dict[str, str] = {}
    for received, typed in value.items():
        field = _string(typed, f"{where}.{received}")
        if field not in engage.WEB_SERVICE_FIELDS:
            raise ConfigError(
                f"{where}.{received}: {field!r} is not a typed field; choose from "
                + ", ".join(engage.WEB_SERVICE_FIELDS)
            )
        mapping[str(received)] = field
    return mapping


def _buzzeasy_event_type(value: Any, where: str) -> str:
    return buzzeasy.canonical_event_type(_string(value, where))


# Each kind: option → (parser, default); a default of None means "required".
_OPTIONS: dict[str, dict[str, tuple[_Parse, Any]]] = {
    "enreach": {},
    "engage_wfm": {
        "auth_header": (_header_name, "Authorization"),
        "family": (_choice(WFM_FAMILIES), "both"),
        "time_zone": (_time_zone, "UTC"),
    },
    "engage_web_services": {
        "auth_header": (_header_name, "Authorization"),
        "methods": (_methods, ("POST",)),
        "body": (_choice(WEB_SERVICE_BODIES), "json"),
        "dedup_fields": (_strings, ()),
        "fields": (_field_map, {}),
        "event_type": (_string, "CallDetails"),
        "time_zone": (_time_zone, "UTC"),
    },
    "buzzeasy": {
        "event_type": (_buzzeasy_event_type, None),
    },
}


def parse_options(kind: str, table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The options of a `kind` endpoint from the table's remaining keys, with defaults filled."""
    known = _OPTIONS[kind]
    unknown = sorted(set(table) - set(known))
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} for kind {kind} (its own keys: {allowed})"
        )
    options: dict[str, Any] = {}
    for name, (parse, default) in known.items():
        if name in table:
            options[name] = parse(table[name], f"{where}: {name}")
        elif default is None:
            raise ConfigError(f"{where}: a {kind} endpoint needs {name}")
        else:
            options[name] = default
    return options

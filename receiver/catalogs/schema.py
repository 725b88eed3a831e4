"""JSON Schema (draft 2020-12) and OpenAPI 3.1 documents of every provider's webhook requests.

Made from the provider catalogs by one module per provider (`schema_enreach`, `schema_engage`,
`schema_buzzeasy`), which name their definitions plainly (`QueueStatus`); this module puts them
in documents:

- one provider (or one event type): definitions under their plain names, as the provider
  spells them. The root is the event type's schema, or the union of the provider's event types:
  a `oneOf` when the body tells them apart (Enreach's `EventType`, WFM's `event_type`), else an
  `anyOf` (Buzzeasy and Web Services bodies carry no type; the endpoint names it).
- every provider: each definition under `<provider>.<name>` (`enreach.QueueStatus`,
  `buzzeasy.WorkItemClosed`), so names cannot collide, each provider's union under
  `<provider>`, and a root `anyOf` of the provider unions: a request's provider, like a
  Buzzeasy hook's type, is known from the endpoint it arrives at, not from its body. Validate
  against `#/$defs/<provider>.<EventType>` when the endpoint is known.

OpenAPI documents hold one `webhooks` entry per event type (named like the definitions), the
request body in each content type the provider sends, the provider's authentication as
security schemes and a 200 answer with no body.
"""

from __future__ import annotations

from typing import Any

from receiver.catalogs.schema_base import (
    DATETIME_PATTERN,
    DIALECT,
    GUID_PATTERN,
    ProviderSchema,
    Refs,
)
from receiver.catalogs.schema_buzzeasy import BUZZEASY
from receiver.catalogs.schema_engage import ENGAGE_WEB_SERVICES, ENGAGE_WFM
from receiver.catalogs.schema_enreach import ENREACH

__all__ = [
    "DATETIME_PATTERN",
    "DIALECT",
    "GUID_PATTERN",
    "PROVIDERS",
    "enreach_json_schema",
    "enreach_openapi",
    "json_schema",
    "openapi",
]

PROVIDERS: dict[str, ProviderSchema] = {
    p.name: p for p in (ENREACH, ENGAGE_WFM, ENGAGE_WEB_SERVICES, BUZZEASY)
}
"""Every provider's schemas, by `--provider` name."""

_ALL_TITLE = "Contact-center webhooks"


def json_schema(provider: str | None = None, event_type: str | None = None) -> dict[str, Any]:
    """The JSON Schema of one event type, of one provider's events, or of every provider's.

    Raises ValueError for an unknown provider, or an event type the chosen providers do not
    have (or, without a provider, that several have).
    """
    if event_type is not None:
        spec = _provider_of(provider, event_type)
        definitions = spec.definitions([event_type], _refs("#/$defs/"))
        top = definitions.pop(event_type)
        return {"$schema": DIALECT, **top, "$defs": definitions}
    if provider is not None:
        spec = _provider(provider)
        refs = _refs("#/$defs/")
        return {
            "$schema": DIALECT,
            **_union(spec, refs),
            "$defs": spec.definitions(spec.event_types, refs),
        }
    everything: dict[str, Any] = {}
    for spec in PROVIDERS.values():
        space = spec.name + "."
        refs = _refs("#/$defs/" + space)
        everything[spec.name] = _union(spec, refs)
        definitions = spec.definitions(spec.event_types, refs)
        everything.update((space + name, schema) for name, schema in definitions.items())
    return {
        "$schema": DIALECT,
        "title": "Contact-center webhook request",
        "description": "The body of any documented webhook request of any provider. Each"
        " provider's union is under `$defs/<provider>`, each event type under"
        " `$defs/<provider>.<EventType>`; the endpoint a request arrives at tells which"
        " applies.",
        "anyOf": [{"$ref": f"#/$defs/{name}"} for name in PROVIDERS],
        "$defs": everything,
    }


def openapi(provider: str | None = None, event_type: str | None = None) -> dict[str, Any]:
    """An OpenAPI 3.1 document whose `webhooks` are the chosen event types.

    Every provider's, namespaced as `<provider>.<EventType>`, when neither is given. Raises
    ValueError as `json_schema` does.
    """
    chosen: list[tuple[ProviderSchema, tuple[str, ...]]]
    if event_type is not None:
        spec = _provider_of(provider, event_type)
        chosen = [(spec, (event_type,))]
    elif provider is not None:
        spec = _provider(provider)
        chosen = [(spec, spec.event_types)]
    else:
        chosen = [(spec, spec.event_types) for spec in PROVIDERS.values()]
    namespaced = len(chosen) > 1
    webhooks: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    security: dict[str, Any] = {}
    for spec, event_types in chosen:
        space = spec.name + "." if namespaced else ""
        refs = _refs("#/components/schemas/" + space)
        for name in event_types:
            webhooks[space + name] = spec.webhook(name, space + name, refs)
        definitions = spec.definitions(event_types, refs)
        schemas.update((space + name, schema) for name, schema in definitions.items())
        for name, scheme in spec.security_schemes.items():
            if security.setdefault(name, scheme) != scheme:
                raise AssertionError(f"two providers define security scheme {name} differently")
    if namespaced:
        title, description = _ALL_TITLE, _all_description()
    else:
        title, description = f"{chosen[0][0].title} webhooks", chosen[0][0].description
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": DIALECT,
        "info": {"title": title, "version": "1", "description": description},
        "webhooks": webhooks,
        "components": {"schemas": schemas, "securitySchemes": security},
    }


def enreach_json_schema(event_type: str | None = None) -> dict[str, Any]:
    """`json_schema("enreach", event_type)`."""
    return json_schema("enreach", event_type)


def enreach_openapi(event_type: str | None = None) -> dict[str, Any]:
    """`openapi("enreach", event_type)`."""
    return openapi("enreach", event_type)


# -- pieces -----------------------------------------------------------------------------------


def _refs(base: str) -> Refs:
    def ref(name: str) -> str:
        return base + name

    return ref


def _provider(name: str) -> ProviderSchema:
    spec = PROVIDERS.get(name)
    if spec is None:
        raise ValueError(f"unknown provider {name!r}; choose from {', '.join(PROVIDERS)}")
    return spec


def _provider_of(provider: str | None, event_type: str) -> ProviderSchema:
    if provider is not None:
        spec = _provider(provider)
        if event_type not in spec.event_types:
            raise ValueError(f"not a documented {spec.title} event type: {event_type!r}")
        return spec
    having = [spec for spec in PROVIDERS.values() if event_type in spec.event_types]
    if not having:
        raise ValueError(f"no provider has an event type {event_type!r}")
    if len(having) > 1:
        names = ", ".join(spec.name for spec in having)
        raise ValueError(f"{event_type!r} is an event type of {names}: choose with --provider")
    return having[0]


def _union(spec: ProviderSchema, refs: Refs) -> dict[str, Any]:
    return {
        "title": f"{spec.title} webhook event",
        "description": spec.union_description,
        "oneOf" if spec.exclusive else "anyOf": [{"$ref": refs(n)} for n in spec.event_types],
    }


def _all_description() -> str:
    parts = [
        "The webhook requests of every provider the receiver takes, one entry per event type,"
        " named `<provider>.<EventType>`."
    ]
    parts += [
        f"**{spec.title}** (`{spec.name}`): {spec.description}" for spec in PROVIDERS.values()
    ]
    return "\n\n".join(parts)

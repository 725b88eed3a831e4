"""What every provider's schema module gives `receiver.catalogs.schema`, and shared pieces.

A provider module describes its request bodies under plain names (`QueueStatus`,
`CallbackAttempt`) and writes every reference through a `Refs` function, so the assembler can
put the same definitions under `#/$defs/` or `#/components/schemas/`, namespaced or not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DATETIME_PATTERN",
    "DIALECT",
    "GUID_PATTERN",
    "ProviderSchema",
    "Refs",
    "Schema",
    "empty_response",
    "open_enum",
]

DIALECT = "https://json-schema.org/draft/2020-12/schema"
"""The JSON Schema dialect of every schema made here."""

DATETIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})?$"
"""A .NET `DateTime` as Enreach and Buzzeasy write it: up to 7 fraction digits, zone optional."""

GUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
"""A GUID as .NET writes it by default."""

Refs = Callable[[str], str]
"""A definition's plain name → the `$ref` that reaches it in the document being built."""

Schema = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ProviderSchema:
    """One provider's event types, their schemas and how its requests arrive."""

    name: str
    """The `--provider` value and the namespace of its definitions (`engage-wfm`)."""
    title: str
    """The provider's name in prose (`Engage Voice WFM`)."""
    description: str
    """How requests arrive: method, encoding, headers, answer (the OpenAPI `info`)."""
    union_description: str
    """What the union of every event type describes."""
    event_types: tuple[str, ...]
    exclusive: bool
    """True when the body tells event types apart (the union is a `oneOf`), False when only
    the endpoint does (an `anyOf`)."""
    security_schemes: Mapping[str, Schema]
    definitions: Callable[[Sequence[str], Refs], dict[str, Schema]]
    """The schemas of the given event types and of every type they share, by plain name."""
    webhook: Callable[[str, str, Refs], Schema]
    """(event type, operation id, refs) → the OpenAPI path item of that webhook."""


def open_enum(values: Iterable[str], description: str) -> Schema:
    """A string whose documented values are listed; others may arrive too."""
    return {
        "description": f"{description} Values not listed here may also arrive.",
        "anyOf": [*({"const": value} for value in values), {"type": "string"}],
    }


def empty_response(note: str = "") -> Schema:
    """The `responses` of every webhook: 200 with no body."""
    text = "Received. Any body is ignored by the sender; send none."
    return {"200": {"description": f"{text} {note}".strip()}}

"""Write the generated modules of `handlers/enreach/` from the Enreach catalog.

    python -m receiver.catalogs.codegen          # rewrite the generated files
    python -m receiver.catalogs.codegen --check  # exit 1 if any of them is out of date

This module only writes text; it never imports `handlers` (which depends on `receiver`).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path

from receiver.catalogs import enreach
from receiver.catalogs.model import Event, NestedType, Property

__all__ = ["TARGET", "main", "python_type", "render"]

TARGET = Path(__file__).resolve().parents[2] / "handlers" / "enreach"
"""The package the generated modules are written into."""

_HEADER = "\n\nGenerated from the catalog by `python -m receiver.catalogs.codegen`; do not edit."
_LINE = 100
_SCALARS = {
    "Guid": "uuid.UUID",
    "DateTime": "datetime",
    "int": "int",
    "long": "int",
    "short": "int",
    "bool": "bool",
    "string": "str",
}
# Attributes of the event base class that a catalog property must not reuse.
_RESERVED = frozenset({"payload", "raw", "extra", "is_continuous"})
_ENUM_NAMES = frozenset(e.name for e in enreach.ENUMERATIONS)


def python_type(prop: Property) -> str:
    """The annotation of a property's attribute, without the `| None`."""
    item = prop.item_type
    if item is not None:
        return f"tuple[{item}, ...]"
    if prop.enum is not None:
        return prop.enum
    base = prop.base_type
    if base in _ENUM_NAMES:
        return base
    if base in enreach.OPAQUE_TYPES:
        return _SCALARS[enreach.OPAQUE_TYPES[base]]
    return _SCALARS[base]


def render() -> dict[str, str]:
    """The text of every generated module, by file name inside `TARGET`."""
    return {
        "__init__.py": _render_init(),
        "enums.py": _render_enums(),
        "events.py": _render_events(),
        "methods.py": _render_methods(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or with `--check`, compare) the generated modules; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m receiver.catalogs.codegen")
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = TARGET / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path}", file=sys.stderr)
    return 1 if args.check and stale else 0


# -- modules ------------------------------------------------------------------------------


def _render_enums() -> str:
    out = [
        _docstring(f"The Enreach enumerations, tolerant of undocumented values.{_HEADER}", 0),
        "",
        "from handlers.enreach.values import TolerantIntEnum, TolerantStrEnum",
        "",
        _all(e.name for e in enreach.ENUMERATIONS),
    ]
    for enumeration in enreach.ENUMERATIONS:
        base = "TolerantStrEnum" if enumeration.wire == "string" else "TolerantIntEnum"
        out += ["", "", f"class {enumeration.name}({base}):"]
        out.append(_docstring(enumeration.description, 4))
        out.append("")
        for member in enumeration.members:
            out.append(f"    {member.attribute} = {member.value!r}".replace("'", '"'))
            out.append(_docstring(member.description, 4))
    return "\n".join(out) + "\n"


def _render_events() -> str:
    enums = sorted(
        {python_type(p) for p in _all_properties() if python_type(p) in _ENUM_NAMES},
    )
    names = ["EnreachEvent", *(n.name for n in enreach.NESTED_TYPES), *enreach.EVENT_TYPES]
    out = [
        _docstring(f"Typed Enreach events and the records nested in them.{_HEADER}", 0),
        "",
        "from __future__ import annotations",
        "",
        "import uuid",
        "from collections.abc import Mapping",
        "from dataclasses import dataclass, field",
        "from datetime import datetime",
        "from typing import Any",
        "",
        *_import("handlers.enreach.enums", enums),
        "from handlers.enreach.values import empty_mapping, is_continuous",
        "",
        _all([*names, "EVENT_CLASSES", "NESTED_CLASSES"]),
    ]
    for nested in enreach.NESTED_TYPES:
        out += _render_nested(nested)
    out += _render_base()
    for event in enreach.EVENTS:
        out += _render_event(event)
    out += ["", ""]
    out.append("EVENT_CLASSES: Mapping[str, type[EnreachEvent]] = {")
    out += [f'    "{name}": {name},' for name in enreach.EVENT_TYPES]
    out.append("}")
    out.append(_docstring("The class of each documented event type, by `EventType`.", 0))
    out.append("")
    out.append("NESTED_CLASSES: Mapping[str, type[Any]] = {")
    out += [f'    "{n.name}": {n.name},' for n in enreach.NESTED_TYPES]
    out.append("}")
    out.append(_docstring("The class of each nested type, by the catalog's name.", 0))
    return "\n".join(out) + "\n"


def _render_nested(nested: NestedType) -> list[str]:
    out = ["", "", "@dataclass(frozen=True, slots=True, kw_only=True)", f"class {nested.name}:"]
    out += [_docstring(nested.description, 4), ""]
    for prop in nested.properties:
        out += _field(prop)
    out.append("    extra: Mapping[str, Any] = field(default_factory=empty_mapping, compare=False)")
    out.append(_docstring("Properties the catalog does not know, by the name they came under.", 4))
    return out


def _render_base() -> list[str]:
    out = [
        "",
        "",
        "@dataclass(frozen=True, slots=True, kw_only=True)",
        "class EnreachEvent:",
        _docstring(
            "Any Enreach event: the properties every type carries, and the payload as received.",
            4,
        ),
        "",
    ]
    for prop in enreach.COMMON_PROPERTIES:
        if prop.name == "EventType":
            # Always known: from the X-Benemen-Event header or the payload's EventType.
            out.append(f"    {prop.attribute}: str")
            out.append(_docstring(f"{prop.description} (`{prop.name}`: {prop.type})", 4))
        else:
            out += _field(prop)
    out += [
        "    payload: Mapping[str, Any] = field("
        "default_factory=empty_mapping, compare=False, repr=False)",
        _docstring("The decoded JSON object, as sent.", 4),
        '    raw: bytes = field(default=b"", compare=False, repr=False)',
        _docstring("The request body, byte for byte.", 4),
        "    extra: Mapping[str, Any] = field(default_factory=empty_mapping, compare=False)",
        _docstring("Properties the catalog does not know, by the name they came under.", 4),
    ]
    return out


def _render_event(event: Event) -> list[str]:
    taken = {p.attribute for p in enreach.COMMON_PROPERTIES} | _RESERVED
    out = ["", "", "@dataclass(frozen=True, slots=True, kw_only=True)"]
    out += [f"class {event.name}(EnreachEvent):", _docstring(event.description, 4), ""]
    out.append(f'    event_type: str = "{event.name}"')
    for prop in event.properties:
        if prop.attribute in taken:
            raise ValueError(f"{event.name}.{prop.name}: attribute {prop.attribute} is taken")
        out += _field(prop)
    for prop in event.properties:
        if prop.open_ended:
            out += [
                "",
                "    @property",
                "    def is_continuous(self) -> bool:",
                _docstring(
                    f"Whether the state has no end (`{prop.name}` is DateTime.MaxValue).", 8
                ),
                f"        return is_continuous(self.{prop.attribute})",
            ]
    return out


def _render_methods() -> str:
    out = [
        _docstring(f"One overridable method per Enreach event type.{_HEADER}", 0),
        "",
        "from __future__ import annotations",
        "",
        "from handlers.base import Handler",
        *_import("handlers.enreach.events", ["EnreachEvent", *enreach.EVENT_TYPES]),
        "",
        '__all__ = ["EnreachMethods"]',
        "",
        "",
        "class EnreachMethods(Handler[EnreachEvent]):",
        _docstring(
            "The `on_<event type>` methods of `EnreachHandler`; each passes its event to `on_any`.",
            4,
        ),
        "",
        "    _provider_base = True",
    ]
    for event in enreach.EVENTS:
        signature = f"    async def {event.method}(self, event: {event.name}) -> None:"
        if len(signature) > _LINE:
            signature = (
                f"    async def {event.method}(\n        self, event: {event.name}\n    ) -> None:"
            )
        out += [
            "",
            signature,
            _docstring(f"Handle `{event.name}`: {_lower_first(event.description)}", 8),
            "        await self.on_any(event)",
        ]
    return "\n".join(out) + "\n"


def _render_init() -> str:
    enums = [e.name for e in enreach.ENUMERATIONS]
    events = ["EnreachEvent", *(n.name for n in enreach.NESTED_TYPES), *enreach.EVENT_TYPES]
    values = ["CONTINUOUS", "is_continuous", "parse_datetime"]
    out = [
        _docstring(
            "Typed Enreach events and `EnreachHandler`, the base class of Enreach handlers.\n\n"
            "Subclass `EnreachHandler` and override `on_<event type>` methods (for example"
            " `on_queue_call_in_user_allocated`); events without an overridden method go to"
            f" `on_any`.{_HEADER}",
            0,
        ),
        "",
        "from handlers.enreach.decode import decode",
        *_import("handlers.enreach.enums", enums),
        *_import("handlers.enreach.events", events),
        "from handlers.enreach.handler import EnreachHandler",
        *_import("handlers.enreach.values", values),
        "",
        _all(["EnreachHandler", "decode", *values, *enums, *events]),
    ]
    return "\n".join(out) + "\n"


# -- text helpers -----------------------------------------------------------------------------


def _all_properties() -> Iterable[Property]:
    yield from enreach.COMMON_PROPERTIES
    for event in enreach.EVENTS:
        yield from event.properties
    for nested in enreach.NESTED_TYPES:
        yield from nested.properties


def _field(prop: Property) -> list[str]:
    return [
        f"    {prop.attribute}: {python_type(prop)} | None = None",
        _docstring(f"{prop.description} (`{prop.name}`: {prop.type})", 4),
    ]


def _docstring(text: str, indent: int) -> str:
    pad = " " * indent
    one_line = f'{pad}"""{text}"""'
    if "\n" not in text and len(one_line) <= _LINE:
        return one_line
    lines: list[str] = []
    for paragraph in text.split("\n\n"):
        if lines:
            lines.append("")
        # Room for the quotes on both sides, so a one-line result fits as a one-liner.
        lines += textwrap.wrap(paragraph, _LINE - indent - 6, break_on_hyphens=False)
    if len(lines) == 1:
        return f'{pad}"""{lines[0]}"""'
    body = "\n".join(f"{pad}{line}" if line else "" for line in lines[1:])
    return f'{pad}"""{lines[0]}\n{body}\n{pad}"""'


def _import(module: str, names: Iterable[str]) -> list[str]:
    names = _isort_order(names)
    one_line = f"from {module} import {', '.join(names)}"
    if len(one_line) <= _LINE:
        return [one_line]
    return [f"from {module} import (", *(f"    {n}," for n in names), ")"]


def _all(names: Iterable[str]) -> str:
    quoted = [f'"{name}"' for name in _isort_order(names)]
    one_line = f"__all__ = [{', '.join(quoted)}]"
    if len(one_line) <= _LINE:
        return one_line
    return "\n".join(["__all__ = [", *(f"    {q}," for q in quoted), "]"])


def _isort_order(names: Iterable[str]) -> list[str]:
    """The order ruff's isort and RUF022 want: CONSTANTS, then Classes, then the rest."""

    def key(name: str) -> tuple[int, str]:
        if name.isupper() and len(name) > 1:
            return (0, name)
        if name[0].isupper():
            return (1, name)
        return (2, name)

    return sorted(names, key=key)


def _lower_first(text: str) -> str:
    """`A user's ...` → `a user's ...`, leaving acronyms (`SIP ...`) alone."""
    return text if text[1:2].isupper() else text[0].lower() + text[1:]


if __name__ == "__main__":
    raise SystemExit(main())

"""Extract the facts the catalog tests need from Enreach's webhook document into `enreach.json`.

    python -m tests.spec.extract PATH/enreach-webhooks.txt          # rewrite enreach.json
    python -m tests.spec.extract PATH/enreach-webhooks.txt --check  # exit 1 if it differs

It exits 2 when there is no document at PATH.

The document is the provider's, not ours, so the repository keeps only the facts in its tables
(names, types, the enumerations its descriptions spell out), never its prose; the tests read
the committed JSON and never the document.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NotRequired, TypedDict, cast

__all__ = [
    "FACTS",
    "EnumValue",
    "EventFacts",
    "Facts",
    "NestedFacts",
    "Row",
    "Spec",
    "Table",
    "enum_values",
    "facts",
    "load",
    "main",
    "parse",
    "render",
]

FACTS = Path(__file__).resolve().parent / "enreach.json"
"""The committed facts the tests read."""

GROUPS = ("User", "Queue", "CallList")
OTHER_TABLES = ("Common event properties", "Root entity types", "Entity types")
GENERATOR = "python -m tests.spec.extract enreach-webhooks.txt; do not edit"

# The three ways the document's descriptions spell out an enumeration.
_NAMED = re.compile(r"(\w+) = (\d+)")  # QueueStatus.OpenStatus: "NA = 0 NoActiveHandler = 1 ..."
_NUMBERED = re.compile(r"(\d+) - ")  # CallbackChanged.TypeId: "1 - Explicit callback request ..."
_LISTED = re.compile(r"possible values: (\w+(?:, \w+)+)")  # UserAvailability.Availability


class EnumValue(TypedDict, total=False):
    """One enumeration member written in a description: its name, its value, or both."""

    name: str
    value: int


class Row(TypedDict):
    """One row of a property table."""

    name: str
    type: str
    enum_values: NotRequired[list[EnumValue]]


class EventFacts(TypedDict):
    """One `Event:` table and the group heading it sits under."""

    name: str
    group: str
    properties: list[Row]


class NestedFacts(TypedDict):
    """One `Misc:` table: a type that appears only inside events."""

    name: str
    properties: list[Row]


class Facts(TypedDict):
    """Everything `enreach.json` holds, in the document's order."""

    generator: str
    common_properties: list[Row]
    root_entity_types: list[str]
    entity_types: list[str]
    events: list[EventFacts]
    nested_types: list[NestedFacts]


@dataclass
class Table:
    """One table of the document, under its heading: (first cell, second cell, last cell) rows."""

    group: str | None
    rows: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class Spec:
    """The document's tables, by heading, before the facts are drawn from them."""

    events: dict[str, Table] = field(default_factory=dict)
    nested: dict[str, Table] = field(default_factory=dict)
    other: dict[str, Table] = field(default_factory=dict)


def parse(text: str) -> Spec:
    """Read every `Event:`/`Misc:` table and the common-property and entity-type tables."""
    spec = Spec()
    group: str | None = None
    table: Table | None = None
    for line in map(str.strip, text.splitlines()):
        heading = re.fullmatch(r"(Event|Misc): (\w+)", line)
        if line in GROUPS:
            group, table = line, None
        elif heading:
            table = Table(group)
            kind = spec.events if heading.group(1) == "Event" else spec.nested
            kind[heading.group(2)] = table
        elif line in OTHER_TABLES:
            table = spec.other[line] = Table(None)
        elif line.startswith("|") and table is not None:
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if cells[0] in ("Property name", "Property", "Type") or set(cells[0]) == {"-"}:
                continue
            table.rows.append((cells[0], cells[1], cells[-1]))
    return spec


def enum_values(description: str) -> list[EnumValue]:
    """The enumeration a description spells out, in any of the document's three ways, or none."""
    if len(named := _NAMED.findall(description)) > 1:
        return [{"name": name, "value": int(value)} for name, value in named]
    if len(numbered := _NUMBERED.findall(description)) > 1:
        return [{"value": int(value)} for value in numbered]
    if listed := _LISTED.search(description):
        return [{"name": name} for name in listed.group(1).split(", ")]
    return []


def facts(spec: Spec) -> Facts:
    """The facts of the parsed document: names, types and enumerations, without its prose."""

    def rows(table: Table) -> list[Row]:
        out: list[Row] = []
        for name, type_, description in table.rows:
            row: Row = {"name": name, "type": type_}
            if values := enum_values(description):
                row["enum_values"] = values
            out.append(row)
        return out

    def names(heading: str) -> list[str]:
        return [name for name, _, _ in spec.other[heading].rows] if heading in spec.other else []

    common = spec.other.get("Common event properties")
    return {
        "generator": GENERATOR,
        "common_properties": rows(common) if common else [],
        "root_entity_types": names("Root entity types"),
        "entity_types": names("Entity types"),
        "events": [
            {"name": name, "group": table.group or "", "properties": rows(table)}
            for name, table in spec.events.items()
        ],
        "nested_types": [
            {"name": name, "properties": rows(table)} for name, table in spec.nested.items()
        ],
    }


def render(text: str) -> str:
    """The JSON file's text for a document's text."""
    return json.dumps(facts(parse(text)), indent=2, ensure_ascii=False) + "\n"


def load(path: Path = FACTS) -> Facts:
    """The facts committed in the repository."""
    return cast(Facts, json.loads(path.read_text(encoding="utf-8")))


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or with `--check`, compare) the facts of a document; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tests.spec.extract")
    parser.add_argument("document", type=Path, help="the provider's enreach-webhooks.txt")
    parser.add_argument("--check", action="store_true", help="only report whether it differs")
    parser.add_argument("--output", type=Path, default=FACTS, help=f"default: {FACTS}")
    args = parser.parse_args(argv)
    if not args.document.is_file():
        print(f"error: no document at {args.document}", file=sys.stderr)
        return 2
    text = render(args.document.read_text(encoding="utf-8"))
    output: Path = args.output
    if output.is_file() and output.read_text(encoding="utf-8") == text:
        return 0
    if args.check:
        print(f"differs: {output} does not match {args.document}", file=sys.stderr)
        return 1
    output.write_text(text, encoding="utf-8")
    print(f"wrote: {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

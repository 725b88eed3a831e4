"""The catalog matches the provider's spec, and the generated code matches the catalog."""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from handlers.enreach import EnreachHandler, enums, events
from receiver.catalogs import codegen, enreach
from receiver.catalogs.model import Event, Property

ROOT = Path(__file__).resolve().parents[1]
SPEC_DIR = Path(os.environ.get("RECEIVER_SPEC_DIR", ROOT.parent / "shared" / "spec"))
SPEC = SPEC_DIR / "enreach-webhooks.txt"
GROUPS = ("User", "Queue", "CallList")


@dataclass
class Table:
    """One property table of the spec, under its heading."""

    group: str | None
    rows: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class Spec:
    """What the tests need from the spec text."""

    events: dict[str, Table] = field(default_factory=dict)
    nested: dict[str, Table] = field(default_factory=dict)
    other: dict[str, Table] = field(default_factory=dict)


def parse_spec(text: str) -> Spec:
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
        elif line in ("Common event properties", "Root entity types", "Entity types"):
            table = spec.other[line] = Table(None)
        elif line.startswith("|") and table is not None:
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if cells[0] in ("Property name", "Property", "Type") or set(cells[0]) == {"-"}:
                continue
            table.rows.append((cells[0], cells[1], cells[-1]))
    return spec


@pytest.fixture(scope="module")
def spec() -> Spec:
    """The parsed Enreach spec from the shared folder beside the repository."""
    if not SPEC.is_file():
        pytest.fail(
            f"the Enreach spec is not at {SPEC}: put the provider specs in ../shared/spec "
            "beside the repository or name their folder in RECEIVER_SPEC_DIR"
        )
    return parse_spec(SPEC.read_text(encoding="utf-8"))


def columns(table: Table) -> list[tuple[str, str]]:
    """(name, type) per row, with the spec's occasional `String` written `string`."""
    return [(name, "string" if type_ == "String" else type_) for name, type_, _ in table.rows]


def catalog_columns(props: tuple[Property, ...]) -> list[tuple[str, str]]:
    """(name, type) per catalog property."""
    return [(p.name, p.type) for p in props]


def test_spec_lists_34_event_types_all_in_the_catalog(spec: Spec) -> None:
    assert len(spec.events) == 34
    assert list(spec.events) == list(enreach.EVENT_TYPES)


@pytest.mark.parametrize("event", enreach.EVENTS, ids=lambda e: e.name)
def test_event_matches_its_spec_table(spec: Spec, event: Event) -> None:
    table = spec.events[event.name]
    assert event.entity == table.group
    assert catalog_columns(event.properties) == columns(table)


def test_nested_types_match_their_spec_tables(spec: Spec) -> None:
    assert [n.name for n in enreach.NESTED_TYPES] == list(spec.nested)
    for nested in enreach.NESTED_TYPES:
        assert catalog_columns(nested.properties) == columns(spec.nested[nested.name])


def test_common_properties_match_the_spec(spec: Spec) -> None:
    table = spec.other["Common event properties"]
    assert catalog_columns(enreach.COMMON_PROPERTIES) == columns(table)


@pytest.mark.parametrize(
    ("enumeration", "heading"),
    [("RootEntityType", "Root entity types"), ("EntityType", "Entity types")],
)
def test_entity_enumerations_match_the_spec(spec: Spec, enumeration: str, heading: str) -> None:
    members = next(e for e in enreach.ENUMERATIONS if e.name == enumeration).members
    assert [m.name for m in members] == [row[0] for row in spec.other[heading].rows]


def test_enumerations_written_in_descriptions_match_the_spec(spec: Spec) -> None:
    def description(event: str, prop: str) -> str:
        return next(d for n, _, d in spec.events[event].rows if n == prop)

    def members(name: str) -> list[tuple[str, str | int]]:
        enumeration = next(e for e in enreach.ENUMERATIONS if e.name == name)
        return [(m.name, m.value) for m in enumeration.members]

    open_status = re.findall(r"(\w+) = (\d)", description("QueueStatus", "OpenStatus"))
    assert members("OpenStatus") == [(name, int(value)) for name, value in open_status]
    type_ids = re.findall(r"(\d) - ", description("CallbackChanged", "TypeId"))
    assert [value for _, value in members("CallbackType")] == [int(v) for v in type_ids]
    states = description("UserAvailability", "Availability").split(": ")[1].split(", ")
    assert [name for name, _ in members("Availability")] == states


@pytest.mark.parametrize("name", [*enreach.EVENT_TYPES, "EnreachEvent"])
def test_every_event_class_has_every_spec_property(spec: Spec, name: str) -> None:
    cls = events.EVENT_CLASSES.get(name, events.EnreachEvent)
    attributes = {f.name for f in dataclasses.fields(cls)}
    table = spec.events[name].rows if name in spec.events else []
    for prop, _, _ in [*spec.other["Common event properties"].rows, *table]:
        assert enreach.attribute_name(prop) in attributes, f"{name}.{prop}"
    instance = cls(event_type=name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        instance.id = None  # type: ignore[misc]


def test_every_nested_class_has_every_spec_property(spec: Spec) -> None:
    for name, table in spec.nested.items():
        attributes = {f.name for f in dataclasses.fields(events.NESTED_CLASSES[name])}
        assert {enreach.attribute_name(prop) for prop, _, _ in table.rows} <= attributes


@pytest.mark.parametrize("name", enreach.EVENT_TYPES)
def test_every_event_type_has_a_typed_handler_method(name: str) -> None:
    handler = EnreachHandler()
    method_name = handler.method_name(name)
    assert method_name == "on_" + re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    method = getattr(EnreachHandler, method_name)
    assert inspect.iscoroutinefunction(method)
    hints = inspect.get_annotations(method, eval_str=True)
    assert hints["event"] is events.EVENT_CLASSES[name]


def test_casing_variants_share_one_attribute() -> None:
    assert enreach.attribute_name("UserName") == enreach.attribute_name("Username") == "user_name"
    assert enreach.attribute_name("CallBackId") == "callback_id"


def test_enums_module_has_every_enumeration() -> None:
    for enumeration in enreach.ENUMERATIONS:
        cls = getattr(enums, enumeration.name)
        assert [m.value for m in cls] == [m.value for m in enumeration.members]


def test_generated_code_is_up_to_date() -> None:
    for name, text in codegen.render().items():
        path = codegen.TARGET / name
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} is stale: run `python -m receiver.catalogs.codegen`"
        )


def test_codegen_check_reports_no_stale_files() -> None:
    assert codegen.main(["--check"]) == 0

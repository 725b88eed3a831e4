"""The catalog matches the provider's spec, and the generated code matches the catalog.

The spec's facts come from `tests/spec/enreach.json`, committed and regenerated from the
provider's document by `python -m tests.spec.extract`; no test reads the document itself.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from handlers.enreach import EnreachHandler, enums, events
from receiver.catalogs import codegen, enreach
from receiver.catalogs.model import Event, Property
from tests.spec import extract
from tests.spec.extract import EnumValue, Facts, Row


@pytest.fixture(scope="module")
def spec() -> Facts:
    """The facts of the Enreach spec committed in the repository."""
    return extract.load()


def columns(rows: list[Row]) -> list[tuple[str, str]]:
    """(name, type) per row, with the spec's occasional `String` written `string`."""
    return [(r["name"], "string" if r["type"] == "String" else r["type"]) for r in rows]


def catalog_columns(props: tuple[Property, ...]) -> list[tuple[str, str]]:
    """(name, type) per catalog property."""
    return [(p.name, p.type) for p in props]


def event_rows(spec: Facts, name: str) -> list[Row]:
    """The property rows of one event's table."""
    return next(e["properties"] for e in spec["events"] if e["name"] == name)


def test_spec_lists_34_event_types_all_in_the_catalog(spec: Facts) -> None:
    assert len(spec["events"]) == 34
    assert [e["name"] for e in spec["events"]] == list(enreach.EVENT_TYPES)


@pytest.mark.parametrize("event", enreach.EVENTS, ids=lambda e: e.name)
def test_event_matches_its_spec_table(spec: Facts, event: Event) -> None:
    table = next(e for e in spec["events"] if e["name"] == event.name)
    assert event.entity == table["group"]
    assert catalog_columns(event.properties) == columns(table["properties"])


def test_nested_types_match_their_spec_tables(spec: Facts) -> None:
    assert [n.name for n in enreach.NESTED_TYPES] == [n["name"] for n in spec["nested_types"]]
    for nested, table in zip(enreach.NESTED_TYPES, spec["nested_types"], strict=True):
        assert catalog_columns(nested.properties) == columns(table["properties"])


def test_common_properties_match_the_spec(spec: Facts) -> None:
    assert catalog_columns(enreach.COMMON_PROPERTIES) == columns(spec["common_properties"])


@pytest.mark.parametrize(
    ("enumeration", "key"),
    [("RootEntityType", "root_entity_types"), ("EntityType", "entity_types")],
)
def test_entity_enumerations_match_the_spec(spec: Facts, enumeration: str, key: str) -> None:
    members = next(e for e in enreach.ENUMERATIONS if e.name == enumeration).members
    names = spec["root_entity_types"] if key == "root_entity_types" else spec["entity_types"]
    assert [m.name for m in members] == names


def test_enumerations_written_in_descriptions_match_the_spec(spec: Facts) -> None:
    def written(event: str, prop: str) -> list[EnumValue]:
        row = next(r for r in event_rows(spec, event) if r["name"] == prop)
        return row.get("enum_values", [])

    def members(name: str) -> list[tuple[str, str | int]]:
        enumeration = next(e for e in enreach.ENUMERATIONS if e.name == name)
        return [(m.name, m.value) for m in enumeration.members]

    open_status = written("QueueStatus", "OpenStatus")
    assert members("OpenStatus") == [(v["name"], v["value"]) for v in open_status]
    type_ids = written("CallbackChanged", "TypeId")
    assert [value for _, value in members("CallbackType")] == [v["value"] for v in type_ids]
    states = written("UserAvailability", "Availability")
    assert [name for name, _ in members("Availability")] == [v["name"] for v in states]


@pytest.mark.parametrize("name", [*enreach.EVENT_TYPES, "EnreachEvent"])
def test_every_event_class_has_every_spec_property(spec: Facts, name: str) -> None:
    cls = events.EVENT_CLASSES.get(name, events.EnreachEvent)
    attributes = {f.name for f in dataclasses.fields(cls)}
    table = event_rows(spec, name) if name in {e["name"] for e in spec["events"]} else []
    for row in [*spec["common_properties"], *table]:
        assert enreach.attribute_name(row["name"]) in attributes, f"{name}.{row['name']}"
    instance = cls(event_type=name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        instance.id = None  # type: ignore[misc]


def test_every_nested_class_has_every_spec_property(spec: Facts) -> None:
    for nested in spec["nested_types"]:
        attributes = {f.name for f in dataclasses.fields(events.NESTED_CLASSES[nested["name"]])}
        assert {enreach.attribute_name(r["name"]) for r in nested["properties"]} <= attributes


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


# -- the extraction ------------------------------------------------------------------------


def render_document(facts: Facts) -> str:
    """A document in the provider's layout holding these facts, with prose the parser must skip."""

    def description(row: Row) -> str:
        values = row.get("enum_values", [])
        if not values:
            return "Id of related organization."
        if all("value" in v and "name" in v for v in values):
            return "Estimation " + " ".join(
                f"{v['name']} = {v['value']} : meaning." for v in values
            )
        if all("value" in v for v in values):
            return "Type identifier. " + " ".join(f"{v['value']} - some kind" for v in values)
        return "State, possible values: " + ", ".join(v["name"] for v in values)

    def table(rows: list[Row], first: str) -> list[str]:
        head = [f"| {first} | Value type | Description |", "|---|---|---|"]
        return head + [f"| {r['name']} | {r['type']} | {description(r)} |" for r in rows]

    def names(values: list[str]) -> list[str]:
        return ["| Type | Description |", "|---|---|", *(f"| {v} | Some type. |" for v in values)]

    lines = [
        "Introduction",
        "Webhooks send a HTTPS POST request whenever defined events occur.",
        "| Option | Description | Example value |",
        "|---|---|---|",
        "| Endpoint | Full URL to endpoint | https://my.integration.com/webhook/ |",
        "Common event properties",
        "All event types have a basic set of properties defined.",
        *table(facts["common_properties"], "Property"),
        "Root entity types",
        *names(facts["root_entity_types"]),
        "Entity types",
        *names(facts["entity_types"]),
    ]
    group = None
    for event in facts["events"]:
        if event["group"] != group:
            group = event["group"]
            lines.append(group)
        lines += [
            f"Event: {event['name']}",
            "Emitted when it happens.",
            *table(event["properties"], "Property name"),
        ]
    for nested in facts["nested_types"]:
        lines += [f"Misc: {nested['name']}", *table(nested["properties"], "Property name")]
    return "\n".join(lines) + "\n"


def test_extraction_reads_the_facts_of_the_provider_layout(spec: Facts) -> None:
    few = copy.deepcopy(spec)
    kept = ("UserAvailability", "UserCallInArrived", "QueueStatus", "CallbackChanged")
    few["events"] = [e for e in few["events"] if e["name"] in kept]
    few["nested_types"] = few["nested_types"][-1:]
    assert [e["name"] for e in few["events"]] == list(kept)
    assert extract.facts(extract.parse(render_document(few))) == few


def test_extraction_of_the_whole_layout_gives_the_committed_file(
    spec: Facts, tmp_path: Path
) -> None:
    document = tmp_path / "enreach-webhooks.txt"
    document.write_text(render_document(spec), encoding="utf-8")
    output = tmp_path / "enreach.json"
    assert extract.main([str(document), "--output", str(output)]) == 0
    assert output.read_bytes() == extract.FACTS.read_bytes()
    assert extract.main([str(document), "--check"]) == 0


def _open_status(facts: Facts) -> list[EnumValue]:
    queue_status = next(e for e in facts["events"] if e["name"] == "QueueStatus")
    return next(r for r in queue_status["properties"] if r["name"] == "OpenStatus")["enum_values"]


CHANGES: dict[str, Callable[[Facts], object]] = {
    "a type": lambda f: f["events"][0]["properties"][0].update({"type": "Guid?"}),
    "a row dropped": lambda f: f["events"][-1]["properties"].pop(),
    "an event's group": lambda f: f["events"][0].update({"group": "Queue"}),
    "an enumeration value": lambda f: _open_status(f)[0].update({"value": 9}),
    "a nested type dropped": lambda f: f["nested_types"].pop(),
    "an entity type added": lambda f: f["entity_types"].append("Team"),
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_check_exits_1_when_the_document_differs(
    spec: Facts,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: Callable[[Facts], object],
) -> None:
    changed = copy.deepcopy(spec)
    change(changed)
    document = tmp_path / "enreach-webhooks.txt"
    document.write_text(render_document(changed), encoding="utf-8")
    before = extract.FACTS.read_bytes()
    assert extract.main([str(document), "--check"]) == 1
    assert "differs" in capsys.readouterr().err
    assert extract.FACTS.read_bytes() == before


def test_extraction_without_a_document_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert extract.main([str(tmp_path / "missing.txt"), "--check"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: no document at {tmp_path / 'missing.txt'}"
    ]


def test_committed_facts_hold_no_description_text(spec: Facts) -> None:
    tables = [
        spec["common_properties"],
        *(e["properties"] for e in spec["events"]),
        *(n["properties"] for n in spec["nested_types"]),
    ]
    assert {key for rows in tables for row in rows for key in row} == {
        "name",
        "type",
        "enum_values",
    }

"""Enreach's JSON Schema and OpenAPI documents, made from its catalog, and the `schema` command.

Every provider's documents: test_catalog_schema_providers.py; the command as a process:
test_catalog_schema_cli.py.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from receiver.catalogs import enreach
from receiver.catalogs.samples import ENREACH_EVENT_TYPES, enreach_sample
from receiver.catalogs.schema import DIALECT, enreach_json_schema, enreach_openapi
from receiver.commands import schema as schema_command

SPEC_EXAMPLE = Path(__file__).parent / "payloads" / "enreach" / "spec-example-request.json"
Validator = jsonschema.Draft202012Validator


def validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    """A draft 2020-12 validator that also checks `format: uuid`."""
    Validator.check_schema(schema)
    return Validator(schema, format_checker=Validator.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def any_event() -> jsonschema.protocols.Validator:
    """Validates any documented event."""
    return validator(enreach_json_schema())


@pytest.mark.parametrize("event_type", ENREACH_EVENT_TYPES)
def test_every_sample_is_valid_against_its_schema_and_the_union(
    event_type: str, any_event: jsonschema.protocols.Validator
) -> None:
    own = validator(enreach_json_schema(event_type))
    for seed in range(5):
        sample = enreach_sample(event_type, seed=seed)
        own.validate(sample)
        any_event.validate(sample)


def test_spec_example_is_valid(any_event: jsonschema.protocols.Validator) -> None:
    example = orjson.loads(SPEC_EXAMPLE.read_bytes())
    validator(enreach_json_schema("QueueCallInUserAllocated")).validate(example)
    any_event.validate(example)


@pytest.mark.parametrize(
    ("event_type", "key", "value"),
    [
        ("QueueStatus", "NbrOfRequesters", "7"),
        ("QueueStatus", "QueueId", "not-a-guid"),
        ("QueueStatus", "Timestamp", "2018-01-01 08:01"),
        ("UserStatus", "Talking", 1),
        ("CallbackChanged", "CallbackAttempts", [{"Timestamp": 5}]),
        ("QueueStatus", "EventType", "UserStatus"),
    ],
)
def test_schema_rejects_wrong_values(event_type: str, key: str, value: object) -> None:
    sample = enreach_sample(event_type, seed=1, overrides={key: value})
    with pytest.raises(jsonschema.ValidationError):
        validator(enreach_json_schema(event_type)).validate(sample)


def test_schema_tolerates_unknown_properties_and_enum_values() -> None:
    sample = enreach_sample(
        "QueueStatus", seed=1, overrides={"EntityType": "Chat", "OpenStatus": 9, "New": [1]}
    )
    validator(enreach_json_schema("QueueStatus")).validate(sample)


def test_schema_documents_enumeration_members() -> None:
    schema = enreach_json_schema("QueueStatus")
    open_status = schema["$defs"]["OpenStatus"]["anyOf"]
    assert {"const": 5, "title": "Open", "description": "The queue is open."} in open_status
    assert schema["$schema"] == DIALECT
    assert schema["required"] == [p.name for p in enreach.COMMON_PROPERTIES]


def test_unknown_event_type_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="QueueCallInConnected"):
        enreach_json_schema("QueueCallInConnected")
    with pytest.raises(ValueError, match="QueueCallInConnected"):
        enreach_openapi("QueueCallInConnected")


def refs(node: object) -> Iterator[str]:
    """Every `$ref` in a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_openapi_document_has_a_webhook_per_event_type() -> None:
    document = enreach_openapi()

    assert document["openapi"] == "3.1.0"
    assert list(document["webhooks"]) == list(ENREACH_EVENT_TYPES)
    schemas = document["components"]["schemas"]
    for ref in refs(document):
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas
    post = document["webhooks"]["QueueStatus"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/QueueStatus"
    }
    assert post["parameters"][0]["name"] == "X-Benemen-Event"
    assert post["security"] == [{"benemenToken": []}]
    assert "benemenToken" in document["components"]["securitySchemes"]


def test_openapi_component_schemas_validate_samples() -> None:
    document = enreach_openapi()
    for event_type in ENREACH_EVENT_TYPES:
        schema = {
            "$schema": DIALECT,
            "$ref": f"#/components/schemas/{event_type}",
            "components": document["components"],
        }
        validator(schema).validate(enreach_sample(event_type, seed=3))


def test_openapi_for_one_event() -> None:
    document = enreach_openapi("UserStatus")
    assert list(document["webhooks"]) == ["UserStatus"]
    assert "QueueStatus" not in document["components"]["schemas"]


# -- the command ------------------------------------------------------------------------------


def run(*argv: str) -> int:
    """Parse `receiver schema ARGV` with the command's own parser and run it."""
    parser = argparse.ArgumentParser(prog="receiver")
    schema_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["schema", *argv])
    code: int = args.func(args)
    return code


def test_command_prints_the_enreach_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--provider", "enreach") == 0
    assert orjson.loads(capsys.readouterr().out) == enreach_json_schema()


def test_command_writes_openapi_for_one_event_to_a_file(tmp_path: Path) -> None:
    output = tmp_path / "enreach.json"
    assert (
        run(
            "--provider",
            "enreach",
            "--format",
            "openapi",
            "--event",
            "QueueStatus",
            "-o",
            str(output),
        )
        == 0
    )
    assert orjson.loads(output.read_bytes()) == enreach_openapi("QueueStatus")


def test_command_rejects_an_unknown_event(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--provider", "enreach", "--event", "NoSuchEvent") == 2
    captured = capsys.readouterr()
    assert "NoSuchEvent" in captured.err
    assert captured.out == ""

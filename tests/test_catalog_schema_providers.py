"""Every provider's JSON Schema and OpenAPI documents: valid documents, every sample valid.

The samples are the ones the mock sender sends (`receiver send`) and the call-flow scenarios
(`receiver scenario`) plan; a few wrong payloads must fail. Enreach's own details:
test_catalog_schema.py; the command as a process: test_catalog_schema_cli.py.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jsonschema
import openapi_spec_validator
import pytest

from handlers.buzzeasy import AbandonedConversation, OutboundCall, WorkItemClosed
from handlers.engage import AgentStateEvent, CallDetailsEvent, EndCallEvent
from receiver.catalogs.buzzeasy_samples import buzzeasy_sample
from receiver.catalogs.engage import normalized_name
from receiver.catalogs.engage_samples import web_service_sample, wfm_sample
from receiver.catalogs.model import snake_case
from receiver.catalogs.samples import enreach_sample
from receiver.catalogs.schema import DIALECT, PROVIDERS, json_schema, openapi
from receiver.catalogs.schema_enreach import ENREACH
from receiver.scenarios import ScenarioOptions, build_stream

Validator = jsonschema.Draft202012Validator
Sample = Callable[..., dict[str, Any]]

SAMPLES: dict[str, Sample] = {
    "enreach": enreach_sample,
    "engage-wfm": wfm_sample,
    # Every web service trigger sends the same kind of body; the sample is the default type's.
    "engage-web-services": lambda _type, **kw: web_service_sample(**kw),
    "buzzeasy": buzzeasy_sample,
}
"""What the sender sends for an event type of each provider (`seed=`, `overrides=`)."""

CASES = [(p, e) for p, spec in PROVIDERS.items() for e in spec.event_types]
ALL = json_schema()


def validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    """A checked draft 2020-12 validator that also checks formats (`uuid`)."""
    Validator.check_schema(schema)
    return Validator(schema, format_checker=Validator.FORMAT_CHECKER)


@functools.cache
def compiled(
    provider: str | None = None, event_type: str | None = None
) -> jsonschema.protocols.Validator:
    """A validator of `json_schema(provider, event_type)`, checked and built once."""
    return validator(json_schema(provider, event_type))


def within(document: dict[str, Any], ref: str) -> jsonschema.protocols.Validator:
    """A validator of the definition `ref` points at inside `document` (checked elsewhere)."""
    schema = {"$schema": DIALECT, "$ref": ref, **document}
    return Validator(schema, format_checker=Validator.FORMAT_CHECKER)


@pytest.mark.parametrize("provider", [None, *PROVIDERS])
def test_documents_are_valid(provider: str | None) -> None:
    openapi_spec_validator.validate(openapi(provider))
    Validator.check_schema(json_schema(provider))


@pytest.mark.parametrize(("provider", "event_type"), CASES)
def test_single_event_documents_are_valid(provider: str, event_type: str) -> None:
    document = openapi(provider, event_type)
    openapi_spec_validator.validate(document)
    assert list(document["webhooks"]) == [event_type]
    schema = json_schema(provider, event_type)
    Validator.check_schema(schema)
    assert schema["title"] == event_type
    # Without --provider, an event type found in one provider gives the same document.
    assert json_schema(None, event_type) == schema
    assert openapi(None, event_type) == document


@pytest.mark.parametrize(("provider", "event_type"), CASES)
def test_every_sample_is_valid_against_every_schema_of_its_type(
    provider: str, event_type: str
) -> None:
    schemas = [
        compiled(provider, event_type),
        compiled(provider),
        compiled(),
        within(ALL, f"#/$defs/{provider}.{event_type}"),
    ]
    for seed in range(8):
        sample = SAMPLES[provider](event_type, seed=seed)
        for schema in schemas:
            schema.validate(sample)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_openapi_request_bodies_validate_samples(provider: str) -> None:
    document = openapi()
    for name, item in document["webhooks"].items():
        if not name.startswith(provider + "."):
            continue
        event_type = name.removeprefix(provider + ".")
        content = item["post"]["requestBody"]["content"]
        assert "application/json" in content
        for media in ("application/json", "application/x-www-form-urlencoded"):
            if media in content:
                ref = content[media]["schema"]["$ref"]
                within(document, ref).validate(SAMPLES[provider](event_type, seed=2))
        for operation in item.values():
            assert set(operation["responses"]) == {"200"}
            assert "content" not in operation["responses"]["200"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_scenario_event_is_valid(provider: str) -> None:
    stream = build_stream(
        ScenarioOptions(provider=provider.replace("-", "_"), calls=25, seed=7, duplicate_ratio=0.1)
    )
    assert stream
    for request in stream:
        compiled(provider, request.event_type).validate(dict(request.payload))


def _without(payload: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != key}


WRONG = [
    ("enreach", "QueueStatus", "Id", None),
    ("enreach", "UserStatus", "EventType", None),
    ("engage-wfm", "AgentLogin", "agent_id", None),
    ("engage-wfm", "EndCall", "call_id", None),
    ("engage-wfm", "AgentState", "event_type", None),
    ("engage-wfm", "AgentState", None, {"agent_id": 1001}),
    ("engage-wfm", "AgentState", None, {"event_type": "LOGIN"}),
    ("engage-wfm", "AgentState", None, {"call_state": "ANSWERED"}),
    ("engage-wfm", "EndCall", None, {"call_start": "yesterday"}),
    ("engage-wfm", "AgentLogout", None, {"event_type": "LOGIN"}),
    ("engage-web-services", "CallDetails", None, {"agentId": 1001}),
    ("buzzeasy", "WorkItemClosed", "id", None),
    ("buzzeasy", "WorkItemClosed", None, {"isOutbound": "yes"}),
    ("buzzeasy", "WorkItemClosed", None, {"agent": ["Agent John"]}),
    ("buzzeasy", "OutboundCall", None, {"Timestamp": 1700000000}),
    ("buzzeasy", "AbandonedConversation", None, {"timeInQueue": [5]}),
]


@pytest.mark.parametrize(("provider", "event_type", "drop", "change"), WRONG)
def test_wrong_payloads_are_invalid(
    provider: str, event_type: str, drop: str | None, change: dict[str, Any] | None
) -> None:
    sample = SAMPLES[provider](event_type, seed=1, overrides=change)
    if drop is not None:
        assert drop in sample
        sample = _without(sample, drop)
    with pytest.raises(jsonschema.ValidationError):
        validator(json_schema(provider, event_type)).validate(sample)


def test_an_empty_web_service_body_is_invalid() -> None:
    with pytest.raises(jsonschema.ValidationError):
        validator(json_schema("engage-web-services", "AgentTermination")).validate({})


def test_every_provider_document_namespaces_its_definitions() -> None:
    definitions = ALL["$defs"]
    assert ALL["anyOf"] == [{"$ref": f"#/$defs/{name}"} for name in PROVIDERS]
    for name, spec in PROVIDERS.items():
        union = definitions[name]["oneOf" if spec.exclusive else "anyOf"]
        assert union == [{"$ref": f"#/$defs/{name}.{e}"} for e in spec.event_types]
    assert "enreach.QueueStatus" in definitions and "enreach.OpenStatus" in definitions
    assert "buzzeasy.Agent" in definitions
    for key in definitions:
        provider, _, rest = key.partition(".")
        assert provider in PROVIDERS and (rest or key == provider)
    document = openapi()
    assert len(document["webhooks"]) == len(CASES)
    assert "engage-wfm.EndCall" in document["webhooks"]
    assert set(document["components"]["schemas"]) == set(definitions) - set(PROVIDERS)


def test_an_event_type_of_two_providers_needs_a_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PROVIDERS, "copy", dataclasses.replace(ENREACH, name="copy"))
    with pytest.raises(ValueError, match="enreach, copy: choose with --provider"):
        json_schema(None, "QueueStatus")
    assert json_schema("copy", "QueueStatus") == json_schema("enreach", "QueueStatus")


def test_unknown_names_are_value_errors() -> None:
    with pytest.raises(ValueError, match="no provider has an event type 'Nope'"):
        openapi(None, "Nope")
    with pytest.raises(ValueError, match="not a documented Buzzeasy event type: 'QueueStatus'"):
        json_schema("buzzeasy", "QueueStatus")
    with pytest.raises(ValueError, match="unknown provider 'genesys'"):
        openapi("genesys")


def test_openapi_says_how_each_provider_authenticates_and_encodes() -> None:
    document = openapi()
    schemes = document["components"]["securitySchemes"]
    assert schemes["benemenToken"]["name"] == "X-Benemen-Token"
    assert schemes["buzzeasyApiKey"] == {**schemes["buzzeasyApiKey"], "in": "header"}
    assert schemes["buzzeasyApiKey"]["name"] == "x-api-key"
    assert schemes["engageHeader"]["name"] == "Authorization"
    assert schemes["engageBasic"]["scheme"] == "basic"
    hooks = document["webhooks"]
    assert hooks["buzzeasy.WorkItemClosed"]["post"]["security"] == [{"buzzeasyApiKey": []}]
    wfm = hooks["engage-wfm.AgentState"]
    assert wfm["post"]["security"] == [{"engageHeader": []}, {"engageBasic": []}]
    query = wfm["get"]["parameters"][0]
    assert (query["in"], query["style"], query["explode"]) == ("query", "form", True)
    assert query["schema"] == {"$ref": "#/components/schemas/engage-wfm.AgentState"}
    assert set(wfm["post"]["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
    }
    web = hooks["engage-web-services.AgentTermination"]["post"]["requestBody"]["content"]
    assert set(web) == {
        "application/json",
        "application/x-www-form-urlencoded",
        "application/xml",
        "text/plain",
    }


def _attributes(cls: type, *not_properties: str) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)} - set(not_properties)


def _properties(provider: str, event_type: str) -> set[str]:
    definitions = json_schema(provider)["$defs"]
    schema = definitions[event_type]
    while "$ref" in schema:
        schema = definitions[schema["$ref"].removeprefix("#/$defs/")]
    return set(schema["properties"])


@pytest.mark.parametrize(
    ("provider", "event_type", "cls", "not_properties"),
    [
        ("engage-wfm", "AgentState", AgentStateEvent, ("fields", "raw")),
        ("engage-wfm", "EndCall", EndCallEvent, ("fields", "raw")),
        ("engage-web-services", "CallDetails", CallDetailsEvent,
         ("event_type", "method", "fields", "extra", "raw")),
        ("buzzeasy", "WorkItemClosed", WorkItemClosed, ("event_type", "payload", "raw", "extra")),
        ("buzzeasy", "AbandonedConversation", AbandonedConversation,
         ("event_type", "payload", "raw", "extra")),
        ("buzzeasy", "OutboundCall", OutboundCall, ("event_type", "payload", "raw", "extra")),
    ],
)  # fmt: skip
def test_schemas_list_what_the_typed_classes_read(
    provider: str, event_type: str, cls: type, not_properties: tuple[str, ...]
) -> None:
    """The hand-written typed classes and the schemas must not drift apart."""
    typed = {normalized_name(a) for a in _attributes(cls, *not_properties)}
    listed = {normalized_name(snake_case(p)) for p in _properties(provider, event_type)}
    assert listed == typed

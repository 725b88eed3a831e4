"""The web services source and `WebServicesHandler` without a server."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from handlers import WebServicesHandler
from handlers.base import method_for
from receiver.auth import HeaderAuth, SecretSet
from receiver.exceptions import DecodeError
from receiver.inbox.models import NewEvent, State, StoredEvent
from receiver.sources.engage_web_services import EngageWebServicesSource, typed_names
from tests.support.e2e import load_payload

AUTH = HeaderAuth("Authorization", SecretSet(["x"]))


def source(body: str = "json", dedup_fields: tuple[str, ...] = ()) -> EngageWebServicesSource:
    return EngageWebServicesSource("ws", AUTH, body=body, dedup_fields=dedup_fields)


def stored(event: NewEvent) -> StoredEvent:
    return StoredEvent(
        1, event.source, event.dedup_key, event.event_type, event.order_key, event.payload,
        State.PENDING, 0, 0.0, 0.0, None, None,
    )  # fmt: skip


def test_whole_content_key_is_the_documented_hash_after_tags_become_null() -> None:
    body = orjson.dumps(load_payload("engage_web_services", "documented-template"))
    event = source().decode("POST", {}, b"", body)
    fields = dict.fromkeys(
        ("agentId", "agentUsername", "ani", "dnis", "callStart", "duration", "recordingUrl")
    )
    canonical = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
    assert event.dedup_key == "content:" + hashlib.sha256(canonical).hexdigest()
    assert event.order_key is None
    typed = WebServicesHandler().decode(stored(event))
    assert typed.agent_id is None
    assert typed.recording_url is None
    assert typed.fields["agentUsername"] is None


def test_dedup_fields_key_is_the_documented_hash() -> None:
    payload = load_payload("engage_web_services", "transfer-segment-1")
    event = source(dedup_fields=("uii", "agent_id", "agentUsername")).decode(
        "POST", {}, b"", orjson.dumps(payload)
    )
    values = [payload["uii"], payload["agentId"], payload["agentUsername"]]
    assert event.dedup_key == "fields:" + hashlib.sha256(orjson.dumps(values)).hexdigest()
    assert event.order_key == "call:" + payload["uii"]


def test_explicit_names_win_over_documented_ones() -> None:
    names = typed_names(["ani", "Caller", "call.agentId", "#x#"], {"caller": "ani"})
    assert names == {"ani": "Caller", "agent_id": "call.agentId"}


def test_xml_leaves_by_local_name_nested_and_namespaced() -> None:
    body = (
        b'<?xml version="1.0"?><e:call xmlns:e="urn:engage"><e:agent><e:agentId>7</e:agentId>'
        b"</e:agent><uii> 123 </uii><uii>456</uii><notes/></e:call>"
    )
    envelope = orjson.loads(source("xml").decode("POST", {}, b"", body).payload)
    assert envelope["fields"] == {"agentId": "7", "uii": "123", "notes": ""}


def test_nested_json_is_flattened_and_scalars_become_text() -> None:
    body = b'{"call": {"uii": 123, "agent": {"agentId": "#agent_id#"}}, "ok": true, "l": [1]}'
    event = source().decode("POST", {}, b"", body)
    envelope = orjson.loads(event.payload)
    assert envelope["fields"] == {
        "call.uii": "123",
        "call.agent.agentId": None,
        "ok": "true",
        "l.0": "1",
    }
    assert envelope["names"] == {"uii": "call.uii", "agent_id": "call.agent.agentId"}
    assert event.order_key == "call:123"


def test_a_text_body_is_kept_whole_with_url_parameters_typed() -> None:
    event = source("text").decode("POST", {}, b"uii=99", b"Agent #agent_id# ended call")
    typed = WebServicesHandler().decode(stored(event))
    assert typed.uii == "99"
    assert typed.extra == {"text": "Agent #agent_id# ended call"}


def test_a_bad_duration_is_a_decode_error_naming_the_field() -> None:
    event = source().decode("POST", {}, b"", b'{"uii": "1", "duration": "long"}')
    with pytest.raises(DecodeError, match="duration should be a duration") as raised:
        WebServicesHandler().decode(stored(event))
    assert raised.value.field == "duration"


@pytest.mark.parametrize(
    ("event_type", "method"),
    [
        ("AgentTermination", "on_agent_termination"),
        ("CallDetails", "on_call_details"),
        ("Post Disposition", "on_post_disposition"),
        ("my-custom_hook", "on_my_custom_hook"),
    ],
)
def test_method_names(event_type: str, method: str) -> None:
    assert method_for(event_type) == method
    assert WebServicesHandler().method_name(event_type) == method

"""The WFM source and `WfmHandler` without a server: keys, classification, typed values."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import orjson
import pytest

from handlers import WfmHandler
from handlers.engage import AgentState, AgentStateEvent, EndCallEvent, ValidationRequest
from receiver.auth import HeaderAuth, SecretSet
from receiver.exceptions import DecodeError
from receiver.inbox.models import NewEvent, State, StoredEvent
from receiver.sources.engage_wfm import EngageWfmSource
from tests.support.e2e import load_payload

AUTH = HeaderAuth("Authorization", SecretSet(["Basic x"]))
JSON = {b"content-type": b"application/json"}


def source(family: str = "both", zone: str = "Europe/Helsinki") -> EngageWfmSource:
    return EngageWfmSource("wfm", AUTH, family=family, time_zone=zone)


def stored(event: NewEvent) -> StoredEvent:
    return StoredEvent(
        1, event.source, event.dedup_key, event.event_type, event.order_key, event.payload,
        State.PENDING, 0, 0.0, 0.0, None, None,
    )  # fmt: skip


def decode_json(name: str, family: str = "both") -> NewEvent:
    return source(family).decode("POST", JSON, b"", orjson.dumps(load_payload("engage_wfm", name)))


def test_agent_fingerprint_is_the_documented_hash() -> None:
    payload = load_payload("engage_wfm", "login-pair-1")
    event = decode_json("login-pair-1")
    values = [
        payload["agent_id"],
        payload["event_type"],
        payload["event_aux_type"],
        payload["prev_state"],
        payload["prev_aux_state"],
        payload["date_time"],
        payload["duration"],
    ]
    assert event.dedup_key == "agent-state:" + hashlib.sha256(orjson.dumps(values)).hexdigest()
    assert event.order_key == "agent:482213"
    assert event.event_type == "AgentState"


def test_end_call_fingerprint_is_the_documented_hash() -> None:
    payload = load_payload("engage_wfm", "end-call-abandoned")
    event = decode_json("end-call-abandoned")
    values = [payload["call_id"], None, "ACD-CALL", "ABANDON", payload["call_start"]]
    assert event.dedup_key == "end-call:" + hashlib.sha256(orjson.dumps(values)).hexdigest()
    assert event.order_key == "call:100200300977"
    assert event.event_type == "EndCall"


def test_the_same_event_in_any_encoding_has_one_key() -> None:
    payload = load_payload("engage_wfm", "agent-engaged")
    query = urlencode({k: v or "" for k, v in payload.items()}).encode()
    keys = {
        source().decode("GET", {}, query, b"").dedup_key,
        source().decode("POST", {}, b"", query).dedup_key,
        source().decode("POST", JSON, b"", orjson.dumps(payload)).dedup_key,
    }
    assert len(keys) == 1


@pytest.mark.parametrize(
    ("name", "stored_type"),
    [
        ("agent-login", "AgentLogin"),
        ("agent-logout", "AgentLogout"),
        ("agent-custom-state", "AgentState"),
        ("end-call-outbound-machine", "EndCall"),
    ],
)
def test_stored_event_types(name: str, stored_type: str) -> None:
    assert decode_json(name).event_type == stored_type


def test_query_fields_and_body_fields_merge_with_the_body_winning() -> None:
    event = source().decode(
        "POST", JSON, b"agent_id=1&event_type=AWAY&tenant=acme", b'{"event_type": "LUNCH"}'
    )
    envelope = orjson.loads(event.payload)
    assert envelope["fields"] == {"agent_id": "1", "event_type": "LUNCH", "tenant": "acme"}
    assert envelope["encoding"] == "json"
    assert envelope["time_zone"] == "Europe/Helsinki"


def test_typed_events_and_their_zone() -> None:
    handler = WfmHandler()
    login = handler.decode(stored(decode_json("agent-login")))
    assert isinstance(login, AgentStateEvent)
    assert login.is_login
    assert login.date_time == datetime(2020, 6, 30, 19, 44, 1, tzinfo=ZoneInfo("Europe/Helsinki"))
    custom = handler.decode(stored(decode_json("agent-custom-state")))
    assert isinstance(custom, AgentStateEvent)
    assert custom.event_type == "COACHING"
    assert not custom.event_type.is_known
    assert custom.prev_state is AgentState.AVAILABLE
    call = handler.decode(stored(decode_json("end-call-answered")))
    assert isinstance(call, EndCallEvent)
    assert call.answered
    assert not call.is_outbound
    assert call.call_duration == 385


def test_a_validation_request_is_stored_with_its_token() -> None:
    event = source().decode("POST", {b"validation-token": b"tok-1"}, b"", b"")
    assert event.event_type == "Validation"
    assert event.dedup_key == "validation:" + hashlib.sha256(b"tok-1").hexdigest()
    typed = WfmHandler().decode(stored(event))
    assert typed == ValidationRequest(validation_token="tok-1")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("date_time", "yesterday", "date_time should be a date and time"),
        ("pending_disp", "maybe", "pending_disp should be true or false"),
    ],
)
def test_a_value_of_the_wrong_form_is_a_decode_error_naming_the_field(
    field: str, value: str, expected: str
) -> None:
    payload = {**load_payload("engage_wfm", "agent-engaged"), field: value}
    event = source().decode("POST", JSON, b"", orjson.dumps(payload))
    with pytest.raises(DecodeError, match=expected) as raised:
        WfmHandler().decode(stored(event))
    assert raised.value.field == field


def test_call_duration_may_be_a_clock() -> None:
    payload = {**load_payload("engage_wfm", "end-call-answered"), "call_duration": "01:02:03"}
    event = source().decode("POST", JSON, b"", orjson.dumps(payload))
    typed = WfmHandler().decode(stored(event))
    assert isinstance(typed, EndCallEvent)
    assert typed.call_duration == 3723


def test_unoverridden_methods_reach_on_any_and_the_decorator_form_works() -> None:
    seen: list[str] = []

    class OnlyCalls(WfmHandler):
        async def on_end_call(self, event: EndCallEvent) -> None:
            seen.append("end_call")

        async def on_any(self, event: object) -> None:
            seen.append("any")

    handler = OnlyCalls()
    asyncio.run(handler.handle(stored(decode_json("end-call-answered"))))
    asyncio.run(handler.handle(stored(decode_json("agent-logout"))))
    assert seen == ["end_call", "any"]

    app = WfmHandler()

    @app.on("AgentLogin")
    async def login(event: AgentStateEvent) -> None:
        seen.append(f"login {event.agent_id}")

    asyncio.run(app.handle(stored(decode_json("agent-login"))))
    assert seen[-1] == "login 482213"


def test_a_sloppy_query_string_is_read_but_a_sloppy_form_body_is_refused() -> None:
    event = source().decode("GET", {}, b"debug&agent_id=5&&event_type=AWAY&", b"")
    assert orjson.loads(event.payload)["fields"] == {
        "debug": "",
        "agent_id": "5",
        "event_type": "AWAY",
    }
    with pytest.raises(DecodeError, match="URL-encoded"):
        source().decode("POST", {}, b"", b"debug&agent_id=5")

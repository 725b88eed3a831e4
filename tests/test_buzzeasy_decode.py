"""The Buzzeasy source and `BuzzeasyHandler` without a server."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from handlers.buzzeasy import (
    AbandonedConversation,
    BuzzeasyHandler,
    OutboundCall,
    WorkItemClosed,
    decode_buzzeasy,
)
from receiver.auth import HeaderAuth, SecretSet
from receiver.catalogs.buzzeasy import canonical_event_type, url_slug
from receiver.exceptions import DecodeError
from receiver.sources.buzzeasy import BuzzeasySource
from tests.support.e2e import load_payload

AUTH = HeaderAuth("x-api-key", SecretSet(["k"]))


def test_the_published_example_decodes_completely() -> None:
    payload = load_payload("buzzeasy", "work-item-closed")
    event = decode_buzzeasy(payload, b"", "WorkItemClosed")
    assert isinstance(event, WorkItemClosed)
    assert event.id == "ff34b1fb68cd4f7f9921e70c08fab7a7"
    assert event.created_at == datetime(2022, 3, 8, 7, 39, 47, 605245, tzinfo=UTC)
    assert event.agent is not None
    assert event.agent.phone == "+123456789"
    assert event.extra == {}


def test_keys_id_else_fingerprint_of_canonical_json() -> None:
    source = BuzzeasySource("b", AUTH, event_type="OutboundCall")
    body = b'{"agentID": "A1", "targetPhoneNumber": "+44", "Timestamp": "2022-03-08T09:01:15Z"}'
    event = source.decode("POST", {}, b"", body)
    canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    assert event.dedup_key == "sha256:" + hashlib.sha256(canonical).hexdigest()
    assert event.order_key == "agent:a1"
    assert event.payload == body
    with_id = source.decode("POST", {}, b"", b'{"ID": "AbC", "x": 1}')
    assert with_id.dedup_key == "AbC"  # an id that is not a GUID is kept exactly


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (95, timedelta(seconds=95)),
        (12.5, timedelta(seconds=12.5)),
        ("95", timedelta(seconds=95)),
        ("00:02:05.5000000", timedelta(minutes=2, seconds=5.5)),
        ("1.02:00:00", timedelta(days=1, hours=2)),
    ],
)
def test_time_in_queue_forms(value: object, expected: timedelta) -> None:
    event = decode_buzzeasy({"timeInQueue": value}, b"", "Abandoned Conversation")
    assert isinstance(event, AbandonedConversation)
    assert event.time_in_queue == expected


@pytest.mark.parametrize(
    ("event_type", "payload", "field"),
    [
        ("WorkItemClosed", {"isOutbound": "yes"}, "isOutbound"),
        ("WorkItemClosed", {"createdAt": "yesterday"}, "createdAt"),
        ("WorkItemClosed", {"agent": {"name": ["x"]}}, "agent.name"),
        ("AbandonedConversation", {"timeInQueue": "a while"}, "timeInQueue"),
        ("AbandonedConversation", {"timeInQueue": float("inf")}, "timeInQueue"),
        ("OutboundCall", {"targetPhoneNumber": {"n": 1}}, "targetPhoneNumber"),
    ],
)
def test_a_value_of_the_wrong_type_names_the_field(
    event_type: str, payload: dict[str, object], field: str
) -> None:
    with pytest.raises(DecodeError, match=event_type) as raised:
        decode_buzzeasy(payload, b"", event_type)
    assert raised.value.field == field


def test_names_are_matched_ignoring_case_and_underscores() -> None:
    event = decode_buzzeasy(
        load_payload("buzzeasy", "outbound-call-other-casing"), b"", "OutboundCall"
    )
    assert isinstance(event, OutboundCall)
    assert event.agent_id == "638858857ff57ad8637a7528"
    assert event.target_phone_number == "+447700900790"


def test_hook_names_and_slugs() -> None:
    assert canonical_event_type("abandoned conversation") == "AbandonedConversation"
    assert canonical_event_type("Callback Requested") == "Callback Requested"
    assert url_slug("Outbound Call") == "outbound-call"
    handler = BuzzeasyHandler()
    assert handler.method_name("Abandoned Conversation") == "on_abandoned_conversation"
    assert handler.method_name("WorkItemClosed") == "on_work_item_closed"

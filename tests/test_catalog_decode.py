"""Decoding Enreach payloads into typed events: faithful values, forgiving names, clear errors."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.enreach import (
    Availability,
    CallbackAttempt,
    CallbackChanged,
    CallbackExtra,
    CallbackRelatedItem,
    CallbackType,
    EnreachEvent,
    EntityType,
    OpenStatus,
    QueueAttachedUser,
    QueueAttachedUsers,
    QueueCallInUserAllocated,
    QueueStatus,
    UserAvailability,
    UserSupervisionStatus,
    decode,
    is_continuous,
)
from handlers.enreach.events import EVENT_CLASSES, NESTED_CLASSES
from receiver.catalogs import enreach
from receiver.catalogs.model import Property
from receiver.catalogs.samples import ENREACH_EVENT_TYPES, enreach_sample
from receiver.exceptions import DecodeError

PAYLOADS = Path(__file__).parent / "payloads" / "enreach"
_DATETIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,7}))?")
_NESTED = {nested.name: nested for nested in enreach.NESTED_TYPES}


def load(name: str) -> tuple[dict[str, Any], bytes]:
    """A payload fixture, decoded and raw."""
    raw = (PAYLOADS / name).read_bytes()
    payload: dict[str, Any] = orjson.loads(raw)
    return payload, raw


def decode_payload(payload: dict[str, Any], event_type: str | None = None) -> EnreachEvent:
    """Decode `payload` the way the handler does: from its JSON bytes."""
    raw = orjson.dumps(payload)
    return decode(orjson.loads(raw), raw, event_type)


def expected_datetime(text: str) -> datetime:
    """Independent of the decoder: 7 fractional digits truncated to Python's 6."""
    match = _DATETIME.fullmatch(text)
    assert match, text
    year, month, day, hour, minute, second = map(int, match.groups()[:6])
    micro = int((match.group(7) or "0")[:6].ljust(6, "0"))
    return datetime(year, month, day, hour, minute, second, micro)


def assert_value(prop: Property, decoded: Any, sent: Any) -> None:
    """`decoded` is what `sent` means for a property of the catalog's type."""
    if sent is None:
        assert decoded is None
        return
    item = prop.item_type
    base = prop.base_type
    if item is not None:
        nested = _NESTED[item]
        assert isinstance(decoded, tuple)
        assert len(decoded) == len(sent)
        for record, sent_record in zip(decoded, sent, strict=True):
            assert isinstance(record, NESTED_CLASSES[item])
            for nested_prop in nested.properties:
                value = getattr(record, nested_prop.attribute)
                assert_value(nested_prop, value, sent_record.get(nested_prop.name))
    elif base == "Guid":
        assert decoded == uuid.UUID(sent)
    elif base == "DateTime":
        assert decoded == expected_datetime(sent)
    else:
        assert decoded == sent
        assert type(sent)(decoded) == sent


# -- samples and the spec's example -------------------------------------------------------


@pytest.mark.parametrize("event_type", ENREACH_EVENT_TYPES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_sample_decodes_into_its_class_with_every_value(event_type: str, seed: int) -> None:
    payload = enreach_sample(event_type, seed=seed)
    raw = orjson.dumps(payload)
    event = decode(orjson.loads(raw), raw, event_type)

    assert type(event) is EVENT_CLASSES[event_type]
    assert event.event_type == event_type
    assert event.raw is raw
    assert event.payload == payload
    assert event.extra == {}
    by_lower = {key.lower(): value for key, value in payload.items()}
    event_props = next(e for e in enreach.EVENTS if e.name == event_type).properties
    for prop in (*enreach.COMMON_PROPERTIES, *event_props):
        assert_value(prop, getattr(event, prop.attribute), by_lower[prop.name.lower()])


def test_spec_example_request_decodes() -> None:
    payload, raw = load("spec-example-request.json")
    event = decode(payload, raw, "QueueCallInUserAllocated")

    assert isinstance(event, QueueCallInUserAllocated)
    assert event.user_name == "sample.agent@customer.com"
    assert event.id == uuid.UUID("85b214f2-1d27-4262-87b6-8f55b3199400")
    assert event.timestamp == datetime(2018, 1, 1, 8, 1, 23, 450000)
    assert event.root_entity_type == "Organization"
    assert event.entity_type is EntityType.QUEUE
    assert event.entity_id == event.queue_id
    assert event.queue_name == "Sample queue 1"
    assert event.caller_number == "+358501231234"
    assert event.leg_id is None
    assert event.extra == {}


def test_event_type_comes_from_the_body_without_a_header() -> None:
    payload, raw = load("spec-example-request.json")
    assert isinstance(decode(payload, raw), QueueCallInUserAllocated)


def test_header_event_type_matches_case_insensitively() -> None:
    payload, raw = load("spec-example-request.json")
    event = decode(payload, raw, "queuecallinuserallocated")
    assert isinstance(event, QueueCallInUserAllocated)
    assert event.event_type == "QueueCallInUserAllocated"


# -- forgiving decoding ----------------------------------------------------------------------


@pytest.mark.parametrize("rename", [str.lower, str.upper, str.swapcase], ids=lambda f: f.__name__)
def test_property_names_match_case_insensitively(rename: Any) -> None:
    def renamed(value: Any) -> Any:
        if isinstance(value, dict):
            return {rename(key): renamed(item) for key, item in value.items()}
        if isinstance(value, list):
            return [renamed(item) for item in value]
        return value

    payload = enreach_sample("CallbackChanged", seed=7)
    payload["CallbackAttempts"] = enreach_sample("CallbackChanged", seed=8)["CallbackAttempts"]
    assert payload["CallbackAttempts"]

    event = decode_payload(renamed(payload))

    assert event == decode_payload(payload)
    assert event.extra == {}
    assert isinstance(event, CallbackChanged)
    assert event.callback_attempts
    assert all(attempt.extra == {} for attempt in event.callback_attempts)


def test_unknown_properties_are_kept_in_extra() -> None:
    payload = enreach_sample("QueueStatus", seed=1)
    payload["NbrOfCallbacks"] = 4
    payload["Region"] = {"Name": "Uusimaa", "Codes": [1, 2]}

    event = decode_payload(payload)

    assert isinstance(event, QueueStatus)
    assert event.extra == {"NbrOfCallbacks": 4, "Region": {"Name": "Uusimaa", "Codes": [1, 2]}}
    assert event.payload["NbrOfCallbacks"] == 4


def test_missing_and_null_properties_become_none() -> None:
    event = decode_payload({"Id": str(uuid.uuid4()), "QueueName": None}, "QueueStatus")

    assert isinstance(event, QueueStatus)
    assert event.queue_name is None
    assert event.queue_id is None
    assert event.open_status is None
    assert event.timestamp is None
    assert event.entity_type is None
    assert event.extra == {}


def test_an_empty_object_without_a_type_decodes_to_the_base_event() -> None:
    event = decode_payload({})
    assert type(event) is EnreachEvent
    assert event.event_type == ""


def test_undocumented_event_type_decodes_to_the_base_event_with_extras() -> None:
    payload = enreach_sample("QueueCallInArrived", seed=1)
    payload["EventType"] = "QueueCallInConnected"

    event = decode_payload(payload, "QueueCallInConnected")

    assert type(event) is EnreachEvent
    assert event.event_type == "QueueCallInConnected"
    assert event.entity_type is EntityType.QUEUE
    assert event.extra["QueueName"] == payload["QueueName"]
    assert "Id" not in event.extra


@pytest.mark.parametrize(
    ("event_type", "key", "sent", "attribute"),
    [
        ("QueueStatus", "EntityType", "Chat", "entity_type"),
        ("QueueStatus", "RootEntityType", "Reseller", "root_entity_type"),
        ("QueueStatus", "OpenStatus", 9, "open_status"),
        ("UserAvailability", "Availability", "OnHoliday", "availability"),
        ("CallbackChanged", "TypeId", 4, "type_id"),
    ],
)
def test_undocumented_enum_values_are_kept(
    event_type: str, key: str, sent: object, attribute: str
) -> None:
    payload = enreach_sample(event_type, seed=1)
    payload[key] = sent

    value = getattr(decode_payload(payload), attribute)

    assert value == sent
    assert not value.is_known
    assert str(sent) in repr(value)


def test_enums_refuse_values_of_the_wrong_json_type() -> None:
    # The wrong argument types are the point of this test.
    with pytest.raises(ValueError):
        EntityType(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        OpenStatus("5")  # type: ignore[arg-type]


def test_documented_enum_values_match_case_insensitively() -> None:
    payload = enreach_sample("UserAvailability", seed=1)
    payload |= {"EntityType": "user", "Availability": "DONOTDISTURB"}

    event = decode_payload(payload)

    assert isinstance(event, UserAvailability)
    assert event.entity_type is EntityType.USER
    assert event.availability is Availability.DO_NOT_DISTURB
    assert event.availability.is_known


def test_enum_values_have_python_types() -> None:
    payload = enreach_sample("QueueStatus", seed=1, overrides={"OpenStatus": 5})
    event = decode_payload(payload)
    assert isinstance(event, QueueStatus)
    assert event.open_status is OpenStatus.OPEN

    changed = decode_payload(enreach_sample("CallbackChanged", seed=1, overrides={"TypeId": 1}))
    assert isinstance(changed, CallbackChanged)
    assert changed.type_id is CallbackType.EXPLICIT_REQUEST


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2018-01-01T08:01:23.45", datetime(2018, 1, 1, 8, 1, 23, 450000)),
        ("2018-01-01T08:01:23.1234567", datetime(2018, 1, 1, 8, 1, 23, 123456)),
        ("2018-01-01T08:01:23.9999999", datetime(2018, 1, 1, 8, 1, 23, 999999)),
        ("2018-01-01T08:01:23.1", datetime(2018, 1, 1, 8, 1, 23, 100000)),
        ("2018-01-01T08:01:23", datetime(2018, 1, 1, 8, 1, 23)),
        ("2018-01-01T08:01:23.1234567Z", datetime(2018, 1, 1, 8, 1, 23, 123456, UTC)),
        (
            "2018-01-01T08:01:23.5+02:00",
            datetime(2018, 1, 1, 8, 1, 23, 500000, timezone(timedelta(hours=2))),
        ),
    ],
)
def test_timestamps_with_up_to_seven_fraction_digits(text: str, expected: datetime) -> None:
    event = decode_payload({"EventType": "QueueStatus", "Timestamp": text})
    assert event.timestamp == expected
    assert event.timestamp is not None
    assert event.timestamp.tzinfo == expected.tzinfo


@pytest.mark.parametrize("end", ["9999-12-31T23:59:59.9999999", "9999-12-31T23:59:59.9999999Z"])
def test_datetime_max_value_means_continuous(end: str) -> None:
    payload = enreach_sample("UserAvailability", seed=1, overrides={"EndTime": end})

    event = decode_payload(payload)

    assert isinstance(event, UserAvailability)
    assert event.end_time is not None
    assert event.end_time.replace(tzinfo=None) == datetime.max
    assert event.is_continuous
    assert is_continuous(event.end_time)


def test_an_ordinary_end_time_is_not_continuous() -> None:
    payload = enreach_sample(
        "UserAvailability", seed=1, overrides={"EndTime": "2025-03-12T17:00:00.5"}
    )
    event = decode_payload(payload)
    assert isinstance(event, UserAvailability)
    assert event.end_time == datetime(2025, 3, 12, 17, 0, 0, 500000)
    assert not event.is_continuous
    assert not UserAvailability().is_continuous


def test_callback_changed_nested_lists() -> None:
    payload, raw = load("callback_changed.json")

    event = decode(payload, raw, "CallbackChanged")

    assert isinstance(event, CallbackChanged)
    assert event.callback_id == uuid.UUID("5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f")
    assert event.callback_attempts == (
        CallbackAttempt(
            callback_attempt_type_id=2,
            id=uuid.UUID("0d1e2f3a-4b5c-4d6e-8f7a-8b9c0d1e2f3a"),
            note="Ei vastannut",
            timestamp=datetime(2025, 3, 12, 10, 15, 42, 123456),
            user_id=uuid.UUID("6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d"),
        ),
        CallbackAttempt(id=uuid.UUID("1e2f3a4b-5c6d-4e7f-9a8b-9c0d1e2f3a4b"), note=""),
    )
    assert event.callback_attempts[1].extra == {"Channel": "Voice"}
    assert event.callback_extras == (
        CallbackExtra(id=1, name="Asiakasnumero", value="204518"),
        CallbackExtra(id=2, name="Kieli", value="fi"),
    )
    assert event.callback_related_items == (
        CallbackRelatedItem(
            id=uuid.UUID("7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a0b"),
            is_closed=True,
            list_id=event.call_list_id,
            status_id=3,
        ),
        CallbackRelatedItem(id=uuid.UUID("8f9a0b1c-2d3e-4f4a-9b5c-6d7e8f9a0b1c"), is_closed=False),
    )
    assert event.classification_id is None
    assert event.type_id is CallbackType.OVERFLOWN_CALL
    assert event.creation_time == datetime(2025, 3, 12, 9, 58, 3, 500000)


def test_queue_attached_users_nested_list() -> None:
    payload, raw = load("queue_attached_users.json")

    event = decode(payload, raw, "QueueAttachedUsers")

    assert isinstance(event, QueueAttachedUsers)
    assert event.attached_users is not None
    assert [user.priority for user in event.attached_users] == [1, 3, 2]
    assert event.attached_users[0] == QueueAttachedUser(
        active=True, priority=1, user_id=uuid.UUID("b4df099e-70dc-4ff5-b4ea-c2c3547d97fb")
    )
    assert [user.active for user in event.attached_users] == [True, False, True]


def test_events_are_immutable_and_hashable() -> None:
    payload, raw = load("queue_attached_users.json")
    event = decode(payload, raw, "QueueAttachedUsers")
    assert isinstance(event, QueueAttachedUsers)
    assert hash(event) == hash(decode(payload, raw, "QueueAttachedUsers"))
    with pytest.raises(AttributeError):
        event.queue_id = None  # type: ignore[misc]
    with pytest.raises(TypeError):
        event.extra["x"] = 1  # type: ignore[index]


# -- wrong types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "key", "sent", "field"),
    [
        ("QueueStatus", "NbrOfRequesters", "7", "NbrOfRequesters"),
        ("QueueStatus", "NbrOfRequesters", True, "NbrOfRequesters"),
        ("QueueStatus", "NbrOfRequesters", 2.5, "NbrOfRequesters"),
        ("QueueStatus", "NbrOfRequesters", 2**31, "NbrOfRequesters"),
        ("QueueStatus", "OpenStatus", "Open", "OpenStatus"),
        ("QueueStatus", "EntityType", 2, "EntityType"),
        ("UserStatus", "Talking", "yes", "Talking"),
        ("UserStatus", "Talking", 1, "Talking"),
        ("UserStatus", "WrapUpEnd", "tomorrow", "WrapUpEnd"),
        ("QueueCallInArrived", "CallId", "not-a-guid", "CallId"),
        ("QueueCallInArrived", "callid", 12345, "callid"),
        ("QueueCallInArrived", "Timestamp", 1514793683, "Timestamp"),
        ("QueueCallInArrived", "CallerNumber", 358501231234, "CallerNumber"),
        ("QueueCallInArrived", "EventType", ["QueueCallInArrived"], "EventType"),
        ("CallbackChanged", "TypeId", 40000, "TypeId"),
        ("CallbackChanged", "CallbackAttempts", {}, "CallbackAttempts"),
        ("CallbackChanged", "CallbackAttempts", [1], "CallbackAttempts[0]"),
        (
            "CallbackChanged",
            "CallbackAttempts",
            [{"Timestamp": 5}],
            "CallbackAttempts[0].Timestamp",
        ),
        ("UserSupervisionStatus", "State", 1.5, "State"),
    ],
)
def test_wrong_value_type_names_event_and_property(
    event_type: str, key: str, sent: object, field: str
) -> None:
    payload = enreach_sample(event_type, seed=1)
    payload[key] = sent

    with pytest.raises(DecodeError) as caught:
        decode_payload(payload, event_type)

    assert caught.value.event_id == payload["Id"]
    assert caught.value.field == field
    assert payload["Id"] in str(caught.value)
    assert field in str(caught.value)


def test_wrong_id_type_is_reported_without_an_event_id() -> None:
    with pytest.raises(DecodeError) as caught:
        decode_payload({"Id": 42, "EventType": "QueueStatus"})
    assert caught.value.event_id is None
    assert caught.value.field == "Id"


@pytest.mark.parametrize("payload", [[], "text", 3, None])
def test_a_payload_that_is_not_an_object_is_a_decode_error(payload: Any) -> None:
    with pytest.raises(DecodeError, match="not an object"):
        decode(payload, orjson.dumps(payload))


def test_supervision_state_has_no_published_values_and_is_kept_as_text() -> None:
    for sent, kept in [("Listening", "Listening"), (2, "2")]:
        payload = enreach_sample("UserSupervisionStatus", seed=1, overrides={"State": sent})
        event = decode_payload(payload)
        assert isinstance(event, UserSupervisionStatus)
        assert event.state == kept


# -- property test --------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
_NAMES = sorted(
    {p.name for e in enreach.EVENTS for p in e.properties}
    | {p.name for n in enreach.NESTED_TYPES for p in n.properties}
    | {p.name for p in enreach.COMMON_PROPERTIES}
)
_VALUES = _JSON | st.sampled_from(
    ["Queue", "2018-01-01T08:01:23.45", "9999-12-31T23:59:59.9999999", str(uuid.UUID(int=7))]
)
_KEYS = st.sampled_from(_NAMES) | st.sampled_from(_NAMES).map(str.lower) | st.text(max_size=8)
_OBJECTS = st.dictionaries(
    _KEYS,
    _VALUES | st.lists(st.dictionaries(_KEYS, _VALUES, max_size=5), max_size=3),
    max_size=12,
)


@settings(max_examples=400, deadline=None, database=None)
@given(
    payload=_OBJECTS,
    event_type=st.sampled_from([*ENREACH_EVENT_TYPES, None, "SomethingNew"]),
)
def test_arbitrary_json_objects_never_crash_decoding(
    payload: dict[str, Any], event_type: str | None
) -> None:
    try:
        event = decode(payload, b"", event_type)
    except DecodeError as exc:
        assert exc.field is not None
    else:
        assert isinstance(event, EnreachEvent)
        assert set(event.extra) <= set(payload)


@settings(max_examples=100, deadline=None, database=None)
@given(event_type=st.sampled_from(ENREACH_EVENT_TYPES), key=st.sampled_from(_NAMES), value=_JSON)
def test_any_value_in_a_sample_decodes_or_is_reported(
    event_type: str, key: str, value: object
) -> None:
    payload = enreach_sample(event_type, seed=0, overrides={key: value})
    try:
        decode(payload, b"", event_type)
    except DecodeError as exc:
        sent_id = payload["Id"]
        assert exc.event_id == (sent_id if isinstance(sent_id, str) else None)
        assert exc.field is not None
        # The override may also have moved EntityId/RootEntityId (see enreach_sample).
        reported = re.split(r"[\[.]", exc.field)[0]
        assert payload[reported] == value

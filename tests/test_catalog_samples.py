"""Sample payloads look like what Enreach sends, agree with themselves, and repeat by seed."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import pytest

from receiver.catalogs import enreach, samples
from receiver.catalogs.model import Event, Property
from receiver.catalogs.samples import ENREACH_EVENT_TYPES, dotnet_datetime, enreach_sample

_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?")
_FINNISH_E164 = re.compile(r"\+358\d{7,10}")
_EVENTS = {event.name: event for event in enreach.EVENTS}
_NUMBERS = {"CallerNumber", "TargetNumber", "QueueNumber", "UserNumber", "ContactNumber"}


def test_event_types_are_the_catalogs() -> None:
    assert ENREACH_EVENT_TYPES == enreach.EVENT_TYPES
    assert len(ENREACH_EVENT_TYPES) == 34


@pytest.mark.parametrize("event_type", ENREACH_EVENT_TYPES)
def test_sample_has_the_providers_shape(event_type: str) -> None:
    event = _EVENTS[event_type]
    sample = enreach_sample(event_type, seed=11)

    names = enreach.OBSERVED_NAMES.get(event_type, {})
    expected = [p.name for p in enreach.COMMON_PROPERTIES] + [
        names.get(p.name, p.name) for p in event.properties
    ]
    assert sorted(sample) == sorted(expected)
    assert sample["EventType"] == event_type
    assert sample["EntityType"] == event.entity
    assert sample["RootEntityType"] == "Organization"
    assert sample["RootEntityId"] == sample["OrganizationId"]
    assert sample["EntityId"] == sample[enreach.entity_key(event)]
    assert uuid.UUID(sample["Id"]).version == 4
    assert _TIMESTAMP.fullmatch(sample["Timestamp"])
    for name in _NUMBERS & set(sample):
        assert _FINNISH_E164.fullmatch(sample[name]), (name, sample[name])


def test_entity_id_follows_the_entity_group() -> None:
    queue = enreach_sample("QueueCallInArrived", seed=1)
    assert queue["EntityId"] == queue["QueueId"]
    user = enreach_sample("UserCallInArrived", seed=1)
    assert user["EntityId"] == user["UserId"]
    call_list = enreach_sample("CallbackChanged", seed=1)
    assert call_list["EntityId"] == call_list["CallListId"]


def test_the_spec_examples_casing_is_reproduced() -> None:
    sample = enreach_sample("QueueCallInUserAllocated", seed=1)
    assert "Username" in sample
    assert "UserName" not in sample


def test_same_seed_same_payload_and_no_seed_fresh_ids() -> None:
    assert enreach_sample("QueueStatus", seed=5) == enreach_sample("QueueStatus", seed=5)
    assert enreach_sample("QueueStatus", seed=5) != enreach_sample("QueueStatus", seed=6)
    ids = {enreach_sample("QueueStatus")["Id"] for _ in range(5)}
    assert len(ids) == 5


def test_overrides_replace_case_insensitively_and_add_new_names() -> None:
    sample = enreach_sample(
        "QueueStatus", seed=1, overrides={"queuename": "Myynti", "Region": "Uusimaa"}
    )
    assert sample["QueueName"] == "Myynti"
    assert "queuename" not in sample
    assert sample["Region"] == "Uusimaa"


def test_overriding_the_entity_id_moves_its_twin() -> None:
    queue = str(uuid.uuid4())
    sample = enreach_sample("QueueStatus", seed=1, overrides={"QueueId": queue})
    assert sample["EntityId"] == queue
    organization = str(uuid.uuid4())
    sample = enreach_sample("QueueStatus", seed=1, overrides={"RootEntityId": organization})
    assert sample["OrganizationId"] == organization


def test_overriding_both_twins_keeps_both() -> None:
    sample = enreach_sample("QueueStatus", seed=1, overrides={"QueueId": "a", "EntityId": "b"})
    assert (sample["QueueId"], sample["EntityId"]) == ("a", "b")


def test_unknown_event_type_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="QueueCallInConnected"):
        enreach_sample("QueueCallInConnected")


def test_nested_lists_are_filled() -> None:
    attached = enreach_sample("QueueAttachedUsers", seed=1)["AttachedUsers"]
    assert len(attached) >= 2
    assert all(set(user) == {"Active", "Priority", "UserId"} for user in attached)
    samples = [enreach_sample("CallbackChanged", seed=seed) for seed in range(20)]
    assert any(s["CallbackAttempts"] for s in samples)
    assert any(s["CallbackExtras"] for s in samples)
    assert any(s["CallbackRelatedItems"] for s in samples)


def test_continuous_availability_uses_datetime_max_value() -> None:
    ends = {enreach_sample("UserAvailability", seed=seed)["EndTime"] for seed in range(20)}
    assert "9999-12-31T23:59:59.9999999" in ends
    assert len(ends) > 1


@pytest.mark.parametrize(
    ("ticks", "text"),
    [
        (4_500_000, "2018-01-01T08:01:23.45"),
        (1_234_567, "2018-01-01T08:01:23.1234567"),
        (0, "2018-01-01T08:01:23"),
    ],
)
def test_dotnet_datetime_drops_trailing_zeros(ticks: int, text: str) -> None:
    assert dotnet_datetime(datetime(2018, 1, 1, 8, 1, 23), ticks) == text


def test_a_new_catalog_entry_gets_samples_without_further_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    types = ["Guid", "Guid?", "DateTime", "int", "long", "short", "bool", "string"]
    props = [Property(f"New{i}", t, "A new property.", f"new{i}") for i, t in enumerate(types)]
    props += [
        Property("QueueId", "Guid", "Id of the service queue.", "queue_id"),
        Property("Attempts", "List<CallbackAttempt>", "Some attempts.", "attempts"),
    ]
    event = Event("QueueCallInConnected", "Queue", "A call connected.", tuple(props))
    monkeypatch.setitem(samples._EVENTS, event.name, event)

    sample = enreach_sample("QueueCallInConnected", seed=1)

    assert sample["EntityId"] == sample["QueueId"]
    uuid.UUID(sample["New0"])
    uuid.UUID(sample["New1"])
    assert _TIMESTAMP.fullmatch(sample["New2"])
    assert [type(sample[f"New{i}"]) for i in range(3, 8)] == [int, int, int, bool, str]
    assert sample["Attempts"]
    assert set(sample["Attempts"][0]) == {
        "CallbackAttemptTypeId",
        "Id",
        "Note",
        "Timestamp",
        "UserId",
    }

"""Planning scenario streams: reproducible, consistent call flows, ratios that do what they say."""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from datetime import datetime

import pytest

from receiver.catalogs.samples import ENREACH_EVENT_TYPES, enreach_sample
from receiver.exceptions import ConfigError
from receiver.scenarios import FLOWS, PlannedRequest, ScenarioOptions, build_stream
from receiver.sender import EnreachWire

URL = "https://127.0.0.1:8443/enreach"

PHASES = {
    "inbound": [
        "QueueCallInComing",
        "QueueCallInArrived",
        "QueueCallInUserAllocated",
        "QueueCallInUserConnected",
        "QueueCallInDisconnected",
    ],
    "transfer": [
        "QueueCallInComing",
        "QueueCallInArrived",
        "QueueCallInUserAllocated",
        "QueueCallInUserConnected",
        "QueueCallInTransferStarted",
        "QueueCallInTransferConnected",
        "QueueCallInDisconnected",
    ],
    "overflow": [
        "QueueCallInComing",
        "QueueCallInArrived",
        "QueueCallInOverflow",
        "QueueCallInDisconnected",
        "CallbackChanged",
        "CallbackChanged",
        "CallbackChanged",
    ],
    "availability": [
        "UserAvailability",
        "QueueCallInComing",
        "QueueCallInArrived",
        "QueueCallInUserAllocated",
        "QueueCallInUserConnected",
        "UserWrapUpEnabled",
        "QueueCallInDisconnected",
        "UserWrapUpStarted",
        "UserWrapUpTerminated",
        "UserAvailability",
    ],
}
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?")


def by_flow(stream: list[PlannedRequest]) -> dict[int, list[PlannedRequest]]:
    flows: dict[int, list[PlannedRequest]] = defaultdict(list)
    for planned in stream:
        flows[planned.flow].append(planned)
    return flows


def genuine(stream: list[PlannedRequest]) -> list[PlannedRequest]:
    return [p for p in stream if not p.duplicate and not p.wrong_token]


def test_same_seed_gives_byte_identical_requests() -> None:
    options = ScenarioOptions(
        calls=30, seed=7, duplicate_ratio=0.2, out_of_order_ratio=0.2, wrong_token_ratio=0.2
    )
    wire = EnreachWire(secret="s")

    first = [wire.build(URL, p.payload) for p in build_stream(options)]
    second = [wire.build(URL, p.payload) for p in build_stream(options)]

    assert first == second
    assert [r.body for r in first] == [r.body for r in second]


def test_another_seed_gives_another_stream() -> None:
    first = build_stream(ScenarioOptions(calls=5, seed=1))
    second = build_stream(ScenarioOptions(calls=5, seed=2))

    assert {p.event_id for p in first}.isdisjoint(p.event_id for p in second)


def test_flow_names_are_spec_event_types() -> None:
    assert set(FLOWS) == set(PHASES)
    assert {t for phases in PHASES.values() for t in phases} <= set(ENREACH_EVENT_TYPES)


@pytest.mark.parametrize("kind", list(PHASES))
def test_a_flow_runs_its_phases_in_order(kind: str) -> None:
    stream = build_stream(ScenarioOptions(calls=6, flows=(kind,), seed=3))

    for events in by_flow(stream).values():
        assert [p.event_type for p in events] == PHASES[kind]
        stamps = [p.payload["Timestamp"] for p in events]
        assert all(TIMESTAMP.fullmatch(s) for s in stamps)
        assert stamps == sorted(stamps, key=datetime.fromisoformat)


@pytest.mark.parametrize("kind", list(PHASES))
def test_a_flow_talks_about_one_call_queue_agent_and_caller(kind: str) -> None:
    stream = build_stream(ScenarioOptions(calls=6, flows=(kind,), seed=4))

    for events in by_flow(stream).values():
        for field in ("CallId", "QueueId", "CallerNumber", "OrganizationId", "RootEntityId"):
            values = {p.payload[field] for p in events if p.payload.get(field) is not None}
            assert len(values) == 1, (field, values)
        users = {
            p.payload[key]
            for p in events
            for key in ("UserId", "AssignedUserId")
            if p.payload.get(key) is not None
        }
        assert len(users) <= 1
        assert {p.payload["OrganizationId"] for p in events} == {
            p.payload["RootEntityId"] for p in events
        }


def test_entity_ids_follow_the_entity_type() -> None:
    stream = build_stream(ScenarioOptions(calls=20, seed=5))
    key = {"Queue": "QueueId", "User": "UserId", "CallList": "CallListId"}

    for planned in stream:
        payload = planned.payload
        assert payload["EntityId"] == payload[key[payload["EntityType"]]]
        assert payload["EventType"] == planned.event_type


def test_payloads_carry_exactly_the_fields_of_the_catalog_sample() -> None:
    stream = build_stream(ScenarioOptions(calls=20, seed=6))

    for planned in stream:
        assert list(planned.payload) == list(enreach_sample(planned.event_type, seed=0))


def test_event_ids_are_unique_and_indices_count_up() -> None:
    stream = build_stream(ScenarioOptions(calls=40, seed=8))

    assert len({p.event_id for p in stream}) == len(stream)
    assert [p.index for p in stream] == list(range(len(stream)))


def test_calls_from_different_flows_interleave_by_time() -> None:
    stream = build_stream(ScenarioOptions(calls=20, seed=9))
    stamps = [datetime.fromisoformat(p.payload["Timestamp"]) for p in stream]

    assert stamps == sorted(stamps)
    assert len(by_flow(stream)) == 20
    assert [p.flow for p in stream] != sorted(p.flow for p in stream)


def test_no_ratios_means_no_extras() -> None:
    stream = build_stream(ScenarioOptions(calls=20, seed=10))

    assert not any(p.duplicate or p.wrong_token or p.out_of_order for p in stream)


def test_duplicate_ratio_one_sends_every_event_twice_in_a_row() -> None:
    stream = build_stream(ScenarioOptions(calls=5, seed=11, duplicate_ratio=1.0))

    originals, copies = stream[0::2], stream[1::2]
    assert not any(p.duplicate for p in originals)
    assert all(p.duplicate for p in copies)
    assert [p.payload for p in originals] == [p.payload for p in copies]
    assert [p.event_id for p in originals] == [p.event_id for p in copies]


def test_duplicate_ratio_is_the_share_of_events_sent_twice() -> None:
    stream = build_stream(ScenarioOptions(calls=300, seed=12, duplicate_ratio=0.25))
    share = sum(p.duplicate for p in stream) / len(genuine(stream))

    assert 0.21 < share < 0.29
    for planned in stream:
        if planned.duplicate:
            assert stream[planned.index - 1].event_id == planned.event_id


def test_wrong_token_ratio_puts_a_forged_copy_before_events() -> None:
    stream = build_stream(ScenarioOptions(calls=300, seed=13, wrong_token_ratio=0.2))
    forged = [p for p in stream if p.wrong_token]

    assert 0.16 < len(forged) / len(genuine(stream)) < 0.24
    for planned in forged:
        following = stream[planned.index + 1]
        assert not following.wrong_token
        assert following.payload == planned.payload


def test_out_of_order_ratio_one_swaps_the_first_pair_of_every_flow() -> None:
    stream = build_stream(ScenarioOptions(calls=10, seed=14, out_of_order_ratio=1.0))
    ordered = build_stream(ScenarioOptions(calls=10, seed=14))

    for flow, events in by_flow(stream).items():
        expected = [p.event_id for p in by_flow(ordered)[flow]]
        got = [p.event_id for p in events]
        assert got[:2] == [expected[1], expected[0]]
        assert sorted(got) == sorted(expected)
        assert events[0].out_of_order and events[1].out_of_order


def test_out_of_order_ratio_is_the_share_of_swapped_pairs() -> None:
    stream = build_stream(ScenarioOptions(calls=300, seed=15, out_of_order_ratio=0.2))
    swapped = descending = 0
    for events in by_flow(stream).values():
        stamps = [datetime.fromisoformat(p.payload["Timestamp"]) for p in events]
        descending += sum(a > b for a, b in itertools.pairwise(stamps))
        swapped += sum(p.out_of_order for p in events)
    pairs = sum(len(events) - 1 for events in by_flow(stream).values())

    assert swapped == 2 * descending  # each swap moves two events and leaves one step back
    assert 0.13 < descending / pairs < 0.22


def test_one_ratio_does_not_change_what_another_draws() -> None:
    plain = build_stream(ScenarioOptions(calls=30, seed=16, out_of_order_ratio=0.3))
    noisy = build_stream(
        ScenarioOptions(
            calls=30, seed=16, out_of_order_ratio=0.3, duplicate_ratio=0.5, wrong_token_ratio=0.5
        )
    )

    assert [p.payload for p in genuine(noisy)] == [p.payload for p in plain]


def test_flows_option_limits_the_kinds() -> None:
    stream = build_stream(ScenarioOptions(calls=10, flows=("overflow", "transfer"), seed=17))

    assert {p.flow_kind for p in stream} == {"overflow", "transfer"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"calls": 0}, "calls must be 1 or more"),
        ({"duplicate_ratio": 1.5}, "duplicate ratio must be between 0 and 1"),
        ({"wrong_token_ratio": -0.1}, "wrong token ratio must be between 0 and 1"),
        ({"flows": ("inbound", "voicemail")}, "unknown flow voicemail; valid flows: inbound"),
        ({"flows": ()}, "unknown flow"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        ScenarioOptions(**options)  # type: ignore[arg-type]

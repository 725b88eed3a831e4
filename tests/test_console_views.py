"""What the console's pages are made of: masking, filters from a query string, safe redirects,
an event's fields, rows grouped by event and counts by type and state."""

from __future__ import annotations

import dataclasses
import datetime as dt

import orjson
import pytest

from receiver.admin.console_query import Query, QueryError, local_path
from receiver.admin.console_views import Counts, Masker, event_rows, payload_fields, payload_text
from receiver.inbox.models import State, StoredEvent

NOW = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC).timestamp()


def test_secrets_are_masked_always_phone_numbers_and_addresses_unless_revealed() -> None:
    text = "token s3cr3t-tok for +358 40 123 4567, mail anna.virtanen@example.fi"
    masked = Masker(["s3cr3t-tok"])(text)
    assert "s3cr3t-tok" not in masked and "[secret]" in masked
    assert "123 4567" not in masked and "67" in masked
    assert "anna.virtanen@example.fi" not in masked
    shown = Masker(["s3cr3t-tok"], reveal=True)(text)
    assert "s3cr3t-tok" not in shown
    assert "+358 40 123 4567" in shown and "anna.virtanen@example.fi" in shown
    assert Masker([])(None) == ""


def test_filters_come_from_the_query_string_cut_and_stripped() -> None:
    query = Query.from_params({"call": "  ABC  ", "type": "x" * 500}, since="1h")
    assert query.call == "ABC" and len(query.type) == 200 and query.since == "1h"
    assert Query.from_params({"since": ""}, since="1h").since == ""  # cleared on purpose
    assert query.link("/events", call="") == "/events?type=" + "x" * 200 + "&since=1h"
    assert query.active and not Query(since="2h").active


def test_times_states_and_phone_numbers_become_an_inbox_filter() -> None:
    where = Query(since="15m", until="2026-11-30T08:55", state="dead", phone="+358 40 1").to_filter(
        now=NOW
    )
    assert where.since == NOW - 900
    assert where.until == NOW - 300
    assert where.states == (State.DEAD,) and where.phone == "+358 40 1"
    assert Query(since="2026-11-30T10:00+01:00").to_filter(now=NOW).since == NOW
    assert Query().to_filter(now=NOW).states == ()


@pytest.mark.parametrize(
    ("query", "said"),
    [
        (Query(since="yesterday"), "ISO 8601"),
        (Query(until="15x"), "ISO 8601"),
        (Query(state="lost"), "unknown state"),
        (Query(phone="call me"), "not a phone number"),
    ],
)
def test_a_filter_the_inbox_cannot_use_is_refused_with_a_reason(query: Query, said: str) -> None:
    with pytest.raises(QueryError, match=said):
        query.to_filter(now=NOW)


def test_a_call_id_is_tried_as_typed_in_lower_case_and_as_engage_writes_it() -> None:
    assert Query(call="9F2A-C1").call_keys() == ["9F2A-C1", "9f2a-c1", "call:9F2A-C1"]
    assert Query(call="call:77").call_keys() == ["call:77"]
    assert Query().call_keys() == [""]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/events/3?unmask=1", "/events/3?unmask=1"),
        ("/dead", "/dead"),
        (None, "/"),
        ("", "/"),
        ("https://elsewhere.example/", "/"),
        ("//elsewhere.example/x", "/"),
        ("/\\elsewhere.example", "/"),
        ("events", "/"),
        ("/events\r\nSet-Cookie: x=1", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_only_a_path_of_this_site_is_a_place_to_go_back_to(
    target: str | None, expected: str
) -> None:
    assert local_path(target) == expected


def test_an_events_fields_are_flattened_masked_and_explained() -> None:
    payload = orjson.dumps(
        {
            "CallerNumber": "+358401234567",
            "Agent": {"Email": "anna@example.fi", "Skills": ["fi", "sv"]},
            "Count": 3,
            "Empty": {},
        }
    )
    fields = payload_fields(payload, Masker([]), {"callernumber": "Number the call came from."})
    shown = {f.name: f.value for f in fields}
    assert list(shown) == [
        "CallerNumber",
        "Agent.Email",
        "Agent.Skills.0",
        "Agent.Skills.1",
        "Count",
        "Empty",
    ]
    assert shown["CallerNumber"] == "+**********67" and shown["Count"] == "3"
    assert "anna@example.fi" not in shown["Agent.Email"] and shown["Empty"] == "{}"
    assert fields[0].about == "Number the call came from."
    assert "+358401234567" in payload_text(payload, Masker([], reveal=True))
    assert payload_fields(b"not json", Masker([])) == []
    assert payload_text(b"not json \xff +358401234567", Masker([])).startswith("not json")


def delivery(event_id: int, subscriber: str, state: State, at: float) -> StoredEvent:
    """A listed delivery."""
    return StoredEvent(
        id=event_id,
        source="enreach",
        dedup_key=f"k{event_id}",
        event_type=f"Type{event_id}",
        order_key="call-1",
        payload=b"{}",
        state=state,
        attempts=2 if state is State.DEAD else 0,
        received_at=at,
        next_attempt_at=at,
        last_error="LookupError: no contact +358401234567\nTraceback ..." if state else None,
        finished_at=None,
        subscriber=subscriber,
    )


def test_deliveries_are_grouped_by_event_newest_first_or_in_call_order() -> None:
    listed = [
        delivery(2, "crm", State.DEAD, NOW + 1),
        delivery(2, "audit", State.DONE, NOW + 1),
        delivery(1, "audit", State.DONE, NOW),
        delivery(1, "crm", State.DONE, NOW),
    ]
    rows = event_rows(listed, Masker([]))
    assert [r.id for r in rows] == ["2", "1"]
    assert [d.subscriber for d in rows[0].deliveries] == ["audit", "crm"]
    assert rows[0].worst == "dead" and rows[1].worst == "done"
    assert rows[0].deliveries[1].error == "LookupError: no contact +**********67"
    assert [r.id for r in event_rows(listed, Masker([]), oldest_first=True)] == ["1", "2"]


def test_counts_have_a_row_per_type_and_the_states_that_occur() -> None:
    counts = Counts.of({("B", "done"): 2, ("A", "dead"): 1, ("A", "done"): 4, ("C", "pending"): 0})
    assert counts.states == ["done", "dead"]
    assert counts.rows == [("A", [4, 1], 5), ("B", [2, 0], 2)]
    assert counts.totals == [6, 1] and counts.total == 7
    assert Counts.of({("A", "pending"): 1}).states == ["pending", "done", "dead"]


def test_a_call_id_that_is_a_phone_number_is_shown_masked_and_linked_as_stored() -> None:
    listed = [dataclasses.replace(delivery(1, "crm", State.DONE, NOW), order_key="+4915112345678")]
    (row,) = event_rows(listed, Masker([]))
    assert (row.call, row.call_shown) == ("+4915112345678", "+***********78")
    (revealed,) = event_rows(listed, Masker([], reveal=True))
    assert revealed.call_shown == "+4915112345678"

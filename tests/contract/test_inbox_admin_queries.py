"""What the admin console and `receiver inbox tail` read, checked on every backend: the
request headers stored with an event, the phone filter, counts by type and state, and the
attempts that ended since a time (followed with a moving `since`)."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from receiver.exceptions import ConfigError
from receiver.inbox.base import FOLLOW_GRACE, Inbox, InboxAdmin, attempt_key
from receiver.inbox.models import (
    Attempt,
    Completion,
    EventFilter,
    NewEvent,
    State,
    StoredEvent,
    phone_digits,
)
from tests.contract.conftest import Store, event, failed, find, keys

HEADERS = [["host", "receiver.example"], ["user-agent", "Enreach/1.0"], ["x-benemen-event", "X"]]


def with_headers(key: str, headers: object, **fields: object) -> NewEvent:
    """`event(key)` with request headers stored as `NewEvent.headers` (JSON of `headers`)."""
    plain = event(key, **fields)  # type: ignore[arg-type]
    blob = None if headers is None else orjson.dumps(headers)
    return NewEvent(
        plain.source, plain.dedup_key, plain.event_type, plain.order_key, plain.payload, blob
    )


# -- headers ---------------------------------------------------------------------------------


def test_an_events_headers_are_kept_as_pairs_in_their_order(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        await inbox.append(with_headers("k1", HEADERS), ["a"])
        await inbox.append(with_headers("k2", None), ["a"])
        await inbox.append(with_headers("k3", [["a", "1"], ["a", "2"], ["é", "ü\n"]]), ["b"])
        admin = store.admin()
        assert find(admin, "k1").headers == tuple(tuple(pair) for pair in HEADERS)
        assert find(admin, "k2").headers == ()
        assert find(admin, "k3").headers == (("a", "1"), ("a", "2"), ("é", "ü\n"))

    store.run(body)


def test_a_duplicate_keeps_the_first_copys_headers(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        assert await inbox.append(with_headers("k1", [["x-first", "1"]]), ["a"]) is True
        assert await inbox.append(with_headers("k1", [["x-second", "2"]]), ["a"]) is False
        assert find(store.admin(), "k1").headers == (("x-first", "1"),)

    store.run(body)


@pytest.mark.parametrize(
    "blob", [b"not json", b'{"a": "b"}', b'[["only-a-name"], ["n", 1], "x"]'], ids=repr
)
def test_headers_that_are_not_pairs_read_as_none(store: Store, blob: bytes) -> None:
    async def body() -> None:
        inbox = await store.open()
        plain = event("k1")
        odd = NewEvent(plain.source, "k1", plain.event_type, None, plain.payload, blob)
        await inbox.append(odd, ["a"])
        assert find(store.admin(), "k1").headers == ()

    store.run(body)


# -- the phone filter ------------------------------------------------------------------------

PAYLOADS = {
    "nested": b'{"Call": {"Parties": [{"Number": "+358 40 123 4567"}]}}',
    "compact": b'{"CallerNumber": "+358401234567"}',
    "dashes": b'{"from": "(358) 40-123.45/67"}',
    "integer": b'{"ani": 358401234567}',
    "national": b'{"CallerNumber": "040 123 4567"}',
    "in a sentence": b'{"note": "call +358401234567 back"}',
    "as a key": b'{"+358401234567": "x"}',
    "other": b'{"CallerNumber": "+358401234568"}',
    "negative": b'{"n": -358401234567}',
    "not json": b"+358401234567",
    "a nul escape": b'{"a": "\\u0000", "b": "+358401234567"}',
    "no json nul": b'{"a": "\\\\u0000", "b": "+358 40 123 4567"}',
    "array": b'["x", ["+358-40-1234567"]]',
    "escaped digits": b'{"n": "+\\u00335840123456\\u0037"}',
    "unicode escape": b'{"n": "\\u002b358401234567"}',
}
"""Payloads by name; which hold +358 40 123 4567 is `HOLDING`."""

HOLDING = {
    "nested", "compact", "dashes", "integer", "a nul escape", "no json nul", "array",
    "escaped digits", "unicode escape",
}  # fmt: skip


async def phone_events(store: Store) -> tuple[Inbox, InboxAdmin]:
    """One event per payload of `PAYLOADS` (dedup key its name), for subscriber `a`."""
    inbox = await store.open()
    for name, payload in PAYLOADS.items():
        await inbox.append(event(name, payload=payload), ["a"])
    return inbox, store.admin()


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+358 40 123 4567", HOLDING),
        ("+358401234567", HOLDING),
        ("358401234567", HOLDING),  # a leading + is no part of the number
        ("358-40-123 45 67", HOLDING),
        ("0401234567", {"national"}),  # the national form is another number here
        ("040 123 4567", {"national"}),
        ("+358401234568", {"other"}),
        ("4567", set()),  # no part of a number
        ("+358 40 123 456", set()),
    ],
)
def test_the_phone_filter_matches_a_whole_value_anywhere_in_the_payload(
    store: Store, number: str, expected: set[str]
) -> None:
    async def body() -> None:
        _, admin = await phone_events(store)
        listed = admin.list(EventFilter(phone=number), limit=100)
        assert {d.dedup_key for d in listed} == expected
        assert sum(admin.counts(EventFilter(phone=number)).values()) == len(expected)

    store.run(body)


def test_the_phone_filter_goes_with_the_other_fields(store: Store) -> None:
    async def body() -> None:
        inbox, admin = await phone_events(store)
        await inbox.append(event("b-too", payload=PAYLOADS["compact"]), ["b"])
        number = "+358401234567"
        assert keys(admin.list(EventFilter(subscriber="b", phone=number))) == [("b-too", "b")]
        assert admin.list(EventFilter(source="elsewhere", phone=number)) == []
        assert admin.list(EventFilter(states=(State.DEAD,), phone=number)) == []
        # Listing stops at its limit, newest first.
        assert keys(admin.list(EventFilter(phone=number), limit=2)) == [
            ("b-too", "b"),
            ("unicode escape", "a"),
        ]

    store.run(body)


def test_replay_and_discard_follow_the_phone_filter(store: Store) -> None:
    async def body() -> None:
        inbox, admin = await phone_events(store)
        for d in await inbox.claim("a", 100):
            await inbox.bury(d.key, failed(1, "ValueError: boom", last=True))
        assert admin.discard(EventFilter(phone="040 123 4567")) == 1
        assert admin.replay(EventFilter(phone="+358401234568")) == 1
        counted = admin.counts(EventFilter())
        assert counted == {
            ("UserAvailability", "dead"): len(PAYLOADS) - 2,
            ("UserAvailability", "discarded"): 1,
            ("UserAvailability", "pending"): 1,
        }
        assert admin.replay(EventFilter(phone="+358401234567")) == len(HOLDING)
        assert {d.dedup_key for d in admin.list(EventFilter(states=(State.PENDING,)))} == {
            "other",
            *HOLDING,
        }

    store.run(body)


@pytest.mark.parametrize(
    "text", ["", "+", "phone", "+358 40 123 4567 ext 2", "٣٥٨", "1" * 19, "+358\n401"]
)
def test_a_phone_filter_that_is_no_number_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^the phone filter is not a phone number") as caught:
        EventFilter(phone=text)
    assert "\n" not in str(caught.value)
    assert phone_digits(text) is None


# -- counts ----------------------------------------------------------------------------------


def test_counts_are_by_event_type_and_state_under_the_filter(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        await inbox.append(event("old", event_type="AgentState"), ["a", "b"])
        await asyncio.sleep(0.01)
        since = time.time()
        await asyncio.sleep(0.01)
        await inbox.append(event("e1", event_type="CallEnded"), ["a", "b"])
        await inbox.append(event("e2", event_type="CallEnded"), ["a"])
        await inbox.append(event("e3", event_type="AgentState"), ["a"])
        for d in await inbox.claim("a", 100):
            if d.dedup_key == "e1":
                await inbox.complete([Completion(d.id, "a", time.time(), 0.01)])
            elif d.dedup_key == "e2":
                await inbox.bury(d.key, failed(1, "boom", last=True))
        admin = store.admin()
        assert admin.counts(EventFilter()) == {
            ("AgentState", "in_progress"): 2,
            ("AgentState", "pending"): 1,
            ("CallEnded", "done"): 1,
            ("CallEnded", "dead"): 1,
            ("CallEnded", "pending"): 1,
        }
        assert admin.counts(EventFilter(since=since)) == {
            ("AgentState", "in_progress"): 1,
            ("CallEnded", "done"): 1,
            ("CallEnded", "dead"): 1,
            ("CallEnded", "pending"): 1,
        }
        assert admin.counts(EventFilter(since=since, subscriber="b")) == {
            ("CallEnded", "pending"): 1
        }
        assert admin.counts(EventFilter(states=(State.DONE, State.DEAD))) == {
            ("CallEnded", "done"): 1,
            ("CallEnded", "dead"): 1,
        }
        assert admin.counts(EventFilter(event_type="Nothing")) == {}

    store.run(body)


# -- recent attempts -------------------------------------------------------------------------


def attempt(number: int, started_at: float, duration: float, *, last: bool = False) -> Attempt:
    """A failed attempt that ran from `started_at` for `duration`."""
    return Attempt(number, started_at, duration, "dead" if last else "retry", f"Error {number}")


def seen(rows: list[tuple[StoredEvent, Attempt]]) -> list[tuple[str, str, int, str]]:
    """(dedup key, subscriber, number, outcome) of each attempt, in order."""
    return [(d.dedup_key, d.subscriber, a.number, a.outcome) for d, a in rows]


async def attempts_of_three_events(store: Store, t0: float) -> tuple[Inbox, InboxAdmin]:
    """k1 for a (retry ending t0+1, then done t0+5) and b (retry t0+2, dead t0+3); k2 for a
    (retry ending t0+4, still in progress); k3 for a (done t0+6)."""
    inbox = await store.open()
    await inbox.append(event("k1"), ["a", "b"])
    await inbox.append(event("k2", event_type="CallEnded"), ["a"])
    await inbox.append(event("k3"), ["a"])
    claimed = {(d.dedup_key, d.subscriber): d for d in await inbox.claim("a", 10)}
    claimed.update({(d.dedup_key, d.subscriber): d for d in await inbox.claim("b", 10)})
    await inbox.retry_later(claimed["k1", "a"].key, attempt(1, t0 + 0.5, 0.5), t0)
    await inbox.retry_later(claimed["k1", "b"].key, attempt(1, t0 + 1.5, 0.5), t0)
    await inbox.bury(claimed["k1", "b"].key, attempt(2, t0 + 2.5, 0.5, last=True))
    await inbox.retry_later(claimed["k2", "a"].key, attempt(1, t0 + 3.0, 1.0), t0)
    await inbox.complete([Completion(claimed["k1", "a"].id, "a", t0 + 4.0, 1.0)])
    await inbox.complete([Completion(claimed["k3", "a"].id, "a", t0 + 5.5, 0.5)])
    return inbox, store.admin()


ALL_ATTEMPTS = [
    ("k1", "a", 1, "retry"),
    ("k1", "b", 1, "retry"),
    ("k1", "b", 2, "dead"),
    ("k2", "a", 1, "retry"),
    ("k1", "a", 2, "done"),
    ("k3", "a", 1, "done"),
]


def test_recent_attempts_are_every_attempt_ended_since_oldest_first(store: Store) -> None:
    async def body() -> None:
        t0 = float(int(time.time()) - 100)
        _, admin = await attempts_of_three_events(store, t0)
        rows = admin.recent_attempts(t0, EventFilter())
        assert seen(rows) == ALL_ATTEMPTS
        ends = [a.started_at + a.duration for _, a in rows]
        assert ends == pytest.approx([t0 + 1, t0 + 2, t0 + 3, t0 + 4, t0 + 5, t0 + 6])
        by_key = {(d.dedup_key, d.subscriber, a.number): (d, a) for d, a in rows}
        done, success = by_key["k1", "a", 2]
        assert (done.state, success.error, success.subscriber) == (State.DONE, None, "a")
        assert success.started_at == pytest.approx(t0 + 4.0) and success.duration == 1.0
        dead, last = by_key["k1", "b", 2]
        assert (dead.state, last.error, dead.payload) == (State.DEAD, "Error 2", b'{"Id": "k1"}')
        assert by_key["k2", "a", 1][0].state == State.IN_PROGRESS
        assert by_key["k2", "a", 1][0].event_type == "CallEnded"
        # At or after `since`: an attempt ending exactly then is in.
        assert seen(admin.recent_attempts(ends[2], EventFilter())) == ALL_ATTEMPTS[2:]
        assert seen(admin.recent_attempts(ends[2] + 0.001, EventFilter())) == ALL_ATTEMPTS[3:]
        assert admin.recent_attempts(t0 + 7, EventFilter()) == []

    store.run(body)


def test_recent_attempts_go_by_the_filter_and_the_limit(store: Store) -> None:
    async def body() -> None:
        t0 = float(int(time.time()) - 100)
        _, admin = await attempts_of_three_events(store, t0)
        assert seen(admin.recent_attempts(t0, EventFilter(subscriber="b"))) == ALL_ATTEMPTS[1:3]
        assert seen(admin.recent_attempts(t0, EventFilter(event_type="CallEnded"))) == [
            ("k2", "a", 1, "retry")
        ]
        # The states are the deliveries' now: every attempt of a delivery done.
        done = admin.recent_attempts(t0, EventFilter(states=(State.DONE,)))
        assert seen(done) == [ALL_ATTEMPTS[0], ALL_ATTEMPTS[4], ALL_ATTEMPTS[5]]
        assert seen(admin.recent_attempts(t0, EventFilter(), 2)) == ALL_ATTEMPTS[:2]
        assert seen(admin.recent_attempts(t0 + 2.5, EventFilter(), limit=2)) == ALL_ATTEMPTS[2:4]

    store.run(body)


def test_a_replayed_deliverys_success_is_no_longer_a_recent_attempt(store: Store) -> None:
    async def body() -> None:
        t0 = float(int(time.time()) - 100)
        _, admin = await attempts_of_three_events(store, t0)
        record = find(admin, "k3")
        assert admin.replay(EventFilter(), ids=[str(record.id)], done_too=True) == 1
        assert seen(admin.recent_attempts(t0, EventFilter())) == ALL_ATTEMPTS[:5]

    store.run(body)


def test_ties_come_in_event_subscriber_and_number_order(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        await inbox.append(event("k1"), ["b", "a"])
        await inbox.append(event("k2"), ["a"])
        t = float(int(time.time()) - 10)  # whole seconds: the ends below are exact ties
        held = {(d.dedup_key, d.subscriber): d.key for d in await inbox.claim("a", 10)}
        held.update({(d.dedup_key, d.subscriber): d.key for d in await inbox.claim("b", 10)})
        await inbox.retry_later(held["k2", "a"], attempt(1, t, 1.0), t)
        await inbox.retry_later(held["k1", "b"], attempt(1, t, 1.0), t)
        await inbox.retry_later(held["k1", "a"], attempt(1, t - 5.0, 1.0), t)
        await inbox.retry_later(held["k1", "a"], attempt(2, t - 1.0, 2.0), t)
        rows = store.admin().recent_attempts(t, EventFilter())
        assert seen(rows) == [
            ("k1", "a", 2, "retry"),
            ("k1", "b", 1, "retry"),
            ("k2", "a", 1, "retry"),
        ]

    store.run(body)


def test_a_follower_with_a_moving_since_sees_each_attempt_once(store: Store) -> None:
    """What `receiver inbox tail` does (`InboxAdmin.recent_attempts`): poll from the newest
    end seen less the grace, read on while a page is full, skip what was shown. An attempt
    recorded after one that ended later is not missed, and nothing is shown twice."""

    async def body() -> None:
        inbox = await store.open()
        admin = store.admin()
        for n in range(12):
            await inbox.append(event(f"k{n:02}"), ["a"])
        held = await inbox.claim("a", 100)
        ends: dict[tuple[int, str, int, str, float], float] = {}
        shown: list[tuple[int, str, int, str, float]] = []
        since = 0.0

        def poll() -> None:
            nonlocal since
            while True:
                rows = admin.recent_attempts(since, EventFilter(), 3)
                for d, a in rows:
                    key = attempt_key(d, a)
                    if key not in ends:
                        shown.append(key)
                    ends[key] = a.started_at + a.duration
                if len(rows) < 3:
                    since = max(ends.values(), default=0.0) - FOLLOW_GRACE
                    return
                since = rows[-1][1].started_at + rows[-1][1].duration

        t = float(int(time.time()) - 60)
        recorded: list[tuple[StoredEvent, Attempt]] = []
        for pair in range(6):
            first, second = held[2 * pair], held[2 * pair + 1]
            early, late = attempt(1, t + pair, 0.25), attempt(1, t + pair + 0.5, 0.25)
            # The attempt that ended later is recorded, and seen, first.
            await inbox.retry_later(second.key, late, t)
            poll()
            await inbox.retry_later(first.key, early, t)
            if pair % 2:
                poll()
            recorded += [(first, early), (second, late)]
        await inbox.complete([Completion(held[0].id, "a", t + 10, 0.25)])
        poll()
        poll()
        assert len(shown) == len(set(shown)) == 13
        expected = {attempt_key(d, a) for d, a in recorded}
        assert set(shown) - expected == {(held[0].id, "a", 2, "done", t + 10)}

    store.run(body)

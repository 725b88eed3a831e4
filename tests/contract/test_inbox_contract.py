"""What every inbox backend does, checked on each (`BACKEND_URLS` in conftest.py).

The rules are those of `receiver.inbox.base`; `receiver.inbox.memory` is their simplest
implementation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from receiver.inbox.base import Inbox, InboxAdmin
from receiver.inbox.models import Attempt, Completion, EventFilter, State
from tests.contract.conftest import (
    Recorder,
    Store,
    event,
    failed,
    find,
    handing_over,
    keys,
    not_handing_over,
    settle,
    shared,
    states,
)

DAY = 86400.0

NOT_IDS = ["", "nonsense", "0", "-1", "1.0", "0x1", "²", "99999", "99999999999999999999999"]
"""Text that is no event id of an inbox holding a few events (ids are opaque to callers)."""


def at(moment: float) -> object:
    """Equal to `moment` within a millisecond (pytest.approx alone allows 0.0001%: half an hour
    of a unix time)."""
    return pytest.approx(moment, abs=0.001)


async def finish(inbox: Inbox, subscriber: str, outcome: str) -> None:
    """Claim every pending delivery of `subscriber` and complete (`done`) or bury (`dead`) it."""
    for d in await inbox.claim(subscriber, 100):
        if outcome == "done":
            await inbox.complete([Completion(d.id, subscriber, time.time(), 0.01)])
        else:
            await inbox.bury(d.key, failed(1, "ValueError: boom", last=True))


# -- dedup ----------------------------------------------------------------------------------


def test_a_duplicate_is_refused_and_adds_nothing(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        assert await inbox.append(event("k1"), ["a"]) is True
        assert await inbox.append(event("k1", payload=b'"other"'), ["a"]) is False
        admin = store.admin()
        assert keys(admin.list(EventFilter())) == [("k1", "a")]
        assert find(admin, "k1").payload == b'{"Id": "k1"}'
        assert admin.stats().events == 1

    store.run(body)


def test_of_two_copies_appended_in_one_loop_turn_exactly_one_is_new(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        first, second = inbox.append(event("k1"), ["a"]), inbox.append(event("k1"), ["a"])
        assert sorted(await asyncio.gather(first, second)) == [False, True]
        assert keys(store.admin().list(EventFilter())) == [("k1", "a")]

    store.run(body)


def test_a_duplicate_with_other_subscribers_adds_no_delivery(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        assert await inbox.append(event("k1"), ["a"]) is True
        assert await inbox.append(event("k1"), ["a", "b"]) is False
        assert await inbox.append(event("k1"), ["c"]) is False
        admin = store.admin()
        assert states(find(admin, "k1")) == {"a": "pending"}
        assert await inbox.claim("b", 10) == []
        assert await inbox.claim("c", 10) == []

    store.run(body)


def test_dedup_holds_across_instances_on_one_store(store: Store) -> None:
    async def body() -> None:
        a, b = await store.open_two()
        assert await a.append(event("k1"), ["x"]) is True
        assert await b.append(event("k1"), ["x"]) is False
        together = await asyncio.gather(a.append(event("k2"), ["x"]), b.append(event("k2"), ["x"]))
        assert sorted(together) == [False, True]
        assert sorted(keys(store.admin().list(EventFilter()))) == [("k1", "x"), ("k2", "x")]

    store.run(body)


def test_the_same_key_from_another_source_is_a_new_event(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        assert await inbox.append(event("k1", source="enreach"), ["a"]) is True
        assert await inbox.append(event("k1", source="engage"), ["a"]) is True
        sources = sorted(d.source for d in store.admin().list(EventFilter()))
        assert sources == ["engage", "enreach"]

    store.run(body)


# -- deliveries ---------------------------------------------------------------------------------


def test_each_subscriber_gets_one_pending_delivery(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        before = time.time()
        assert await inbox.append(event("k1", order_key="call-1"), ["b", "a", "b"]) is True
        record = find(store.admin(), "k1")
        described = (record.source, record.event_type, record.order_key)
        assert described == ("enreach", "UserAvailability", "call-1")
        assert before <= record.received_at <= time.time()
        assert sorted(d.subscriber for d in record.deliveries) == ["a", "b"]
        for d in record.deliveries:
            unfinished = (d.state, d.attempts, d.last_error, d.finished_at, d.duration)
            assert unfinished == (State.PENDING, 0, None, None, None)
            assert d.next_attempt_at == at(record.received_at)
        assert record.history == ()

    store.run(body)


def test_an_event_without_subscribers_is_kept_for_dedup_only(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        assert await inbox.append(event("k1"), []) is True
        assert await inbox.append(event("k1"), ["a"]) is False
        admin = store.admin()
        assert admin.list(EventFilter()) == []
        assert admin.stats().events == 1
        assert await inbox.claim("a", 10) == []

    store.run(body)


# -- claims ----------------------------------------------------------------------------------


def test_claim_takes_a_subscribers_oldest_pending_deliveries_first(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        for key, subscribers in [("k1", ["a"]), ("k2", ["a", "b"]), ("k3", ["a"])]:
            await inbox.append(event(key), subscribers)
        first = await inbox.claim("a", 2)
        assert keys(first) == [("k1", "a"), ("k2", "a")]
        assert {d.state for d in first} == {State.IN_PROGRESS}
        assert keys(await inbox.claim("a", 5)) == [("k3", "a")]
        assert await inbox.claim("a", 5) == []
        assert keys(await inbox.claim("b", 5)) == [("k2", "b")]

    store.run(body)


def test_one_subscribers_delivery_never_touches_anothers(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        for key in ("k1", "k2", "k3"):
            await inbox.append(event(key), ["a", "b"])
        k1, k2, k3 = await inbox.claim("a", 3)
        await inbox.complete([Completion(k1.id, "a", time.time(), 0.01)])
        await inbox.retry_later(k2.key, failed(1, "E: later"), time.time() + 60)
        await inbox.bury(k3.key, failed(1, "E: never", last=True))
        admin = store.admin()
        assert [states(find(admin, k)) for k in ("k1", "k2", "k3")] == [
            {"a": "done", "b": "pending"},
            {"a": "in_progress", "b": "pending"},
            {"a": "dead", "b": "pending"},
        ]
        assert {d.subscriber: d.attempts for d in find(admin, "k2").deliveries} == {"a": 1, "b": 0}
        b_deliveries = await inbox.claim("b", 10)
        assert keys(b_deliveries) == [("k1", "b"), ("k2", "b"), ("k3", "b")]
        assert {d.attempts for d in b_deliveries} == {0}
        await inbox.bury(b_deliveries[0].key, failed(1, "E: b only", last=True))
        assert states(find(admin, "k1")) == {"a": "done", "b": "dead"}

    store.run(body)


def test_claim_takes_a_pending_delivery_whatever_its_next_attempt_time(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        await inbox.append(event("k1"), ["a"])
        [k1] = await inbox.claim("a", 1)
        later = time.time() + 3600
        await inbox.retry_later(k1.key, failed(1, "E: later"), later)
        await inbox.release([k1.key])
        [again] = await inbox.claim("a", 1)
        assert (again.dedup_key, again.attempts, again.last_error) == ("k1", 1, "E: later")
        assert again.next_attempt_at == at(later)

    store.run(body)


# -- the fast path: pull, room and the intake -----------------------------------------------


def test_pull_hands_pending_deliveries_to_the_intake_before_returning(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        intake = Recorder()
        inbox.attach(intake)
        for key in ("k1", "k2", "k3"):
            await inbox.append(event(key), ["a"])
        await intake.told("a")
        assert intake.deliveries == []
        assert await inbox.pull("a", 2, 10) == 2
        assert intake.keys == [("k1", "a"), ("k2", "a")]
        assert {d.state for d in intake.deliveries} == {State.IN_PROGRESS}
        assert await inbox.pull("a", 2, 10) == 1
        assert intake.keys == [("k1", "a"), ("k2", "a"), ("k3", "a")]
        assert states(find(store.admin(), "k3")) == {"a": "in_progress"}
        assert intake.empty_calls == 0

    store.run(body)


@handing_over
def test_pull_grants_room_for_new_deliveries_handed_over_in_progress(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        intake = Recorder()
        inbox.attach(intake)
        assert await inbox.pull("a", 5, 2) == 0
        for key in ("k1", "k2", "k3"):
            assert await inbox.append(event(key), ["a"]) is True
        await intake.wait_for(2)
        await settle()
        assert intake.keys == [("k1", "a"), ("k2", "a")]
        assert {(d.state, d.attempts) for d in intake.deliveries} == {(State.IN_PROGRESS, 0)}
        assert intake.pending == {"a"}
        admin = store.admin()
        assert [states(find(admin, k)) for k in ("k1", "k2", "k3")] == [
            {"a": "in_progress"},
            {"a": "in_progress"},
            {"a": "pending"},
        ]
        assert intake.empty_calls == 0

    store.run(body)


@handing_over
def test_the_room_granted_is_room_minus_what_pull_claimed(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        intake = Recorder()
        inbox.attach(intake)
        await inbox.append(event("k1"), ["a"])
        assert await inbox.pull("a", 5, 3) == 1
        for key in ("k2", "k3", "k4"):
            await inbox.append(event(key), ["a"])
        await intake.wait_for(3)
        await settle()
        assert intake.keys == [("k1", "a"), ("k2", "a"), ("k3", "a")]
        assert states(find(store.admin(), "k4")) == {"a": "pending"}

    store.run(body)


@handing_over
def test_a_pending_delivery_is_never_overtaken_by_a_later_one(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        intake = Recorder()
        inbox.attach(intake)
        assert await inbox.pull("a", 5, 1) == 0
        await inbox.append(event("k1"), ["a"])
        await inbox.append(event("k2"), ["a"])  # no room left: pending
        await intake.wait_for(1)
        await inbox.complete([Completion(intake.deliveries[0].id, "a", time.time(), 0.01)])
        await inbox.append(event("k3"), ["a"])  # room again, but k2 is still pending
        await settle()
        assert intake.keys == [("k1", "a")]
        assert await inbox.pull("a", 5, 5) == 2
        assert intake.keys == [("k1", "a"), ("k2", "a"), ("k3", "a")]
        await inbox.append(event("k4"), ["a"])
        await intake.wait_for(4)
        assert intake.keys[3] == ("k4", "a")

    store.run(body)


@handing_over
def test_complete_gives_room_back(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        intake = Recorder()
        inbox.attach(intake)
        assert await inbox.pull("a", 5, 1) == 0
        await inbox.append(event("k1"), ["a"])
        await intake.wait_for(1)
        await inbox.complete([Completion(intake.deliveries[0].id, "a", time.time(), 0.01)])
        await inbox.append(event("k2"), ["a"])
        await intake.wait_for(2)
        await inbox.append(event("k3"), ["a"])  # k2 is not done: no room
        await settle()
        assert intake.keys == [("k1", "a"), ("k2", "a")]
        assert states(find(store.admin(), "k3")) == {"a": "pending"}

    store.run(body)


@handing_over
def test_room_is_per_subscriber(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        intake = Recorder()
        inbox.attach(intake)
        assert await inbox.pull("a", 5, 5) == 0
        await inbox.append(event("k1"), ["a", "b", "a"])
        await intake.wait_for(1)
        await settle()
        assert intake.keys == [("k1", "a")]
        assert intake.pending == {"b"}
        assert states(find(store.admin(), "k1")) == {"a": "in_progress", "b": "pending"}

    store.run(body)


@handing_over
def test_detach_delivers_what_was_handed_and_stops_handing_over(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        intake = Recorder()
        inbox.attach(intake)
        assert await inbox.pull("a", 5, 5) == 0
        appended = inbox.append(event("k1"), ["a"])
        await inbox.detach()
        assert intake.keys == [("k1", "a")]
        assert await appended is True
        await inbox.append(event("k2"), ["a"])
        await settle()
        assert intake.keys == [("k1", "a")]
        assert intake.pending == set()
        assert states(find(store.admin(), "k2")) == {"a": "pending"}

    store.run(body)


def test_another_instances_appends_are_not_handed_to_this_intake(store: Store) -> None:
    async def body() -> None:
        a, b = await store.open_two()
        intake = Recorder()
        a.attach(intake)
        assert await a.pull("x", 5, 5) == 0
        await b.append(event("k1"), ["x"])
        await settle()
        assert intake.deliveries == []
        assert states(find(store.admin(), "k1")) == {"x": "pending"}
        assert await a.pull("x", 5, 5) == 1
        assert intake.keys == [("k1", "x")]

    store.run(body)


@not_handing_over
def test_a_shared_backend_tells_the_intake_what_is_pending_and_hands_nothing_over(
    store: Store,
) -> None:
    async def body() -> None:
        a, b = await store.open_two()
        intake = Recorder()
        a.attach(intake)
        assert await a.pull("x", 5, 5) == 0
        await a.append(event("k1"), ["x", "y"])
        await b.append(event("k2"), ["x"])  # as another receiver
        await intake.told("x")
        await intake.told("y")
        await settle()
        assert intake.deliveries == []
        assert states(find(store.admin(), "k1")) == {"x": "pending", "y": "pending"}
        assert await a.pull("x", 5, 5) == 2
        assert intake.keys == [("k1", "x"), ("k2", "x")]

    store.run(body)


@shared
def test_a_claim_never_takes_a_call_another_process_has_in_progress(store: Store) -> None:
    async def body() -> None:
        a, b = await store.open_two()
        await a.append(event("c1-first", order_key="call-1"), ["x"])
        await a.append(event("c2-only", order_key="call-2"), ["x"])
        await a.append(event("c1-second", order_key="call-1"), ["x"])
        assert keys(await a.claim("x", 1)) == [("c1-first", "x")]
        # b may take call-2, not call-1's later event while a holds its first.
        assert keys(await b.claim("x", 5)) == [("c2-only", "x")]
        # a may go on with its own call.
        assert keys(await a.claim("x", 5)) == [("c1-second", "x")]

    store.run(body)


@shared
def test_a_call_is_free_again_once_its_holder_let_go(store: Store) -> None:
    async def body() -> None:
        a, b = await store.open_two()
        await a.append(event("c1-first", order_key="call-1"), ["x"])
        await a.append(event("c1-second", order_key="call-1"), ["x"])
        [first] = await a.claim("x", 1)
        assert await b.claim("x", 5) == []
        await a.complete([Completion(first.id, "x", time.time(), 0.01)])
        assert keys(await b.claim("x", 5)) == [("c1-second", "x")]

    store.run(body)


# -- outcomes and their history ---------------------------------------------------------------


def test_complete_records_the_successful_attempt(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        await inbox.append(event("k1"), ["a"])
        [k1] = await inbox.claim("a", 1)
        started = time.time()
        await inbox.complete([Completion(k1.id, "a", started, 0.25)])
        record = find(store.admin(), "k1")
        [d] = record.deliveries
        assert (d.state, d.attempts, d.last_error) == (State.DONE, 0, None)
        assert d.finished_at == at(started + 0.25)
        assert d.duration == pytest.approx(0.25)
        assert record.history == (Attempt(1, started, 0.25, "done", None, "a"),)
        assert await inbox.claim("a", 1) == []

    store.run(body)


def test_retry_later_records_the_attempt_and_keeps_the_claim(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        await inbox.append(event("k1"), ["a"])
        [k1] = await inbox.claim("a", 1)
        attempt = failed(1, "ValueError: boom")
        await inbox.retry_later(k1.key, attempt, k1.received_at + 60)
        record = find(store.admin(), "k1")
        [d] = record.deliveries
        retrying = (d.state, d.attempts, d.last_error, d.finished_at)
        assert retrying == (State.IN_PROGRESS, 1, "ValueError: boom", None)
        assert d.next_attempt_at == at(k1.received_at + 60)
        assert record.history == (
            Attempt(1, attempt.started_at, 0.01, "retry", attempt.error, "a"),
        )
        assert await inbox.claim("a", 1) == []

    store.run(body)


def test_bury_makes_a_dead_letter_with_its_history(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        await inbox.append(event("k1"), ["a"])
        [k1] = await inbox.claim("a", 1)
        first, last = failed(1, "E: one", started_at=1000.0), failed(2, "E: two", last=True)
        await inbox.retry_later(k1.key, first, time.time())
        before = time.time()
        await inbox.bury(k1.key, last)
        record = find(store.admin(), "k1")
        [d] = record.deliveries
        assert (d.state, d.attempts, d.last_error) == (State.DEAD, 2, "E: two")
        assert d.finished_at is not None
        assert before - 0.01 <= d.finished_at <= time.time() + 0.01
        assert [(a.number, a.outcome, a.error) for a in record.history] == [
            (1, "retry", "E: one"),
            (2, "dead", "E: two"),
        ]
        assert await inbox.claim("a", 1) == []

    store.run(body)


def test_history_holds_every_attempt_of_every_delivery_oldest_first(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        await inbox.append(event("k1"), ["a", "b"])
        [a] = await inbox.claim("a", 1)
        [b] = await inbox.claim("b", 1)
        await inbox.retry_later(a.key, failed(1, "E: a1", started_at=100.0), 0.0)
        await inbox.retry_later(b.key, failed(1, "E: b1", started_at=50.0), 0.0)
        await inbox.complete([Completion(a.id, "a", 200.0, 1.0)])
        await inbox.bury(b.key, failed(2, "E: b2", started_at=150.0, last=True))
        history = find(store.admin(), "k1").history
        assert [(h.subscriber, h.number, h.outcome, h.started_at) for h in history] == [
            ("b", 1, "retry", 50.0),
            ("a", 1, "retry", 100.0),
            ("b", 2, "dead", 150.0),
            ("a", 2, "done", 200.0),
        ]
        # A delivery that succeeded shows no error; its history keeps the failed attempt's.
        by_subscriber = {d.subscriber: d for d in find(store.admin(), "k1").deliveries}
        assert (by_subscriber["a"].last_error, by_subscriber["b"].last_error) == (None, "E: b2")

    store.run(body)


def test_release_makes_claimed_deliveries_pending_again(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        for key in ("k1", "k2", "k3"):
            await inbox.append(event(key), ["a"])
        claimed = await inbox.claim("a", 3)
        await inbox.complete([Completion(claimed[2].id, "a", time.time(), 0.01)])
        await inbox.release([d.key for d in claimed])
        admin = store.admin()
        assert [states(find(admin, k)) for k in ("k1", "k2", "k3")] == [
            {"a": "pending"},
            {"a": "pending"},
            {"a": "done"},
        ]
        assert keys(await inbox.claim("a", 5)) == [("k1", "a"), ("k2", "a")]

    store.run(body)


def test_recover_takes_back_what_other_instances_hold(store: Store) -> None:
    async def body() -> None:
        a, b = await store.open_two()
        for key in ("k1", "k2"):
            await a.append(event(key), ["x"])
        assert keys(await a.claim("x", 1)) == [("k1", "x")]
        assert keys(await b.claim("x", 1)) == [("k2", "x")]
        assert await b.recover() == 1
        admin = store.admin()
        assert states(find(admin, "k1")) == {"x": "pending"}
        assert states(find(admin, "k2")) == {"x": "in_progress"}
        assert keys(await b.claim("x", 5)) == [("k1", "x")]

    store.run(body)


# -- leases ------------------------------------------------------------------------------------


def test_claims_whose_lease_expired_are_reclaimed(store: Store) -> None:
    async def body() -> None:
        a, b = await store.open_two(lease=0.2)
        for key in ("k1", "k2"):
            await a.append(event(key), ["x"])
        assert len(await a.claim("x", 2)) == 2
        assert await b.reclaim() == 0
        await asyncio.sleep(0.3)
        await b.heartbeat()
        assert await b.reclaim() == 2
        assert states(find(store.admin(), "k1")) == {"x": "pending"}
        assert keys(await b.claim("x", 5)) == [("k1", "x"), ("k2", "x")]

    store.run(body)


def test_a_process_never_reclaims_its_own_claims_however_late_its_heartbeat(
    store: Store,
) -> None:
    async def body() -> None:
        a, _ = await store.open_two(lease=0.1)
        await a.append(event("k1"), ["x"])
        assert len(await a.claim("x", 1)) == 1
        await asyncio.sleep(0.2)  # its own lease ran out: its dispatcher still holds k1
        assert await a.reclaim() == 0
        assert states(find(store.admin(), "k1")) == {"x": "in_progress"}

    store.run(body)


def test_owned_lists_every_claim_a_process_holds(store: Store) -> None:
    async def body() -> None:
        a, b = await store.open_two()
        for key in ("k1", "k2", "k3"):
            await a.append(event(key), ["x"])
        k1, k2 = await a.claim("x", 2)
        [k3] = await b.claim("x", 1)
        await a.complete([Completion(k1.id, "x", time.time(), 0.01)])
        assert await a.owned() == {k2.key}
        assert await b.owned() == {k3.key}

    store.run(body)


def test_held_tells_which_claims_a_process_still_holds(store: Store) -> None:
    async def body() -> None:
        a, b = await store.open_two()
        for key in ("k1", "k2"):
            await a.append(event(key), ["x"])
        k1, k2 = await a.claim("x", 2)
        await a.complete([Completion(k1.id, "x", time.time(), 0.01)])
        assert await a.held([k1.key, k2.key]) == {k2.key}
        assert await b.held([k1.key, k2.key]) == set()
        assert await a.held([]) == set()

    store.run(body)


def test_a_heartbeat_says_whether_the_lease_had_run_out(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open(lease=0.2)
        assert await inbox.heartbeat() is True
        await asyncio.sleep(0.3)  # as a process paused for longer than its lease
        assert await inbox.heartbeat() is False
        assert await inbox.heartbeat() is True  # renewed again

    store.run(body)


def test_a_heartbeat_keeps_the_claims(store: Store) -> None:
    async def body() -> None:
        a, b = await store.open_two(lease=0.3)
        await a.append(event("k1"), ["x"])
        assert len(await a.claim("x", 1)) == 1
        for _ in range(8):  # 0.4 s in all, longer than the lease
            await asyncio.sleep(0.05)
            await a.heartbeat()
            assert await b.reclaim() == 0
        assert states(find(store.admin(), "k1")) == {"x": "in_progress"}

    store.run(body)


@handing_over
def test_deliveries_handed_over_directly_are_leased_too(store: Store) -> None:
    async def body() -> None:
        a, b = await store.open_two(lease=0.2)
        intake = Recorder()
        a.attach(intake)
        assert await a.pull("x", 5, 5) == 0
        await a.append(event("k1"), ["x"])
        await intake.wait_for(1)
        assert await b.reclaim() == 0
        await asyncio.sleep(0.3)
        assert await b.reclaim() == 1
        assert states(find(store.admin(), "k1")) == {"x": "pending"}

    store.run(body)


# -- replay and discard ------------------------------------------------------------------------


async def three_outcomes(store: Store) -> tuple[Inbox, InboxAdmin]:
    """k1 dead, k2 done, k3 pending (subscriber a)."""
    inbox = await store.open()
    await inbox.append(event("k1"), ["a"])
    await finish(inbox, "a", "dead")
    await inbox.append(event("k2"), ["a"])
    await finish(inbox, "a", "done")
    await inbox.append(event("k3"), ["a"])
    return inbox, store.admin()


def test_replay_makes_dead_letters_pending_and_only_them(store: Store) -> None:
    async def body() -> None:
        _, admin = await three_outcomes(store)
        assert admin.replay(EventFilter()) == 1
        assert [states(find(admin, k)) for k in ("k1", "k2", "k3")] == [
            {"a": "pending"},
            {"a": "done"},
            {"a": "pending"},
        ]

    store.run(body)


def test_replay_done_too_makes_done_deliveries_pending_as_well(store: Store) -> None:
    async def body() -> None:
        inbox, admin = await three_outcomes(store)
        assert admin.replay(EventFilter(), done_too=True) == 2
        [d] = find(admin, "k2").deliveries
        assert (d.state, d.finished_at, d.attempts) == (State.PENDING, None, 0)
        assert keys(await inbox.claim("a", 5)) == [("k1", "a"), ("k2", "a"), ("k3", "a")]

    store.run(body)


def test_replay_of_given_ids_only(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        for key in ("k1", "k2"):
            await inbox.append(event(key), ["a"])
        await finish(inbox, "a", "dead")
        admin = store.admin()
        assert admin.replay(EventFilter(), ids=NOT_IDS) == 0
        assert admin.replay(EventFilter(), ids=[str(find(admin, "k2").id)]) == 1
        assert states(find(admin, "k1")) == {"a": "dead"}
        assert states(find(admin, "k2")) == {"a": "pending"}

    store.run(body)


def test_replay_of_one_subscriber_only(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        await inbox.append(event("k1"), ["a", "b"])
        await finish(inbox, "a", "dead")
        await finish(inbox, "b", "dead")
        admin = store.admin()
        assert admin.replay(EventFilter(subscriber="b")) == 1
        assert states(find(admin, "k1")) == {"a": "dead", "b": "pending"}

    store.run(body)


def test_replay_keeps_the_history_and_counting_starts_over(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        await inbox.append(event("k1"), ["a"])
        [k1] = await inbox.claim("a", 1)
        await inbox.retry_later(k1.key, failed(1, "E: one"), time.time())
        await inbox.bury(k1.key, failed(2, "E: two", last=True))
        admin = store.admin()
        before = time.time()
        assert admin.replay(EventFilter()) == 1
        record = find(admin, "k1")
        [d] = record.deliveries
        replayed = (d.state, d.attempts, d.finished_at, d.last_error)
        assert replayed == (State.PENDING, 0, None, "E: two")
        assert before - 0.01 <= d.next_attempt_at <= time.time() + 0.01
        assert [a.number for a in record.history] == [1, 2]
        [again] = await inbox.claim("a", 1)
        assert again.attempts == 0

    store.run(body)


def test_discard_gives_up_on_dead_letters_only(store: Store) -> None:
    async def body() -> None:
        _, admin = await three_outcomes(store)
        assert admin.discard(EventFilter()) == 1
        assert [states(find(admin, k)) for k in ("k1", "k2", "k3")] == [
            {"a": "discarded"},
            {"a": "done"},
            {"a": "pending"},
        ]
        assert admin.replay(EventFilter(), done_too=True) == 1  # k2: discarded is final
        assert states(find(admin, "k1")) == {"a": "discarded"}

    store.run(body)


def test_discard_of_given_ids_only(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        for key in ("k1", "k2"):
            await inbox.append(event(key), ["a"])
        await finish(inbox, "a", "dead")
        admin = store.admin()
        assert admin.discard(EventFilter(), ids=NOT_IDS) == 0
        assert admin.discard(EventFilter(), ids=[str(find(admin, "k1").id)]) == 1
        assert states(find(admin, "k1")) == {"a": "discarded"}
        assert states(find(admin, "k2")) == {"a": "dead"}

    store.run(body)


# -- purge ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["inbox", "admin"])
def test_purge_deletes_finished_events_past_retention_and_forgets_their_keys(
    store: Store, side: str
) -> None:
    async def body() -> None:
        inbox = await store.open(retention_days=1)
        await inbox.append(event("k1"), ["a"])
        await finish(inbox, "a", "done")
        admin = store.admin(retention_days=1)
        old = str(find(admin, "k1").id)
        later = time.time() + 2 * DAY
        purged = await inbox.purge(now=later) if side == "inbox" else admin.purge(now=later)
        assert purged == 1
        assert admin.get(old) is None
        assert admin.stats().events == 0
        assert await inbox.append(event("k1"), ["a"]) is True
        assert states(find(admin, "k1")) == {"a": "pending"}

    store.run(body)


def test_an_id_is_never_used_again_even_after_its_event_was_purged(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open(retention_days=1)
        await inbox.append(event("k1"), ["a"])
        await finish(inbox, "a", "done")
        admin = store.admin(retention_days=1)
        old = find(admin, "k1").id
        assert await inbox.purge(now=time.time() + 2 * DAY) == 1  # the newest event, too
        await inbox.append(event("k2"), ["a"])
        assert find(admin, "k2").id != old
        assert admin.get(str(old)) is None

    store.run(body)


def test_purge_keeps_recent_unfinished_and_dead_events(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open(retention_days=1)
        await inbox.append(event("dead"), ["a"])
        await finish(inbox, "a", "dead")
        await inbox.append(event("half"), ["a", "b"])
        await finish(inbox, "a", "done")
        await inbox.claim("b", 1)
        await inbox.append(event("done"), ["a"])
        await finish(inbox, "a", "done")
        await inbox.append(event("pending"), ["a"])
        assert await inbox.purge(now=time.time()) == 0  # nothing past retention yet
        assert await inbox.purge(now=time.time() + 2 * DAY) == 1
        admin = store.admin()
        remaining = {d.dedup_key for d in admin.list(EventFilter())}
        assert remaining == {"dead", "half", "pending"}
        assert await inbox.append(event("dead"), ["a"]) is False

    store.run(body)


def test_purge_deletes_discarded_and_subscriberless_events(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open(retention_days=1)
        await inbox.append(event("nobody"), [])
        await inbox.append(event("discarded"), ["a"])
        await finish(inbox, "a", "dead")
        admin = store.admin()
        assert admin.discard(EventFilter()) == 1
        assert await inbox.purge(now=time.time() + 2 * DAY) == 2
        assert admin.stats().events == 0

    store.run(body)


# -- admin queries -----------------------------------------------------------------------------


async def three_events(store: Store) -> tuple[InboxAdmin, dict[str, float]]:
    """e1 (enreach UserAvailability call-1; a done, b pending), e2 (engage AgentState call-2;
    a dead), e3 (enreach AgentState; b pending); and when each was received."""
    inbox = await store.open()
    await inbox.append(event("e1", order_key="call-1"), ["a", "b"])
    await finish(inbox, "a", "done")
    await asyncio.sleep(0.01)
    await inbox.append(
        event("e2", source="engage", event_type="AgentState", order_key="call-2"), ["a"]
    )
    await finish(inbox, "a", "dead")
    await asyncio.sleep(0.01)
    await inbox.append(event("e3", event_type="AgentState"), ["b"])
    admin = store.admin()
    received = {k: find(admin, k).received_at for k in ("e1", "e2", "e3")}
    return admin, received


FILTERS: list[tuple[str, Callable[[dict[str, float]], EventFilter], set[tuple[str, str]]]] = [
    ("all", lambda _: EventFilter(), {("e1", "a"), ("e1", "b"), ("e2", "a"), ("e3", "b")}),
    ("subscriber", lambda _: EventFilter(subscriber="a"), {("e1", "a"), ("e2", "a")}),
    ("source", lambda _: EventFilter(source="engage"), {("e2", "a")}),
    ("event_type", lambda _: EventFilter(event_type="AgentState"), {("e2", "a"), ("e3", "b")}),
    ("one state", lambda _: EventFilter(states=(State.PENDING,)), {("e1", "b"), ("e3", "b")}),
    (
        "any of states",
        lambda _: EventFilter(states=(State.DONE, State.DEAD)),
        {("e1", "a"), ("e2", "a")},
    ),
    ("order_key", lambda _: EventFilter(order_key="call-1"), {("e1", "a"), ("e1", "b")}),
    ("since", lambda t: EventFilter(since=t["e2"]), {("e2", "a"), ("e3", "b")}),
    ("until", lambda t: EventFilter(until=t["e2"]), {("e1", "a"), ("e1", "b")}),
    (
        "every field",
        lambda t: EventFilter(
            "b", "enreach", "UserAvailability", (State.PENDING,), "call-1", t["e1"], t["e2"]
        ),
        {("e1", "b")},
    ),
]


@pytest.mark.parametrize(
    ("make_filter", "expected"),
    [pytest.param(make, expected, id=name) for name, make, expected in FILTERS],
)
def test_list_filters(
    store: Store,
    make_filter: Callable[[dict[str, float]], EventFilter],
    expected: set[tuple[str, str]],
) -> None:
    async def body() -> None:
        admin, received = await three_events(store)
        listed = admin.list(make_filter(received))
        assert set(keys(listed)) == expected
        assert len(listed) == len(expected)

    store.run(body)


def test_list_shows_the_newest_event_first_then_by_subscriber(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        await inbox.append(event("k1"), ["b", "a"])
        await inbox.append(event("k2"), ["c", "a"])
        admin = store.admin()
        listed = admin.list(EventFilter())
        assert keys(listed) == [("k2", "a"), ("k2", "c"), ("k1", "a"), ("k1", "b")]
        assert keys(admin.list(EventFilter(), limit=3)) == keys(listed)[:3]
        assert [d.state for d in listed] == [State.PENDING] * 4
        assert listed[0].payload == b'{"Id": "k2"}'

    store.run(body)


def test_stats_count_by_state_subscriber_and_source(store: Store) -> None:
    async def body() -> None:
        admin, received = await three_events(store)
        stats = admin.stats()

        def nonzero(counts: dict[str, int]) -> dict[str, int]:
            return {label: n for label, n in counts.items() if n}

        assert stats.events == 3
        assert nonzero(stats.by_state) == {"done": 1, "dead": 1, "pending": 2}
        assert {s: nonzero(c) for s, c in stats.by_subscriber.items()} == {
            "a": {"done": 1, "dead": 1},
            "b": {"pending": 2},
        }
        assert stats.by_source == {"enreach": 2, "engage": 1}
        assert set(stats.oldest_open_age) == {"b"}
        assert stats.oldest_open_age["b"] == pytest.approx(time.time() - received["e1"], abs=0.5)
        assert stats.location

    store.run(body)


@pytest.mark.parametrize("text", NOT_IDS)
def test_get_of_an_unknown_or_nonsense_id_is_none(store: Store, text: str) -> None:
    async def body() -> None:
        inbox = await store.open()
        await inbox.append(event("k1"), ["a"])
        admin = store.admin()
        assert admin.get(str(find(admin, "k1").id)) is not None
        assert admin.get(text) is None

    store.run(body)

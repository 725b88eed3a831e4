"""Every inbox backend keeps callers' data no longer than configured (issue 18).

A finished event loses its payload, headers and error texts after `payload_retention_days`
while its dedup key keeps recognising a provider's retry until `retention_days`; a dead letter
keeps its payload until it is replayed, discarded, or `dead_retention_days` pass, when it is
discarded and reported. From the inbox (the serving process's maintenance) and from the admin
side (`receiver inbox purge`) alike.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from receiver.inbox.models import ERASED, EventFilter, NewEvent, State
from tests.contract.conftest import Store, event, find, states
from tests.contract.test_inbox_contract import DAY, finish

RETENTION = {"retention_days": 7, "payload_retention_days": 1, "dead_retention_days": 10}


def with_headers(key: str) -> NewEvent:
    """An event whose request headers were kept."""
    return dataclasses.replace(event(key), headers=b'[["user-agent", "Benemen"]]')


@pytest.mark.parametrize("side", ["inbox", "admin"])
def test_payloads_go_after_payload_retention_and_dedup_keys_stay_until_retention(
    store: Store, side: str
) -> None:
    async def body() -> None:
        inbox = await store.open(**RETENTION)
        admin = store.admin(**RETENTION)

        async def expire(now: float) -> tuple[int, tuple[tuple[int, str], ...]]:
            done = await inbox.expire(now=now) if side == "inbox" else admin.expire(now=now)
            return done.scrubbed, done.dropped

        await inbox.append(with_headers("done"), ["a"])
        await finish(inbox, "a", "done")
        await inbox.append(with_headers("dead"), ["b"])
        await finish(inbox, "b", "dead")
        await inbox.append(with_headers("open"), ["a"])
        now = time.time()
        assert await expire(now) == (0, ())  # nothing is old yet
        assert await expire(now + 2 * DAY) == (1, ())
        done = admin.get(str(find(admin, "done").id))
        assert done is not None
        assert done.payload == ERASED and done.headers == ()
        assert all(d.last_error is None for d in done.deliveries)
        assert all(a.error is None for a in done.history)
        assert (done.source, done.dedup_key, done.event_type) == (
            "enreach",
            "done",
            "UserAvailability",
        )
        for kept in ("dead", "open"):  # a dead letter and an open delivery keep theirs
            record = admin.get(str(find(admin, kept).id))
            assert record is not None and record.payload != ERASED and record.headers != ()
        dead = admin.get(str(find(admin, "dead").id))
        assert dead is not None and any(a.error for a in dead.history)
        assert await expire(now + 3 * DAY) == (0, ())  # once is enough
        # A provider's retry is still recognised, and not delivered again.
        assert await inbox.append(event("done"), ["a"]) is False
        assert states(find(admin, "done")) == {"a": "done"}
        # After the dedup retention, the key goes too.
        assert await inbox.purge(now=now + 8 * DAY) == 1
        assert await inbox.append(event("done"), ["a"]) is True

    store.run(body)


@pytest.mark.parametrize("side", ["inbox", "admin"])
def test_dead_letters_are_dropped_and_reported_after_dead_retention(
    store: Store, side: str
) -> None:
    async def body() -> None:
        inbox = await store.open(**RETENTION)
        admin = store.admin(**RETENTION)
        await inbox.append(event("dead"), ["a", "b"])
        await finish(inbox, "a", "dead")
        await finish(inbox, "b", "done")
        dead_id = find(admin, "dead").id
        now = time.time()
        first = (
            await inbox.expire(now=now + 9 * DAY)
            if side == "inbox"
            else admin.expire(now=now + 9 * DAY)
        )
        assert (first.scrubbed, first.dropped) == (0, ())  # a dead letter keeps its payload
        later = now + 11 * DAY
        second = await inbox.expire(now=later) if side == "inbox" else admin.expire(now=later)
        assert second.dropped == ((dead_id, "a"),)
        assert second.scrubbed == 1  # discarded now, and long past the payload retention
        assert states(find(admin, "dead")) == {"a": "discarded", "b": "done"}
        assert admin.list(EventFilter(states=(State.DEAD,))) == []
        record = admin.get(str(dead_id))
        assert record is not None and record.payload == ERASED
        assert await inbox.append(event("dead"), ["a"]) is False  # still deduplicated

    store.run(body)


def test_an_event_without_its_payload_is_never_replayed(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open(**RETENTION)
        admin = store.admin(**RETENTION)
        await inbox.append(event("old"), ["a"])
        await finish(inbox, "a", "done")
        assert (await inbox.expire(now=time.time() + 2 * DAY)).scrubbed == 1
        await inbox.append(event("new"), ["a"])
        await finish(inbox, "a", "done")
        assert admin.replay(EventFilter(), done_too=True) == 1  # the new one only
        assert states(find(admin, "old")) == {"a": "done"}
        assert states(find(admin, "new")) == {"a": "pending"}

    store.run(body)

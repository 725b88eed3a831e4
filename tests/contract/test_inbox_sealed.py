"""Every inbox backend with payloads encrypted at rest (`receiver.inbox.sealed`, issue 18).

What is appended reaches the backend sealed and comes back opened, whichever way it comes:
claimed, handed over in process, listed, shown, searched by phone number, or read for an
erasure; a failed attempt's error text is sealed too. An admin without the key refuses with a
`StorageError` naming it.
"""

from __future__ import annotations

import asyncio

import pytest

from receiver.exceptions import StorageError
from receiver.inbox.base import InboxAdmin, InboxOptions, backend_for
from receiver.inbox.models import EventFilter, EventRecord, State, StoredEvent
from receiver.inbox.sealing import MAGIC, TEXT_MAGIC, new_key, parse_keys
from tests.contract.conftest import Recorder, Store, event, failed, find, handing_over
from tests.contract.test_inbox_contract import finish

RING = parse_keys(new_key("k1"), "test")
BODY = b'{"CallId": "c-1", "CallerNumber": "+358401234567"}'


def test_sealed_in_the_backend_and_opened_for_every_reader(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open(keyring=RING)
        admin = store.admin(keyring=RING)
        await inbox.append(event("k1", payload=BODY), ["a"])
        await inbox.append(event("k2", payload=b'{"CallId": "c-2"}'), ["a"])
        (first, second) = await inbox.claim("a", 10)
        assert (first.payload, second.payload) == (BODY, b'{"CallId": "c-2"}')
        await inbox.bury(first.key, failed(1, f"ValueError: bad {BODY.decode()}", last=True))
        # In the backend, behind the wrapper: sealed.
        backend: InboxAdmin = backend_for(store.url)._get("admin")(store.url, InboxOptions())  # type: ignore[assignment]
        try:
            rows = backend.payloads(0, 10)
            assert rows and all(row.payload.startswith(MAGIC) for row in rows)
            errors = [a.error or "" for a in (backend.get(str(first.id)) or record_none()).history]
            assert errors and all(e.startswith(TEXT_MAGIC) for e in errors)
        finally:
            backend.close()
        blind = store.admin()  # no key: refused, never the sealed bytes
        with pytest.raises(StorageError, match=r"is encrypted \(key 'k1'\)"):
            blind.get(str(first.id))
        # Through the keyring: opened.
        record = find(admin, "k1")
        assert record.payload == BODY
        assert record.history[0].error == f"ValueError: bad {BODY.decode()}"
        (dead,) = admin.list(EventFilter(states=(State.DEAD,)))
        assert dead.last_error is not None and not dead.last_error.startswith(TEXT_MAGIC)
        found = admin.list(EventFilter(phone="+358 40 123 4567"))
        assert [d.dedup_key for d in found] == ["k1"]
        assert admin.list(EventFilter(phone="+358 40 000 0000")) == []
        assert admin.counts(EventFilter(phone="+358401234567")) == {("UserAvailability", "dead"): 1}
        assert [row.payload for row in admin.payloads(0, 10)] == [BODY, b'{"CallId": "c-2"}']

    store.run(body)


@handing_over
def test_what_is_handed_over_in_process_is_opened(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open(keyring=RING)
        intake = Recorder()
        inbox.attach(intake)
        assert await inbox.pull("a", 5, 5) == 0
        await inbox.append(event("k1", payload=BODY), ["a"])
        await intake.wait_for(1)
        assert [d.payload for d in intake.deliveries] == [BODY]
        await finish(inbox, "a", "done")

    store.run(body)


def record_none() -> EventRecord:
    raise AssertionError("the backend lost the event")


def test_a_delivery_this_process_cannot_open_becomes_a_dead_letter_saying_why(
    store: Store,
) -> None:
    async def body() -> None:
        writer = await store.open(keyring=RING)
        await writer.append(event("old", payload=BODY), ["a"])
        other = parse_keys(new_key("k2"), "test")
        await writer.close()
        reader = await store.open(keyring=other)  # k1 is missing here
        await reader.append(event("new", payload=b'{"CallId": "c-3"}'), ["a"])
        claimed = await reader.claim("a", 10)
        assert [d.dedup_key for d in claimed] == ["new"]  # the other is not held up behind it
        admin = store.admin(keyring=other)

        def old() -> StoredEvent:
            (row,) = [d for d in admin.list(EventFilter()) if d.dedup_key == "old"]
            return row

        for _ in range(200):  # the dead letter is written a moment later
            if old().state == State.DEAD:
                break
            await asyncio.sleep(0.01)
        listed = {d.dedup_key: d for d in admin.list(EventFilter())}
        assert listed["old"].state == State.DEAD
        assert "which RECEIVER_INBOX_KEYS lacks" in (listed["old"].last_error or "")
        assert b"unreadable" in listed["old"].payload  # a list row says so, the rest read

    store.run(body)

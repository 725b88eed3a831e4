"""Every inbox backend erases one person's events on request (issue 18), keeping dedup.

`InboxAdmin.payloads` pages through the events that still have a payload; the ones a
`PersonalDataQuery` matches are given to `InboxAdmin.erase`, which removes their payload,
headers and error texts and discards what was still to be delivered, while the dedup key stays:
a provider's retry of an erased event is acknowledged and never delivered again.
"""

from __future__ import annotations

import dataclasses
import time

import orjson

from receiver.inbox.base import InboxAdmin
from receiver.inbox.models import ERASED, Completion, EventFilter
from receiver.personal_data import PersonalDataQuery
from tests.contract.conftest import Store, event, failed, find, states
from tests.contract.test_inbox_contract import finish


def payload(**fields: object) -> bytes:
    return orjson.dumps(fields)


def matching(admin: InboxAdmin, query: PersonalDataQuery, page: int = 2) -> list[int]:
    """The ids of the events `query` matches, read `page` at a time (as the command does)."""
    found, after = [], 0
    while rows := admin.payloads(after, page):
        found += [row.id for row in rows if query.matches(row.payload, row.order_key)]
        after = rows[-1].id
    return found


def test_erasure_finds_a_number_in_any_form_and_keeps_dedup(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        admin = store.admin()
        forms = {
            "spaced": payload(CallerNumber="+358 50 123 1234", UserName="Agent"),
            "national": payload(Caller={"Number": "0501231234"}),
            "plain": payload(ani="+358501231234"),
            "other": payload(CallerNumber="+358501231235"),
        }
        for key, body in forms.items():
            stored = dataclasses.replace(event(key, payload=body), headers=b'[["user-agent", "x"]]')
            await inbox.append(stored, ["a"])
        await finish(inbox, "a", "done")  # every one done...
        await inbox.append(event("dead", payload=payload(from_number="+358501231234")), ["b"])
        await finish(inbox, "b", "dead")  # ...but this one dead
        await inbox.append(event("pending", payload=payload(phone="050 123 1234")), ["a"])

        query = PersonalDataQuery(phones=("+358501231234",), region="FI")
        ids = matching(admin, query)
        wanted = {find(admin, k).id for k in ("spaced", "national", "plain", "dead", "pending")}
        assert set(ids) == wanted
        assert admin.erase(ids) == {"done": 3, "dead": 1, "pending": 1}
        for key in ("spaced", "national", "plain", "dead", "pending"):
            record = admin.get(str(find(admin, key).id))
            assert record is not None
            assert record.payload == ERASED and record.headers == ()
            assert all(a.error is None for a in record.history)
        assert states(find(admin, "dead")) == {"b": "discarded"}
        assert states(find(admin, "pending")) == {"a": "discarded"}
        assert states(find(admin, "spaced")) == {"a": "done"}
        other = admin.get(str(find(admin, "other").id))
        assert other is not None and other.payload == forms["other"]
        assert matching(admin, query) == []  # nothing of theirs is left to find
        # The provider retries an erased event: a duplicate, nothing to deliver.
        assert await inbox.append(event("pending"), ["a"]) is False
        assert await inbox.claim("a", 10) == []
        assert admin.list(EventFilter(states=())) != []

    store.run(body)


def test_erasure_by_address_field_and_call(store: Store) -> None:
    async def body() -> None:
        inbox = await store.open()
        admin = store.admin()
        await inbox.append(event("mail", payload=payload(Email="Jane.Doe@Example.com")), ["a"])
        await inbox.append(event("field", payload=payload(UserId="u-17", Name="Jane")), ["a"])
        call = event("call", order_key="call:c-42", payload=payload(CallId="c-42"))
        await inbox.append(call, ["a"])
        await inbox.append(event("none", payload=payload(UserId="u-18")), ["a"])
        query = PersonalDataQuery(
            emails=("jane.doe@example.com",), fields=(("userid", "u-17"),), calls=("c-42",)
        )
        ids = matching(admin, query)
        assert set(ids) == {find(admin, k).id for k in ("mail", "field", "call")}
        assert admin.erase(ids) == {"pending": 3}
        assert [
            k for k in ("mail", "field", "call", "none") if find(admin, k).payload == ERASED
        ] == [
            "mail",
            "field",
            "call",
        ]

    store.run(body)


def test_a_delivery_erased_while_held_stays_discarded_whatever_its_handler_reports(
    store: Store,
) -> None:
    async def body() -> None:
        inbox = await store.open()
        admin = store.admin()
        for key in ("retried", "finished", "buried"):
            await inbox.append(event(key, payload=payload(CallerNumber="+358501231234")), ["a"])
        held = {d.dedup_key: d for d in await inbox.claim("a", 10)}
        assert admin.erase([d.id for d in held.values()]) == {"in_progress": 3}
        # The dispatcher, still running the handlers, reports their outcomes afterwards.
        error = "ValueError: could not file +358501231234"
        await inbox.retry_later(held["retried"].key, failed(1, error), time.time() + 60)
        await inbox.complete([Completion(held["finished"].id, "a", time.time(), 0.01)])
        await inbox.bury(held["buried"].key, failed(1, error, last=True))
        for key in held:
            record = find(admin, key)
            assert states(record) == {"a": "discarded"}, key
            assert record.payload == ERASED
            assert all(d.last_error is None for d in record.deliveries)
            assert [a.error for a in record.history if a.error] == [], key
        # ...and a retry is not made: the process no longer holds it.
        assert await inbox.held([d.key for d in held.values()]) == set()

    store.run(body)

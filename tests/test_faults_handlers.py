"""Handler faults not covered by test_reliability.py: a hang that ends in a successful retry,
and a hang that ignores cancellation."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.conftest import Harness
from tests.support.faults import (
    deliver,
    inbox_states,
    provider_receiver,
    settled_states,
    stop_cleanly,
)
from tests.support.provider_cases import PROVIDER_CASES, PROVIDERS, ProviderCase

DONE, DEAD = 2, 3
ORDERED = [pytest.param(c, id=c.name) for c in PROVIDER_CASES if c.order_field is not None]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_hang_is_cut_off_by_the_timeout_and_the_retry_completes_the_event(
    harness: Harness, provider: ProviderCase
) -> None:
    receiver = provider_receiver(
        harness, provider, "--handler-timeout", "0.5", "--max-attempts", "3",
        env={"RECORD_HANG_ONCE_MARK": "HangOnce"},
        handler="tests.support.stubborn:Stubborn",
    )  # fmt: skip
    request = provider.marked(receiver.url(provider.path), "HangOnce")
    key = provider.dedup_key(request)
    started = time.monotonic()
    with harness.client() as client:
        assert deliver(client, request).status_code == 200
    harness.wait_for(lambda: harness.handled_keys() == [key], what="the retry to succeed")
    assert time.monotonic() - started < 5
    records = [r for r in harness.records() if r["key"] == key]
    assert [(r["phase"], r.get("attempt")) for r in records] == [
        ("start", 0),
        ("failed", None),
        ("start", 1),
        ("end", 1),
    ]
    assert "timed out after 0.5s" in str(records[1]["error"]) and records[1]["final"] is False
    assert settled_states(receiver.inbox, {key: DONE}) == {key: DONE}
    stop_cleanly(receiver)


@pytest.mark.parametrize("provider", ORDERED)
def test_a_hang_that_ignores_cancellation_is_still_cut_off_and_its_call_goes_on(
    harness: Harness, provider: ProviderCase
) -> None:
    """The per-event timeout must free the lane even when the handler swallows the
    cancellation (a library catching BaseException): the event becomes a failed attempt
    (here: a dead letter) and the next event of the same call is handled."""
    assert provider.order_field is not None
    receiver = provider_receiver(
        harness, provider, "--handler-timeout", "0.5", "--max-attempts", "1",
        "--shutdown-timeout", "1",
        env={"RECORD_STUBBORN_MARK": "Stubborn"},
        handler="tests.support.stubborn:Stubborn",
    )  # fmt: skip
    call = str(uuid.uuid4())
    url = receiver.url(provider.path)
    same_call: dict[str, Any] = {provider.order_field: call}
    marked: dict[str, Any] = {**same_call, provider.note_field: "note Stubborn"}
    stuck = provider.request(url, **marked)
    after = provider.request(url, **same_call)
    stuck_key, after_key = provider.dedup_key(stuck), provider.dedup_key(after)
    with harness.client() as client:
        assert deliver(client, stuck).status_code == 200
        assert deliver(client, after).status_code == 200
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and after_key not in harness.handled_keys():
        time.sleep(0.05)
    states = inbox_states(receiver.inbox)
    receiver.kill()  # a stubborn handler may keep a graceful stop from ending (see shutdown tests)
    assert after_key in harness.handled_keys(), (
        f"5 s after a 0.5 s handler timeout the call is still blocked: inbox {states}"
    )
    assert states[stuck_key] == DEAD

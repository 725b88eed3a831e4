"""Realistic call flows with duplicates, swaps and forged tokens, played at real receivers.

Whatever the trouble, every genuine event must be handled exactly once, and the events of a
call in the order they arrived (swapped pairs stay swapped: the receiver cannot know better).
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable

from receiver.inbox.models import StoredEvent
from receiver.pytest_plugin import ReceiverFactory
from receiver.scenarios import PlannedRequest, ScenarioOptions, Summary, build_stream, run_stream
from receiver.sender import EnreachWire, Sender
from tests.conftest import SECRET, Harness

TROUBLE = ScenarioOptions(
    calls=30, seed=4, duplicate_ratio=0.15, out_of_order_ratio=0.15, wrong_token_ratio=0.1
)


def play(stream: list[PlannedRequest], sender: Callable[[], Sender]) -> Summary:
    """Send `stream` as `receiver scenario` would and return its summary."""

    async def run() -> Summary:
        async with sender() as opened:
            return await run_stream(stream, opened, concurrency=8)

    return asyncio.run(run())


def unique_events(stream: list[PlannedRequest]) -> int:
    """How many distinct genuine events `stream` sends."""
    return sum(not p.wrong_token and not p.duplicate for p in stream)


def check_exactly_once_in_arrival_order(
    stream: list[PlannedRequest], summary: Summary, handled: list[str]
) -> None:
    """`handled` (dedup keys in handling order) holds each genuine event once, calls in order."""
    assert summary.ok, summary.render()
    assert summary.duplicates_sent and summary.out_of_order and summary.rejected_as_expected
    genuine = [p for p in stream if not p.wrong_token and not p.duplicate]
    assert Counter(handled) == Counter(p.event_id.lower() for p in genuine)
    planned_calls: defaultdict[str, list[str]] = defaultdict(list)
    for planned in genuine:
        if planned.payload.get("CallId"):
            planned_calls[str(planned.payload["CallId"])].append(planned.event_id.lower())
    position = {key: n for n, key in enumerate(handled)}
    for call, keys in planned_calls.items():
        assert sorted(keys, key=position.__getitem__) == keys, f"call {call} out of order"


def test_a_receiver_process_handles_each_event_once(harness: Harness) -> None:
    receiver = harness.receiver()
    stream = build_stream(TROUBLE)
    wire = EnreachWire(secret=SECRET)
    url, ca = receiver.url(), harness.certs.ca
    summary = play(stream, lambda: Sender(url, provider=wire, verify=ca, retry_delay=0.1))
    unique = unique_events(stream)
    harness.wait_for(lambda: len(harness.handled_keys()) >= unique, what=f"{unique} events")
    assert receiver.stop() == 0
    check_exactly_once_in_arrival_order(stream, summary, harness.handled_keys())


class Keys:
    """Records the dedup key of every event it handles."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    async def handle(self, event: StoredEvent) -> None:
        """Remember the event."""
        self.keys.append(event.dedup_key)

    async def failed(self, event: StoredEvent, error: BaseException, *, final: bool) -> None:
        """Never called: recording cannot fail."""


def test_an_in_process_receiver_handles_each_event_once(webhook_receiver: ReceiverFactory) -> None:
    recorder = Keys()
    rx = webhook_receiver(recorder, workers=8)
    stream = build_stream(TROUBLE)
    summary = play(stream, rx.async_sender)
    rx.wait_for_handled(unique_events(stream))
    rx.stop()
    check_exactly_once_in_arrival_order(stream, summary, recorder.keys)

"""Several subscribers on one endpoint, end to end: real `receiver serve` processes with real
TLS, realistic call flows from the mock sender, two Python subscribers and one forwarding
subscriber posting to a service that checks every Standard Webhooks signature.

Each subscriber gets every event it wants exactly once (at least once across a kill -9), in
each call's order, and one failing subscriber neither delays nor repeats another's events.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from receiver.certs import DevCertificates
from receiver.inbox.base import InboxAdmin, open_admin
from receiver.inbox.models import EventFilter, State
from receiver.scenarios import PlannedRequest, ScenarioOptions, Summary, build_stream, run_stream
from receiver.sender import Delivery, EnreachWire, Sender, SyncSender
from receiver.testing import ReceiverProcess
from tests.conftest import Harness, run_cli
from tests.support.certs import write_certificates
from tests.support.faults import assert_no_unhandled_errors
from tests.support.subscribers import (
    FLAKY_ERROR,
    assert_call_order,
    assert_every_one,
    assert_exactly_once,
    assert_lane_order,
    read_handled,
    subscribers_config,
)
from tests.support.webhook_sink import Answer, WebhookSink

TOKEN = "Tq8-e2e-enreach-token-41c7d2"
FORWARD_SECRET = "whsec_" + base64.b64encode(b"e2e forwarding key, 32 bytes....").decode()
THREE = ("crm", "flaky", "sink")


@pytest.fixture
def sink(tls_ca: DevCertificates) -> Iterator[WebhookSink]:
    """A service that verifies signatures made with FORWARD_SECRET, trusted through tls_ca."""
    with WebhookSink(FORWARD_SECRET, tls_ca) as service:
        yield service


@pytest.fixture
def receivers(tmp_path: Path, tls_ca: DevCertificates, sink: WebhookSink) -> Iterator[Harness]:
    """`harness`, but stopping its receivers before `sink` stops: a receiver still holding
    kept-alive connections to the sink would hold up the sink's stop."""
    harness = Harness(tmp_path, tls_ca)
    try:
        yield harness
    finally:
        harness.close()


def start(
    harness: Harness, config: str, *args: str, env: dict[str, str] | None = None
) -> ReceiverProcess:
    """`receiver serve` with `config` (TOML) and the subscribers' variables."""
    path = harness.tmp_path / "receiver.toml"
    path.write_text(config)
    environment = {
        "E2E_ENREACH_TOKEN": TOKEN,
        "E2E_FORWARD_SECRET": FORWARD_SECRET,
        "SUBSCRIBERS_RECORD_FILE": str(harness.tmp_path / "subscribers.jsonl"),
        "SUBSCRIBERS_FLAKY_FLAG": str(harness.tmp_path / "crm-down.flag"),
        **(env or {}),
    }
    return harness.receiver("--config", str(path), *args, env=environment, handler=None)


def config(sink: WebhookSink | None, ca: Path, **options: object) -> str:
    """Three subscribers (crm, flaky, sink) on the Enreach endpoint, token E2E_ENREACH_TOKEN."""
    return subscribers_config(
        forward=sink.url if sink is not None else None,
        ca_file=ca,
        secret_env="E2E_ENREACH_TOKEN",
        **options,  # type: ignore[arg-type]  # keyword arguments of subscribers_config
    )


def stream_of(calls: int, seed: int) -> list[PlannedRequest]:
    """Realistic Enreach flows with duplicates and forged copies mixed in."""
    return build_stream(
        ScenarioOptions(calls=calls, seed=seed, duplicate_ratio=0.05, wrong_token_ratio=0.02)
    )


def genuine_keys(stream: list[PlannedRequest]) -> set[str]:
    """The dedup keys of every event the receiver must store."""
    return {p.event_id.lower() for p in stream if not p.wrong_token}


def planned_calls(stream: list[PlannedRequest]) -> dict[str, list[str]]:
    """CallId to the dedup keys of its events, in sending order (each once)."""
    calls: dict[str, list[str]] = {}
    for p in stream:
        call = p.payload.get("CallId")
        if call and not p.wrong_token and not p.duplicate:
            calls.setdefault(str(call), []).append(p.event_id.lower())
    return calls


def play(
    receiver: ReceiverProcess,
    ca: Path,
    stream: list[PlannedRequest],
    *,
    on_delivery: Callable[[PlannedRequest, Delivery], None] | None = None,
    retries: int = 0,
) -> Summary:
    """Send `stream` to the receiver's Enreach endpoint; the sender's summary."""

    async def main() -> Summary:
        async with Sender(
            receiver.url("/enreach"),
            provider=EnreachWire(secret=TOKEN),
            verify=ca,
            retries=retries,
            retry_delay=0.2,
            timeout=5.0,
        ) as sender:
            return await run_stream(
                stream, sender, rate=150.0, concurrency=8, on_delivery=on_delivery
            )

    return asyncio.run(main())


def admin(receiver: ReceiverProcess) -> InboxAdmin:
    """The receiver's inbox, as operators see it."""
    return open_admin(str(receiver.inbox))


def wait_all_finished(
    harness: Harness,
    receiver: ReceiverProcess,
    counts: dict[str, int],
    *,
    timeout: float = 30.0,
) -> None:
    """Wait until each subscriber has `counts[name]` deliveries done and none open."""

    harness.wait_for(
        lambda: all(finished(receiver, name, count) for name, count in counts.items()),
        timeout=timeout,
        what=f"deliveries finished: {counts}",
    )


def finished(receiver: ReceiverProcess, subscriber: str, count: int) -> bool:
    """Whether `subscriber` has `count` deliveries done or dead, and none open."""
    inbox = admin(receiver)
    try:
        states = inbox.stats().by_subscriber.get(subscriber, {})
    finally:
        inbox.close()
    if states.get("pending", 0) or states.get("in_progress", 0):
        return False
    return states.get("done", 0) + states.get("dead", 0) >= count


def arrival(receiver: ReceiverProcess) -> dict[str, tuple[int, str | None]]:
    """Dedup key to inbox id (arrival order) and order key, for every stored event."""
    inbox = admin(receiver)
    try:
        deliveries = inbox.list(EventFilter(), limit=1_000_000)
    finally:
        inbox.close()
    return {d.dedup_key: (d.id, d.order_key) for d in deliveries}


def assert_secrets_absent(text: str, where: str) -> None:
    """Neither the Enreach token nor the forwarding secret (nor its key) is in `text`."""
    key = FORWARD_SECRET.removeprefix("whsec_")
    for secret, name in ((TOKEN, "Enreach token"), (key, "forwarding secret")):
        assert secret not in text, f"the {name} is in {where}"


def stored_errors(receiver: ReceiverProcess) -> list[str]:
    """Every error text the inbox keeps: each delivery's last error and every attempt's."""
    inbox = admin(receiver)
    try:
        errors: list[str] = []
        for delivery in inbox.list(EventFilter(), limit=1_000_000):
            errors.append(delivery.last_error or "")
            record = inbox.get(str(delivery.id))
            assert record is not None
            errors.extend(a.error or "" for a in record.history)
    finally:
        inbox.close()
    return errors


# -- three subscribers, one failing at first ------------------------------------------------


def test_three_subscribers_each_get_every_event_once_in_call_order(
    receivers: Harness, sink: WebhookSink, tls_ca: DevCertificates
) -> None:
    harness = receivers
    flag = harness.tmp_path / "crm-down.flag"
    flag.touch()
    receiver = start(
        harness,
        config(sink, tls_ca.ca),
        "--workers", "4", "--max-attempts", "1000", "--backoff-max", "0.3",
    )  # fmt: skip
    stream = stream_of(calls=40, seed=20240611)
    expected = genuine_keys(stream)
    assert len(expected) > 250
    acknowledged: set[str] = set()
    flaky_while_down: list[int] = []
    crm_while_down: list[int] = []

    def on_delivery(planned: PlannedRequest, delivery: Delivery) -> None:
        if delivery.acknowledged and not planned.wrong_token:
            acknowledged.add(planned.event_id)
            if len(acknowledged) == len(expected) // 2 and flag.exists():
                flaky_while_down.append(len(read_handled(records, "flaky")))
                crm_while_down.append(len(read_handled(records, "crm")))
                flag.unlink()

    records = harness.tmp_path / "subscribers.jsonl"
    summary = play(receiver, tls_ca.ca, stream, on_delivery=on_delivery)
    assert summary.ok, summary
    assert flaky_while_down == [0], "the flaky subscriber handled events while it was down"
    # ... and the others kept pace meanwhile: its failures did not hold them up.
    assert crm_while_down[0] >= len(expected) // 4, (crm_while_down, len(expected))
    wait_all_finished(harness, receiver, dict.fromkeys(THREE, len(expected)))

    arrived = arrival(receiver)
    calls = planned_calls(stream)
    for name in ("crm", "flaky"):
        keys = [h.key for h in read_handled(records, name)]
        assert_exactly_once(keys, expected, name)
        assert_lane_order(keys, arrived, name)
        assert_call_order(keys, calls, name)
    got = sink.received
    assert got and all(r.verified for r in got), "a forwarded request did not verify"
    assert all(r.status == 204 for r in got)
    sink_keys = [r.event_id for r in got]
    assert_exactly_once(sink_keys, expected, "sink")
    assert_lane_order(sink_keys, arrived, "sink")
    assert_call_order(sink_keys, calls, "sink")
    assert len({r.webhook_id for r in got}) == len(expected)
    assert all(r.attempt == 1 for r in got)
    for request in got:  # the provider's credential stays with the receiver
        assert_secrets_absent(repr(request.headers), "a forwarded request's headers")

    # The history: retries with the error for the flaky subscriber only.
    inbox = admin(receiver)
    try:
        retried = 0
        sample: int | None = None
        for event_id, _ in arrived.values():
            record = inbox.get(str(event_id))
            assert record is not None
            by_name = {d.subscriber: d for d in record.deliveries}
            assert set(by_name) == set(THREE)
            assert all(d.state == State.DONE for d in record.deliveries)
            for name in ("crm", "sink"):
                history = [a for a in record.history if a.subscriber == name]
                assert [(a.number, a.outcome) for a in history] == [(1, "done")], (name, history)
                assert by_name[name].attempts == 0 and by_name[name].last_error is None
            flaky = [a for a in record.history if a.subscriber == "flaky"]
            failures = flaky[:-1]
            assert [a.outcome for a in failures] == ["retry"] * len(failures)
            assert (flaky[-1].outcome, flaky[-1].number) == ("done", len(failures) + 1)
            assert by_name["flaky"].attempts == len(failures)
            for attempt in failures:
                assert attempt.error is not None
                assert attempt.error.startswith(f"ConnectionError: {FLAKY_ERROR}"), attempt.error
            if failures:
                retried += 1
                sample = event_id
    finally:
        inbox.close()
    assert retried >= 5, "the flaky subscriber's failures left no history"

    # `receiver inbox show` tells the same story for one of them.
    shown = run_cli(
        "inbox", "--inbox", str(receiver.inbox), "show", str(sample), cwd=harness.tmp_path
    )
    assert shown.returncode == 0, shown.stderr
    failed_lines = [line for line in shown.stdout.splitlines() if " retry " in line]
    assert failed_lines and all("flaky" in line for line in failed_lines), shown.stdout
    assert FLAKY_ERROR in shown.stdout
    receiver.stop()
    assert_no_unhandled_errors(receiver.log)


# -- kill -9 in the middle of a run -------------------------------------------------------


def test_kill_9_mid_run_loses_nothing_for_any_subscriber(
    receivers: Harness, sink: WebhookSink, tls_ca: DevCertificates
) -> None:
    harness = receivers
    flag = harness.tmp_path / "crm-down.flag"
    flag.touch()  # the flaky subscriber is retrying at the kill, and for a while after
    receiver = start(
        harness,
        config(sink, tls_ca.ca),
        "--workers", "4", "--max-attempts", "1000",
        env={"SUBSCRIBERS_SLEEP": "0.04"},  # slower than the sender: a backlog builds
    )  # fmt: skip
    stream = stream_of(calls=60, seed=99)
    expected = genuine_keys(stream)
    acknowledged: set[str] = set()
    outcome: list[Summary | BaseException] = []

    def on_delivery(planned: PlannedRequest, delivery: Delivery) -> None:
        if delivery.acknowledged and not planned.wrong_token:
            acknowledged.add(planned.event_id)

    def run() -> None:
        try:
            outcome.append(play(receiver, tls_ca.ca, stream, on_delivery=on_delivery, retries=60))
        except BaseException as exc:  # reported by the test thread
            outcome.append(exc)

    records = harness.tmp_path / "subscribers.jsonl"
    sending = threading.Thread(target=run, name="scenario-sender")
    sending.start()
    try:
        harness.wait_for(
            lambda: len(acknowledged) >= len(expected) * 2 // 5, what="40% acknowledged"
        )
        before = {name: len(read_handled(records, name)) for name in ("crm", "flaky")}
        before["sink"] = len(sink.received)
        stored_at_kill = len(acknowledged)
        killed_at = time.time()
        receiver.kill()
        receiver.start()
        time.sleep(1.0)
        flag.unlink()
    finally:
        sending.join(60)
    assert outcome and isinstance(outcome[0], Summary), outcome
    assert outcome[0].ok, outcome[0]
    # The kill really came mid-run: some, not all, of the events were handled.
    assert before["flaky"] == 0
    assert all(0 < before[name] < len(expected) for name in ("crm", "sink")), before
    # flaky's backlog at the kill is every event acknowledged by then (it had handled none);
    # crm's may be small on a slow machine, where the sender is no faster than crm.
    assert stored_at_kill >= len(expected) * 2 // 5
    wait_all_finished(harness, receiver, dict.fromkeys(THREE, len(expected)))

    arrived = arrival(receiver)
    repeats: dict[str, int] = {}
    handled = {name: [h.key for h in read_handled(records, name)] for name in ("crm", "flaky")}
    handled["sink"] = [r.event_id for r in sink.received if r.verified]
    for name, keys in handled.items():
        assert_every_one(keys, expected, name)
        assert_lane_order(keys, arrived, name)
        repeats[name] = len(keys) - len(set(keys))
    # Only what was in progress at the kill (4 workers each, plus completions not committed
    # yet) may run twice: a handful, not a replay of what was done.
    assert all(count <= 16 for count in repeats.values()), repeats
    inbox = admin(receiver)
    try:
        stats = inbox.stats()
        # The flaky subscriber's failures before the kill are kept, and counting goes on
        # after it: one history per delivery, numbered 1, 2, 3, ... to the attempt that worked.
        spanning = 0
        for event_id, _ in arrived.values():
            record = inbox.get(str(event_id))
            assert record is not None
            flaky = [a for a in record.history if a.subscriber == "flaky"]
            numbers = [a.number for a in flaky]
            assert numbers == list(range(1, len(flaky) + 1)), (event_id, flaky)
            assert [a.outcome for a in flaky] == ["retry"] * (len(flaky) - 1) + ["done"]
            if flaky[0].started_at < killed_at < flaky[-1].started_at:
                spanning += 1
    finally:
        inbox.close()
    assert spanning > 0, "no flaky delivery failed before the kill and succeeded after it"
    for name in THREE:
        assert stats.by_subscriber[name]["done"] == len(expected), stats.by_subscriber
        assert stats.by_subscriber[name]["dead"] == 0, stats.by_subscriber


# -- forwarding through the dispatcher -------------------------------------------------------

ECHO = f"bad request: signing key {FORWARD_SECRET}, token {TOKEN}; queue 'Myynti 2' unknown"


@pytest.mark.parametrize(
    ("answers", "outcome", "history"),
    [
        pytest.param([Answer(400, body=ECHO.encode() + b"x" * 5000)], "dead", ["dead"], id="400"),
        pytest.param(
            [Answer(500, body=b"database restarting")], "done", ["retry", "done"], id="500-then-200"
        ),
        pytest.param(
            [Answer(429, headers=(("retry-after", "2"),), body=b"slow down")],
            "done",
            ["retry", "done"],
            id="429-retry-after-2",
        ),
    ],
)
def test_a_forwarding_subscriber_acts_on_the_answer(
    receivers: Harness,
    sink: WebhookSink,
    tls_ca: DevCertificates,
    answers: list[Answer],
    outcome: str,
    history: list[str],
) -> None:
    harness = receivers
    receiver = start(
        harness,
        config(sink, tls_ca.ca, handlers=()),
        "--max-attempts", "5", "--backoff-max", "10", "--log-level", "debug",
    )  # fmt: skip
    with SyncSender(
        receiver.url("/enreach"), provider=EnreachWire(secret=TOKEN), verify=tls_ca.ca, retries=0
    ) as sender:
        payload = {
            "EventType": "QueueCallInUserAllocated",
            "Id": "5d2e7c1a-0b7e-4c55-9a53-1f6f2f0a9e11",
            "CallId": "7f0e1d2c-3b4a-4958-8776-a5b4c3d2e1f0",
            "QueueName": "Myynti 2",
        }
        sink.script(payload["Id"], *answers)
        assert sender.send(payload).acknowledged
    wait_all_finished(harness, receiver, {"sink": 1})
    time.sleep(0.5)  # a wrongly scheduled further attempt would show by now

    got = sink.matching(payload["Id"])
    assert [r.attempt for r in got] == list(range(1, len(history) + 1))
    assert all(r.verified for r in got)
    assert len({r.webhook_id for r in got}) == 1, "the webhook-id changed between attempts"
    assert [r.status for r in got] == [a.status for a in answers] + [204] * (
        len(got) - len(answers)
    )
    inbox = admin(receiver)
    try:
        [stored] = inbox.list(EventFilter(subscriber="sink"))
        record = inbox.get(str(stored.id))
    finally:
        inbox.close()
    assert record is not None
    assert [d.state.label for d in record.deliveries] == [outcome]
    assert [a.outcome for a in record.history] == history
    first = record.history[0]
    assert first.error is not None
    verdict = "PermanentError" if outcome == "dead" else "RetryLater"
    assert first.error.startswith(f"{verdict}: HTTP {answers[0].status} from {sink.url}: ")
    if answers[0].status == 400:
        assert "bad request: signing key [secret], token [secret]; queue 'Myynti 2'" in first.error
        assert len(first.error) < 400, "more than the start of the answer's body was kept"
    else:
        assert answers[0].body.decode() in first.error
    if answers[0].status == 429:
        gap = got[1].at - got[0].at
        assert gap >= 1.95, f"retried {gap:.2f}s after a Retry-After of 2 s"
        assert gap < 6, f"retried only {gap:.2f}s after a Retry-After of 2 s"
    if outcome == "dead":
        # Once the service is fixed, a replay delivers it, under the same webhook-id.
        inbox = admin(receiver)
        try:
            assert inbox.replay(EventFilter(subscriber="sink"), ids=[str(stored.id)]) == 1
        finally:
            inbox.close()
        harness.wait_for(
            lambda: len(sink.matching(payload["Id"])) == 2 and finished(receiver, "sink", 1),
            what="the replayed delivery done",
        )
        again = sink.matching(payload["Id"])[1]
        assert (again.status, again.verified, again.webhook_id) == (204, True, got[0].webhook_id)
        got = sink.matching(payload["Id"])
    # The provider's credential is never forwarded, and no secret is logged or stored.
    for request in got:
        assert_secrets_absent(repr(request.headers), "a forwarded request's headers")
    receiver.stop()
    assert_secrets_absent(receiver.log, "the receiver's log")
    for error in stored_errors(receiver):
        assert_secrets_absent(error, "a stored error")
    assert_no_unhandled_errors(receiver.log)


def test_a_certificate_from_another_ca_is_retried_and_named(
    harness: Harness, tls_ca: DevCertificates
) -> None:
    other = write_certificates(harness.tmp_path / "other-ca")
    with WebhookSink(FORWARD_SECRET, other) as stranger:
        receiver = start(
            harness,
            config(stranger, tls_ca.ca, handlers=()),
            "--max-attempts", "100", "--backoff-max", "0.2", "--log-level", "debug",
        )  # fmt: skip
        try:
            with SyncSender(
                receiver.url("/enreach"), provider=EnreachWire(secret=TOKEN), verify=tls_ca.ca
            ) as sender:
                payload = {"EventType": "QueueCallInComing", "CallId": "c-1"}
                assert sender.send(payload).acknowledged

            def retried_twice() -> bool:
                inbox = admin(receiver)
                try:
                    [delivery] = inbox.list(EventFilter(subscriber="sink"))
                finally:
                    inbox.close()
                return delivery.attempts >= 2

            harness.wait_for(retried_twice, what="two failed attempts")
        finally:
            receiver.stop()
    inbox = admin(receiver)
    try:
        [delivery] = inbox.list(EventFilter(subscriber="sink"))
        record = inbox.get(str(delivery.id))
    finally:
        inbox.close()
    assert record is not None
    assert record.deliveries[0].state == State.PENDING  # released at the stop, not dead
    failures = [a for a in record.history if a.subscriber == "sink"]
    assert len(failures) >= 2 and all(a.outcome == "retry" for a in failures)
    for attempt in failures:
        assert attempt.error is not None
        assert attempt.error.startswith("RetryLater: TLS error with "), attempt.error
        assert "certificate verify failed" in attempt.error, attempt.error
    assert stranger.received == [], "a request got through an untrusted certificate"
    assert_secrets_absent(receiver.log, "the receiver's log")
    for error in stored_errors(receiver):
        assert_secrets_absent(error, "a stored error")
    assert_no_unhandled_errors(receiver.log)


# -- events filters ----------------------------------------------------------------------


def test_a_subscriber_gets_only_the_event_types_it_asks_for(
    receivers: Harness, sink: WebhookSink, tls_ca: DevCertificates
) -> None:
    harness = receivers
    receiver = start(
        harness,
        config(
            sink,
            tls_ca.ca,
            handlers=(("crm", "Recorder"), ("queues", "Recorder")),
            events={"queues": ["Queue*"], "sink": ["User*", "CallbackChanged"]},
        ),
    )
    stream = stream_of(calls=12, seed=5)
    summary = play(receiver, tls_ca.ca, stream)
    assert summary.ok, summary
    types = {p.event_id.lower(): p.event_type for p in stream if not p.wrong_token}
    queue_events = {k for k, t in types.items() if t.startswith("Queue")}
    sink_events = {k for k, t in types.items() if t.startswith("User") or t == "CallbackChanged"}
    assert queue_events and sink_events and len(queue_events) < len(types)
    wait_all_finished(
        harness,
        receiver,
        {"crm": len(types), "queues": len(queue_events), "sink": len(sink_events)},
    )
    records = harness.tmp_path / "subscribers.jsonl"
    assert_exactly_once([h.key for h in read_handled(records, "crm")], set(types), "crm")
    assert_exactly_once([h.key for h in read_handled(records, "queues")], queue_events, "queues")
    assert_exactly_once([r.event_id for r in sink.received], sink_events, "sink")
    inbox = admin(receiver)
    try:
        counts = inbox.stats().by_subscriber
    finally:
        inbox.close()
    # An event a subscriber does not want gets no delivery for it at all.
    assert sum(counts["queues"].values()) == len(queue_events), counts
    assert sum(counts["sink"].values()) == len(sink_events), counts

"""examples/sms_feedback end to end: the real receiver (`receiver serve` with receiver.toml),
Enreach calls from `receiver scenario` and the mock sender, and the stand-in SMS gateway.

What a caller would notice is checked at the gateway: exactly one SMS per answered outside
call, none for unanswered calls or hidden and internal numbers, none before the delay or in
quiet hours, and none twice whatever is redelivered, restarted or killed mid-send.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from examples.sms_feedback.gateway import HttpSmsGateway
from examples.sms_feedback.local import ROOT, LocalStack, answered_call, quiet_window
from examples.sms_feedback.policy import QuietHours, refusal
from examples.sms_feedback.sender import FeedbackSender
from examples.sms_feedback.settings import FeedbackSettings
from examples.sms_feedback.standin import Message, StandInGateway
from examples.sms_feedback.store import FeedbackStore
from receiver.scenarios import ScenarioOptions, build_stream
from tests.support.doc_blocks import shell_commands

README = "examples/sms_feedback/README.md"


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout:g} s")
        time.sleep(0.05)


@pytest.fixture
def stack_factory(tmp_path: Path) -> Iterator[Callable[..., LocalStack]]:
    made: list[LocalStack] = []

    def make(**kwargs: Any) -> LocalStack:
        stack = LocalStack(tmp_path / f"stack{len(made)}", **kwargs)
        made.append(stack)
        return stack.start()

    yield make
    for stack in made:
        stack.close()


def by_key(messages: list[Message]) -> Counter[str | None]:
    return Counter(message.key for message in messages)


def test_one_sms_per_answered_outside_call(stack_factory: Callable[..., LocalStack]) -> None:
    stack = stack_factory(sms={"SMS_DELAY_SECONDS": "3"})
    options = ScenarioOptions(calls=10, flows=("inbound", "transfer", "overflow"), seed=11)
    plan = [p for p in build_stream(options) if p.event_type.startswith("QueueCallIn")]
    callers = {p.flow: p.payload["CallerNumber"] for p in plan}
    calls = {p.flow: p.payload["CallId"] for p in plan}
    answered = {p.flow for p in plan if p.flow_kind in ("inbound", "transfer")}
    assert answered and len(answered) < len(callers)  # both kinds are in the stream

    # The platform's retries: events twice with the same Id, pairs swapped, forged copies.
    stack.scenario(
        "--calls", "10", "--flows", "inbound,transfer,overflow", "--seed", "11",
        "--duplicate-ratio", "0.5", "--out-of-order-ratio", "0.3", "--wrong-token-ratio", "0.1",
    )  # fmt: skip
    # Answered calls that must get nothing: hidden, anonymous, an extension, a short
    # number, the company's own number (SMS_INTERNAL_PREFIXES=+35810).
    for caller in ("", "anonymous", "2345", "16100", "+358 10 123 4567"):
        for payload in answered_call(caller):
            stack.send(payload)
    # One call whose events come again with new Ids (the inbox cannot tell them apart).
    timed = answered_call("+358401234567", queue="Laskutus")
    for payload in timed:
        stack.send(payload)
    ended = time.time()
    for payload in answered_call("+358401234567", queue="Laskutus"):
        stack.send({**payload, "CallId": timed[0]["CallId"]})

    time.sleep(2.0)  # well inside the 3 s delay
    assert stack.gateway.messages == []
    expected = {calls[flow] for flow in answered} | {timed[0]["CallId"]}
    wait_for(
        "an SMS per answered outside call", lambda: len(stack.gateway.messages) >= len(expected)
    )
    time.sleep(1.5)  # room for any SMS that should not come
    messages = stack.gateway.messages
    assert set(by_key(messages)) == expected
    assert all(count == 1 for count in by_key(messages).values())
    assert stack.gateway.requests == len(expected)
    to = {message.key: message.to for message in messages}
    assert {to[calls[flow]] for flow in answered} == {callers[flow] for flow in answered}
    late = next(m for m in messages if m.key == timed[0]["CallId"])
    assert late.to == "+358401234567"
    assert late.received_at >= ended + 3.0  # not before the delay
    assert late.text.startswith("Thank you for calling Laskutus.")  # the template's $queue
    assert late.text.endswith(f"/c/{timed[0]['CallId']}")  # and $call

    states = Counter(row.state for row in stack.rows())
    assert states == {"sent": len(expected), "skipped": 5, "open": len(callers) - len(answered)}
    log = stack.receiver.log
    assert "questionnaire sent to +**********67" in log
    assert not any(callers[flow] in log for flow in callers)
    assert "+358401234567" not in log


def test_restart_and_crash_send_nothing_twice(stack_factory: Callable[..., LocalStack]) -> None:
    # The gateway takes the first message, then keeps its answer back: the receiver dies
    # mid-send, and its successor must not text that caller again.
    stack = stack_factory(sms={"SMS_DELAY_SECONDS": "2"}, hold_first=6.0)
    first = answered_call("+358501111111")
    for payload in first:
        stack.send(payload)
    wait_for("the first SMS at the gateway", lambda: len(stack.gateway.messages) == 1)
    stack.crash_and_restart()
    assert [row.state for row in stack.rows()] == ["sending"]

    # An SMS due when the receiver is killed is sent once it is back, once.
    second = answered_call("+358502222222")
    for payload in second:
        stack.send(payload)
    wait_for("the second call scheduled", lambda: stack.rows()[-1].state == "due")
    stack.crash_and_restart()
    wait_for("both SMS sent", lambda: [r.state for r in stack.rows()] == ["sent", "sent"], 40)

    # The provider redelivers after a restart: same Ids, and new Ids for the same calls.
    stack.restart()
    for payload in [*first, *second]:
        stack.send(payload)
        stack.send({**payload, "Id": f"{payload['Id'][:-4]}beef"})
    time.sleep(2.5)  # delay and a few polls: room for a duplicate to appear
    messages = stack.gateway.messages
    assert [m.to for m in messages] == ["+358501111111", "+358502222222"]
    assert stack.gateway.requests == 3  # the cut-short send tried again, with the same key
    assert {row.message_id for row in stack.rows()} == {"msg_0001", "msg_0002"}


def test_quiet_hours_hold_the_sms_until_they_end(
    stack_factory: Callable[..., LocalStack],
) -> None:
    until = (datetime.now(UTC) + timedelta(seconds=9)).replace(microsecond=0)
    stack = stack_factory(sms={"SMS_DELAY_SECONDS": "0", "SMS_QUIET_HOURS": quiet_window(until)})
    for payload in answered_call("+358403333333"):
        stack.send(payload)
    wait_for("the SMS scheduled", lambda: [r.state for r in stack.rows()] == ["due"])
    assert stack.rows()[0].due_at == until.timestamp()
    while time.time() < until.timestamp() - 0.3:
        assert stack.gateway.messages == []
        time.sleep(0.1)
    wait_for("the SMS after quiet hours", lambda: len(stack.gateway.messages) == 1)
    assert stack.gateway.messages[0].received_at >= until.timestamp()


def test_a_gateway_that_cannot_deduplicate_is_never_asked_twice(tmp_path: Path) -> None:
    with StandInGateway("token") as gateway:
        env = {
            "SMS_GATEWAY_URL": gateway.url,
            "SMS_GATEWAY_TOKEN": "token",
            "SMS_DATABASE": str(tmp_path / "sms.db"),
            "SMS_QUIET_HOURS": "off",
        }
        settings = FeedbackSettings.from_env(env)
        store = FeedbackStore(settings.database)
        store.note(
            "call-1", answered_at="1", ended_at="2", caller="+358404444444", queue="Q", now=0
        )
        store.schedule("call-1", 0.0, 0.0)
        assert [row.call_id for row in store.claim_due(1.0)] == ["call-1"]  # then it died

        class Forgetful(HttpSmsGateway):
            idempotent = False

        client = Forgetful(gateway.url, "token", sender="x")
        sender = FeedbackSender(store, client, settings, clock=lambda: 1000.0)
        assert sender.run_once() == 0
        sender.stop()
        [row] = store.rows()
        assert (row.state, row.caller) == ("unknown", "+**********44")
        assert gateway.requests == 0


@pytest.mark.parametrize(
    ("caller", "reason"),
    [
        (None, "hidden or anonymous number"),
        ("", "hidden or anonymous number"),
        ("Anonymous", "hidden or anonymous number"),
        ("2345", "internal number (an extension or short number)"),
        ("+358 10 123 4567", "internal number (an internal prefix)"),
        ("+358 40 123 4567", None),
        ("0401234567", None),
    ],
)
def test_who_gets_no_sms(caller: str | None, reason: str | None) -> None:
    assert refusal(caller, min_digits=8, internal_prefixes=("+35810",)) == reason


@pytest.mark.parametrize(
    ("local", "quiet", "allowed"),
    [
        ("2024-03-04T20:59:59", False, "2024-03-04T20:59:59"),
        ("2024-03-04T21:00:00", True, "2024-03-05T08:00:00"),
        ("2024-03-04T23:30:00", True, "2024-03-05T08:00:00"),
        ("2024-03-05T07:59:00", True, "2024-03-05T08:00:00"),
        ("2024-03-05T08:00:00", False, "2024-03-05T08:00:00"),
        ("2024-03-30T22:00:00", True, "2024-03-31T08:00:00"),  # over the DST change
    ],
)
def test_quiet_hours_over_midnight(local: str, quiet: bool, allowed: str) -> None:
    hours = QuietHours.parse("21:00-08:00", "Europe/Helsinki")
    at = datetime.fromisoformat(local).replace(tzinfo=hours.zone)
    assert hours.contains(at) is quiet
    assert hours.next_allowed(at) == datetime.fromisoformat(allowed).replace(tzinfo=hours.zone)


def test_readme_runs_as_written() -> None:
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    commands = shell_commands(README)
    assert commands, "the README has commands to run"
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"

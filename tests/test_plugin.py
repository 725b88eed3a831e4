"""The pytest plugin and `InProcessReceiver`: an integrator's end-to-end test, as they write it."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from handlers import EnreachHandler, WebServicesHandler
from handlers.engage import CallDetailsEvent
from handlers.enreach import EnreachEvent, QueueCallInArrived, QueueCallInUserConnected
from receiver.auth import SecretSet
from receiver.certs import DevCertificates
from receiver.config import EndpointConfig
from receiver.exceptions import ConfigError
from receiver.inbox.models import StoredEvent
from receiver.pytest_plugin import ReceiverFactory, SenderFactory
from receiver.testing import InProcessReceiver

pytest_plugins = ["pytester"]

INTEGRATOR_TESTS = """
from handlers import EnreachHandler


class Bridge(EnreachHandler):
    def __init__(self):
        super().__init__()
        self.calls = []

    async def on_queue_call_in_user_connected(self, event):
        self.calls.append(event.caller_number)


def test_bridge(webhook_receiver):
    bridge = Bridge()
    rx = webhook_receiver(bridge)
    rx.send("QueueCallInUserConnected", CallerNumber="+358501231234")
    rx.wait_for_handled(1)
    assert bridge.calls == ["+358501231234"]


def test_wrong_expectation(webhook_receiver):
    bridge = Bridge()
    rx = webhook_receiver(bridge)
    rx.send("QueueCallInUserConnected", CallerNumber="+358501231234")
    rx.wait_for_handled(1)
    assert bridge.calls == ["+358400000000"]


class Broken(EnreachHandler):
    async def on_any(self, event):
        raise ValueError("the CRM is down")


def test_broken_handler(webhook_receiver):
    rx = webhook_receiver(Broken())
    rx.send("QueueCallInArrived")
    rx.wait_for_handled(1)
"""


def test_an_integrator_suite_passes_and_fails_as_its_assertions_say(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nfilterwarnings = error\naddopts = -p no:cacheprovider\n")
    pytester.makepyfile(test_bridge=INTEGRATOR_TESTS)
    result = pytester.runpytest_subprocess("-v", timeout=120)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_bridge PASSED*",
            "*test_wrong_expectation FAILED*",
            "*test_broken_handler FAILED*",
            "*AssertionError: assert *'+358501231234'* == *'+358400000000'*",
            "*ValueError: the CRM is down*",
            "*got a dead letter: QueueCallInArrived #1 (attempt 3): ValueError: the CRM is down*",
        ]
    )
    assert "warnings" not in result.parseoutcomes()


class Calls(EnreachHandler):
    """Remembers the type of every event; fails the first `failures` attempts."""

    def __init__(self, failures: int = 0, delay: float = 0.0) -> None:
        super().__init__()
        self.failures = failures
        self.delay = delay
        self.seen: list[str] = []
        self.arrived: list[QueueCallInArrived] = []
        self.busy = threading.Event()

    async def on_queue_call_in_arrived(self, event: QueueCallInArrived) -> None:
        self.arrived.append(event)
        await self.on_any(event)

    async def on_any(self, event: EnreachEvent) -> None:
        self.busy.set()
        await asyncio.sleep(self.delay)
        if self.failures:
            self.failures -= 1
            raise RuntimeError("not yet")
        self.seen.append(event.event_type)


def test_events_reach_the_handler_object_decoded_and_in_order(
    webhook_receiver: ReceiverFactory,
) -> None:
    calls = Calls()
    rx = webhook_receiver(calls)
    flow = ["QueueCallInComing", "QueueCallInArrived", "QueueCallInUserAllocated"]
    for event_type in flow:
        rx.send(event_type, CallId="3f1c9a52-8d5e-4a27-b3c4-1e2f3a4b5c6d")
    rx.wait_for_handled(3)
    assert calls.seen == flow
    assert calls.arrived[0].call_id == uuid.UUID("3f1c9a52-8d5e-4a27-b3c4-1e2f3a4b5c6d")
    assert rx.handled == 3
    assert rx.failures == []


def test_a_whole_payload_can_be_sent_even_of_an_undocumented_type(
    webhook_receiver: ReceiverFactory,
) -> None:
    calls = Calls()
    rx = webhook_receiver(calls)
    rx.send({"EventType": "SomethingNew", "Id": "0b6f8c1e-5a3d-4e2f-9c7b-8a1d2e3f4a5b"})
    rx.wait_for_handled(1)
    assert calls.seen == ["SomethingNew"]


def test_a_wrong_secret_is_refused_and_nothing_is_handled(
    webhook_receiver: ReceiverFactory, webhook_sender: SenderFactory
) -> None:
    calls = Calls()
    rx = webhook_receiver(calls, secret="the right one")
    forger = webhook_sender(rx.url(), secret="a wrong one", verify=rx.ca)
    payload = {"EventType": "QueueCallInComing", "Id": "5d2c7e1a-3b4f-4c6d-8e9f-0a1b2c3d4e5f"}
    assert forger.send(payload).status == 401
    assert webhook_sender(rx.url(), secret=None, verify=rx.ca).send(payload).status == 401
    rx.send(payload)  # the refused copies did not mark the Id as seen
    rx.wait_for_handled(1)
    assert calls.seen == ["QueueCallInComing"]


def test_send_fails_the_test_unless_the_event_is_acknowledged(
    webhook_receiver: ReceiverFactory,
) -> None:
    rx = webhook_receiver(Calls())
    with pytest.raises(AssertionError, match="QueueCallInComing was not acknowledged: status 413"):
        rx.send("QueueCallInComing", allow_extra=True, Padding="x" * (2 * 1024 * 1024))


def test_a_failed_attempt_is_retried_within_milliseconds(
    webhook_receiver: ReceiverFactory,
) -> None:
    calls = Calls(failures=2)
    rx = webhook_receiver(calls)
    started = time.monotonic()
    rx.send("QueueCallInComing")
    rx.wait_for_handled(1)
    assert time.monotonic() - started < 2.0
    assert calls.seen == ["QueueCallInComing"]
    assert [(f.final, str(f.error)) for f in rx.failures] == [(False, "not yet")] * 2


def test_a_dead_letter_fails_the_wait_at_once_with_the_handler_error(
    webhook_receiver: ReceiverFactory,
) -> None:
    rx = webhook_receiver(Calls(failures=99), max_attempts=2)
    rx.send("QueueCallInComing")
    started = time.monotonic()
    with pytest.raises(AssertionError, match="dead letter: QueueCallInComing") as caught:
        rx.wait_for_handled(1, timeout=30)
    assert time.monotonic() - started < 5.0
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert str(caught.value.__cause__) == "not yet"


def test_wait_until_times_out_saying_what_the_handler_did(
    webhook_receiver: ReceiverFactory,
) -> None:
    calls = Calls()
    rx = webhook_receiver(calls)
    rx.send("QueueCallInComing")
    with pytest.raises(TimeoutError, match=r"two calls not met after 0.3s \(handled 1,"):
        rx.wait_until(lambda: len(calls.seen) == 2, 0.3, what="two calls")


def test_stop_lets_a_running_handler_finish_then_frees_port_and_thread(tmp_path: Path) -> None:
    calls = Calls(delay=0.5)
    rx = InProcessReceiver(calls, workdir=tmp_path).start()
    port = rx.port
    rx.send("QueueCallInComing")
    rx.wait_until(calls.busy.is_set, 5)
    rx.stop()
    assert calls.seen == ["QueueCallInComing"]
    assert not rx.running
    assert not [t for t in threading.enumerate() if t.name == f"receiver:{port}"]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    rx.stop()  # a second stop is harmless


def test_as_a_context_manager_it_cleans_up_its_temporary_directory() -> None:
    with InProcessReceiver(Calls()) as rx:
        workdir = rx.workdir
        assert rx.ca.is_file()
        with rx.sender() as sender:
            assert sender.send(
                {"EventType": "QueueCallInComing", "Id": str(uuid.uuid4())}
            ).acknowledged
        rx.wait_for_handled(1)
    assert not workdir.exists()


class OtherProvider:
    """A handler for a provider the in-process receiver has no endpoint for."""

    source_kind = "buzzeasy"

    async def handle(self, event: StoredEvent) -> None:
        """Never called."""

    async def failed(self, event: StoredEvent, error: BaseException, *, final: bool) -> None:
        """Never called."""


@pytest.mark.parametrize(
    ("handler", "error", "message"),
    [
        (object(), TypeError, "is not a handler: subclass handlers.EnreachHandler"),
        (OtherProvider(), ConfigError, "OtherProvider handles buzzeasy events, not enreach"),
    ],
)
def test_what_cannot_handle_enreach_events_is_refused(
    handler: object, error: type[Exception], message: str, tmp_path: Path
) -> None:
    with pytest.raises(error, match=message):
        InProcessReceiver(handler, workdir=tmp_path)  # type: ignore[arg-type]


def test_a_failed_start_up_says_so(tmp_path: Path, webhook_receiver_certs: DevCertificates) -> None:
    (tmp_path / "inbox.db").mkdir()  # the inbox cannot be opened
    rx = InProcessReceiver(Calls(), workdir=tmp_path, certs=webhook_receiver_certs)
    with pytest.raises(RuntimeError, match="failed to start") as caught:
        rx.start()
    assert isinstance(caught.value.__cause__, SystemExit)
    assert not rx.running


# -- send refuses a field the event type does not have -------------------------------------------


class Extra(EnreachHandler):
    """Keeps every event."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[EnreachEvent] = []

    async def on_any(self, event: EnreachEvent) -> None:
        self.events.append(event)


@pytest.mark.parametrize(
    ("event", "fields", "message"),
    [
        (
            "QueueCallInUserConnected",
            {"CallerNumbr": "+358501231234"},
            "not a field of QueueCallInUserConnected: CallerNumbr (did you mean CallerNumber?); "
            "pass allow_extra=True to send it anyway",
        ),
        (
            {"EventType": "QueueCallInArrived", "Id": "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"},
            {"queuename": "Myynti", "QueueNme": "Myynti", "Mood": "calm"},
            "not a field of QueueCallInArrived: QueueNme (did you mean QueueName?), Mood;",
        ),
    ],
    ids=["event-type", "whole-payload"],
)
def test_send_refuses_a_field_the_event_type_does_not_have(
    webhook_receiver: ReceiverFactory,
    event: str | dict[str, str],
    fields: dict[str, Any],
    message: str,
) -> None:
    handler = Extra()
    rx = webhook_receiver(handler)
    with pytest.raises(ValueError, match=re.escape(message)):
        rx.send(event, **fields)
    rx.send("QueueStatus")
    rx.wait_for_handled(1)
    assert [e.event_type for e in handler.events] == ["QueueStatus"]  # nothing else was sent


def test_field_names_match_ignoring_case_and_extras_pass_when_allowed(
    webhook_receiver: ReceiverFactory,
) -> None:
    handler = Extra()
    rx = webhook_receiver(handler)
    rx.send("QueueCallInUserConnected", callernumber="+358401112222")
    rx.send("QueueCallInUserConnected", allow_extra=True, CallerNumbr="+358403334444")
    rx.send({"EventType": "SomethingNew", "Id": str(uuid.uuid4())}, Anything="goes")
    rx.wait_for_handled(3)
    first, second, undocumented = handler.events
    assert isinstance(first, QueueCallInUserConnected)
    assert first.caller_number == "+358401112222"
    assert second.extra["CallerNumbr"] == "+358403334444"
    assert undocumented.event_type == "SomethingNew"


# -- the handler is checked as `receiver serve` checks it ---------------------------------------


class PlainBridge(EnreachHandler):
    def on_queue_call_in_arrived(self, event: QueueCallInArrived) -> None:  # type: ignore[override]  # the mistake under test
        """Not async: the dispatcher would await its None."""


class CallDetails(WebServicesHandler):
    async def on_post_cal(self, event: CallDetailsEvent) -> None:
        """A misspelt trigger."""


def test_a_handler_serve_would_refuse_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"PlainBridge\.on_queue_call_in_arrived must be defined"):
        InProcessReceiver(PlainBridge(), workdir=tmp_path)


def test_a_doubtful_method_is_a_warning(
    tmp_path: Path, webhook_receiver_certs: DevCertificates
) -> None:
    endpoint = EndpointConfig(
        "calls", "engage_web_services", "/calls", secrets=SecretSet(["t"]),
        options={"event_type": "PostCall"},
    )  # fmt: skip
    with pytest.warns(
        UserWarning, match=r"CallDetails\.on_post_cal .* did you mean on_post_call\?"
    ):
        InProcessReceiver(
            CallDetails(), workdir=tmp_path, certs=webhook_receiver_certs, endpoint=endpoint
        )

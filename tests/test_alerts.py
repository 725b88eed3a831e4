"""Dead-letter alerts (`on_dead`): real `receiver serve` processes whose failing subscribers
alert a real HTTPS ops endpoint or a Python function, rate-limited, without ever holding up
or stopping the dispatcher; and the one-line refusals of a bad `on_dead` at start."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from receiver.certs import DevCertificates
from receiver.inbox.base import open_admin
from receiver.inbox.models import EventFilter, State
from receiver.testing import ReceiverProcess
from tests.conftest import Harness, enreach_event, post_event, run_cli
from tests.support.alert_sink import AlertSink
from tests.support.dead_letters import read_hook_calls
from tests.support.webhook_sink import Answer

CALLER = "+358501231234"
ENDPOINT = """
[[endpoints]]
name = "enreach"
kind = "enreach"
path = "/enreach"
secret_env = ["RECEIVER_ENREACH_SECRET"]
"""


def subscriber(name: str, handler: str, **keys: object) -> str:
    """One `[[endpoints.subscribers]]` table with a handler of tests.support.dead_letters."""
    lines = [
        "[[endpoints.subscribers]]",
        f"name = {json.dumps(name)}",
        f'handler = "tests.support.dead_letters:{handler}"',
        *(f"{key} = {json.dumps(value)}" for key, value in keys.items()),
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def sink(tls_ca: DevCertificates) -> Iterator[AlertSink]:
    """An HTTPS ops endpoint trusted through tls_ca."""
    with AlertSink(tls_ca) as service:
        yield service


@pytest.fixture
def receivers(tmp_path: Path, tls_ca: DevCertificates, sink: AlertSink) -> Iterator[Harness]:
    """`harness`, its receivers stopped before `sink` (their kept-alive connections to it
    would hold up its stop)."""
    harness = Harness(tmp_path, tls_ca)
    try:
        yield harness
    finally:
        harness.close()


def start(harness: Harness, config: str, *args: str) -> ReceiverProcess:
    """`receiver serve` with `config`, the hooks' files in the test's directory."""
    path = harness.tmp_path / "receiver.toml"
    path.write_text(ENDPOINT + config)
    env = {
        "DEAD_HOOK_FILE": str(harness.tmp_path / "hook.jsonl"),
        "HOOK_CALLS_FILE": str(harness.tmp_path / "explode.jsonl"),
    }
    return harness.receiver("--config", str(path), *args, env=env, handler=None)


def send(harness: Harness, receiver: ReceiverProcess, count: int = 1) -> list[dict[str, Any]]:
    """POST `count` Enreach events (each its own call) with CALLER as the caller."""
    payloads = [enreach_event(CallerNumber=CALLER) for _ in range(count)]
    with harness.client() as client:
        for payload in payloads:
            assert post_event(client, receiver.url(), payload).status_code == 200
    return payloads


def deliveries(receiver: ReceiverProcess, subscriber: str, state: State) -> int:
    """How many of `subscriber`'s deliveries are in `state`."""
    admin = open_admin(str(receiver.inbox))
    try:
        where = EventFilter(subscriber=subscriber, states=(state,))
        return len(admin.list(where, limit=1000))
    finally:
        admin.close()


def parse_utc(text: str) -> float:
    """Unix time of an alert's ISO 8601 UTC time."""
    assert text.endswith("Z")
    return dt.datetime.fromisoformat(text).timestamp()


def test_a_dead_letter_is_posted_to_the_ops_url_without_the_callers_data(
    receivers: Harness, sink: AlertSink, tls_ca: DevCertificates
) -> None:
    config = subscriber(
        "crm", "Refuses", on_dead=sink.url, on_dead_ca_file=str(tls_ca.ca)
    ) + subscriber("wallboard", "Accepts")
    receiver = start(receivers, config, "--max-attempts", "2")
    [payload] = send(receivers, receiver)
    receivers.wait_for(lambda: len(sink.received) >= 1, what="the alert")

    [request] = sink.received
    assert request.path == "/ops/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("cc-webhook-receiver/")
    admin = open_admin(str(receiver.inbox))
    try:
        [dead] = admin.list(EventFilter(subscriber="crm", states=(State.DEAD,)))
    finally:
        admin.close()
    alert = request.payload
    assert set(alert) == {
        "kind", "subscriber", "event_id", "source", "event_type", "call_id", "attempts",
        "error", "received_at", "died_at", "console_url",
    }  # fmt: skip
    assert alert["kind"] == "dead_letter"
    assert alert["subscriber"] == "crm"
    assert alert["event_id"] == str(dead.id)
    assert alert["source"] == "enreach"
    assert alert["event_type"] == "QueueCallInUserAllocated"
    assert alert["call_id"] == payload["CallId"]
    assert alert["attempts"] == 2
    # The error's first line only, the caller's number masked.
    assert alert["error"] == "RuntimeError: the CRM refused caller +**********34"
    assert abs(parse_utc(alert["received_at"]) - dead.received_at) < 0.002
    assert parse_utc(alert["received_at"]) <= parse_utc(alert["died_at"]) <= request.at + 0.002
    assert alert["console_url"] == receiver.admin_url(f"/events/{dead.id}")
    # Nothing of the payload: no number, no field of it.
    assert CALLER[1:] not in request.body.decode()
    assert b"CallerNumber" not in request.body
    receivers.wait_for(lambda: deliveries(receiver, "wallboard", State.DONE) == 1)
    assert len(sink.received) == 1


def test_a_flood_of_dead_letters_sends_the_limit_then_one_summary_per_window(
    receivers: Harness, sink: AlertSink, tls_ca: DevCertificates
) -> None:
    config = subscriber(
        "crm",
        "Refuses",
        on_dead=sink.url,
        on_dead_ca_file=str(tls_ca.ca),
        on_dead_limit=3,
        on_dead_window=4,
    )
    receiver = start(receivers, config, "--max-attempts", "1")
    send(receivers, receiver, 12)
    receivers.wait_for(lambda: deliveries(receiver, "crm", State.DEAD) == 12, what="12 dead")
    receivers.wait_for(
        lambda: len(sink.alerts("dead_letters_suppressed")) == 1, timeout=15, what="a summary"
    )

    letters = sink.alerts("dead_letter")
    [summary] = sink.alerts("dead_letters_suppressed")
    assert len(letters) == 3
    assert summary["subscriber"] == "crm"
    assert summary["suppressed"] == 9
    assert summary["limit"] == 3
    start_at, end_at = parse_utc(summary["window_start"]), parse_utc(summary["window_end"])
    assert 3.9 <= end_at - start_at <= 4.1
    assert start_at <= min(parse_utc(a["died_at"]) for a in letters)
    assert sink.received[-1].payload == summary  # the summary comes after the window's letters

    # A new window: the limit again, and the rest summed up by the time the process stopped.
    send(receivers, receiver, 5)
    receivers.wait_for(lambda: deliveries(receiver, "crm", State.DEAD) == 17, what="17 dead")
    assert receiver.stop() == 0
    assert len(sink.alerts("dead_letter")) == 6
    assert [s["suppressed"] for s in sink.alerts("dead_letters_suppressed")] == [9, 2]
    alerted = {a["event_id"] for a in sink.alerts("dead_letter")}
    assert len(alerted) == 6


def test_a_python_hook_gets_each_dead_letter_sync_or_async(
    receivers: Harness, sink: AlertSink
) -> None:
    config = (
        subscriber("crm", "Refuses", on_dead="tests.support.dead_letters:record")
        + subscriber("billing", "Refuses", on_dead="tests.support.dead_letters:record_async")
        + subscriber("wallboard", "Accepts")
    )
    receiver = start(receivers, config, "--max-attempts", "1")
    payloads = send(receivers, receiver, 3)
    hook_file = receivers.tmp_path / "hook.jsonl"
    receivers.wait_for(lambda: len(read_hook_calls(hook_file)) == 6, what="six hook calls")

    calls = read_hook_calls(hook_file)
    assert {(c["how"], c["subscriber"]) for c in calls} == {("sync", "crm"), ("async", "billing")}
    assert {c["type"] for c in calls} == {"DeadLetter"}
    assert {c["call_id"] for c in calls} == {p["CallId"] for p in payloads}
    for call in calls:
        assert call["attempts"] == 1
        assert call["source"] == "enreach"
        assert call["error"] == "RuntimeError: the CRM refused caller +**********34"
        assert isinstance(call["received_at"], float) and call["died_at"] >= call["received_at"]
        assert call["console_url"].startswith(receiver.admin_url("/events/"))
    receivers.wait_for(lambda: deliveries(receiver, "wallboard", State.DONE) == 3)
    assert sink.received == []


def test_failing_hooks_never_stop_dispatching(receivers: Harness, sink: AlertSink) -> None:
    config = (
        subscriber("crm", "Refuses", on_dead="tests.support.dead_letters:explode")
        + subscriber("paged", "Refuses", on_dead=sink.url)  # the system's CAs: TLS fails too
        + subscriber("wallboard", "Accepts")
    )
    receiver = start(receivers, config, "--max-attempts", "1")
    send(receivers, receiver, 3)
    calls_file = receivers.tmp_path / "explode.jsonl"
    receivers.wait_for(lambda: len(read_hook_calls(calls_file)) == 3, what="three hook calls")
    send(receivers, receiver, 3)  # the hooks have failed: dispatching goes on all the same
    receivers.wait_for(lambda: deliveries(receiver, "crm", State.DEAD) == 6, what="6 dead (crm)")
    receivers.wait_for(lambda: deliveries(receiver, "paged", State.DEAD) == 6, what="6 (paged)")
    receivers.wait_for(lambda: deliveries(receiver, "wallboard", State.DONE) == 6)
    receivers.wait_for(lambda: len(read_hook_calls(calls_file)) == 6, what="six hook calls")
    receivers.wait_for(
        lambda: "on_dead https://127.0.0.1" in receiver.log, what="the failed POST logged"
    )
    assert receiver.stop() == 0
    log = receiver.log
    assert "crm: on_dead tests.support.dead_letters:explode failed for dead letter" in log
    assert "RuntimeError: the ops hook is broken" in log
    assert "certificate verify failed" in log or "CERTIFICATE_VERIFY_FAILED" in log
    assert sink.received == []  # never trusted: nothing reached it
    assert "Traceback" not in log


def test_an_ops_endpoint_that_fails_is_tried_three_times(
    receivers: Harness, sink: AlertSink, tls_ca: DevCertificates
) -> None:
    sink.default = Answer(503, body=b"ops channel down")
    config = subscriber("crm", "Refuses", on_dead=sink.url, on_dead_ca_file=str(tls_ca.ca))
    receiver = start(receivers, config, "--max-attempts", "1")
    send(receivers, receiver)
    receivers.wait_for(lambda: len(sink.received) == 3, timeout=20, what="three tries")
    tries = [r.at for r in sink.received]
    assert tries[1] - tries[0] >= 0.9
    assert tries[2] - tries[1] >= 4.9
    assert len({r.body for r in sink.received}) == 1
    receivers.wait_for(lambda: "HTTP 503 from https://127.0.0.1" in receiver.log)
    assert "/ops/hook" not in receiver.log  # the path (often a token) is never logged


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            {"on_dead": "http://ops.example/hook"},
            "subscriber 'crm': the on_dead URL must start with https:// (http:// only to a "
            "loopback host such as 127.0.0.1), got http://",
        ),
        (
            {"on_dead": "https://user:pw@ops.example/hook"},
            "the on_dead URL must not hold a user or password",
        ),
        (
            {"on_dead": "no_such_module_here:notify"},
            "subscriber 'crm': cannot import on_dead module 'no_such_module_here'",
        ),
        (
            {"on_dead": "tests.support.dead_letters:nothing"},
            "module 'tests.support.dead_letters' has no 'nothing'",
        ),
        (
            {"on_dead": "tests.support.dead_letters:__all__"},
            "on_dead 'tests.support.dead_letters:__all__' is not callable",
        ),
        ({"on_dead": "notify"}, "on_dead 'notify' is neither an https:// URL nor module:function"),
        ({"on_dead_ca_file": "ca.pem"}, "subscriber 'crm': on_dead_ca_file needs on_dead"),
        (
            {"on_dead": "tests.support.dead_letters:record", "on_dead_ca_file": "ca.pem"},
            "on_dead_ca_file is for an on_dead URL",
        ),
        (
            {"on_dead": "https://127.0.0.1/hook", "on_dead_ca_file": "missing-ca.pem"},
            "subscriber 'crm': on_dead_ca_file: cannot load CA file missing-ca.pem",
        ),
        (
            {"on_dead": "https://127.0.0.1/hook", "on_dead_limit": 0},
            "on_dead_limit must be a positive integer",
        ),
        (
            {"on_dead": "https://127.0.0.1/hook", "on_dead_window": -1},
            "on_dead_window must be a positive number of seconds",
        ),
    ],
    ids=[
        "http-to-a-remote-host", "user-in-url", "unimportable", "missing-name", "not-callable",
        "neither", "ca-without-on-dead", "ca-with-a-callable", "unreadable-ca", "zero-limit",
        "negative-window",
    ],
)  # fmt: skip
def test_a_bad_on_dead_is_refused_in_one_line(
    tmp_path: Path, keys: dict[str, object], message: str
) -> None:
    (tmp_path / "receiver.toml").write_text(ENDPOINT + subscriber("crm", "Refuses", **keys))
    result = run_cli("worker", "--inbox", str(tmp_path / "inbox.db"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_two_endpoints_may_not_give_one_subscriber_different_hooks(tmp_path: Path) -> None:
    second = ENDPOINT.replace('name = "enreach"', 'name = "second"').replace("/enreach", "/second")
    config = (
        ENDPOINT
        + subscriber("crm", "Refuses", on_dead="tests.support.dead_letters:record")
        + second
        + subscriber("crm", "Refuses", on_dead="tests.support.dead_letters:record_async")
    )
    (tmp_path / "receiver.toml").write_text(config)
    result = run_cli("worker", "--inbox", str(tmp_path / "inbox.db"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "subscriber 'crm': two endpoints give it different on_dead settings" in result.stderr

"""RingCentral Engage Voice WFM Generic HTTP end to end, over real TLS against a receiver."""

from __future__ import annotations

import base64
import subprocess
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from receiver.certs import DevCertificates
from receiver.sender import WfmWire, basic_authorization
from tests.conftest import Harness, run_cli
from tests.support.e2e import ConfiguredReceiver, load_payload, module_receiver, start_configured
from tests.test_receiver_e2e import raw_https

AUTHORIZATION = basic_authorization("aladdin:opensesame")
PREVIOUS = basic_authorization("aladdin:oldsesame")
ENV = {
    "WFM_AUTHORIZATION": AUTHORIZATION,
    "WFM_AUTHORIZATION_PREVIOUS": PREVIOUS,
    "WFM_USER": "wfm-sender:s3cret-pass",
}
HANDLER = 'handler = "tests.support.typed:WfmRecorder"\n'
CONFIG = (
    "[[endpoints]]\n"
    'name = "wfm"\nkind = "engage_wfm"\npath = "/engage/wfm"\n'
    'secret_env = ["WFM_AUTHORIZATION", "WFM_AUTHORIZATION_PREVIOUS"]\n'
    'time_zone = "America/New_York"\n' + HANDLER + "[[endpoints]]\n"
    'name = "wfm-basic"\nkind = "engage_wfm"\npath = "/engage/wfm/basic"\n'
    'basic_users_env = "WFM_USER"\n' + HANDLER + "[[endpoints]]\n"
    'name = "wfm-agents"\nkind = "engage_wfm"\npath = "/engage/wfm/agents"\nfamily = "agent"\n'
    'secret_env = "WFM_AUTHORIZATION"\n' + HANDLER + "[[endpoints]]\n"
    'name = "wfm-calls"\nkind = "engage_wfm"\npath = "/engage/wfm/calls"\nfamily = "call"\n'
    'secret_env = "WFM_AUTHORIZATION"\n' + HANDLER
)

EXAMPLES = {
    "agent-login": "on_agent_login",
    "login-pair-1": "on_agent_state",
    "login-pair-2": "on_agent_state",
    "agent-engaged": "on_agent_state",
    "agent-custom-state": "on_agent_state",
    "agent-logout": "on_agent_logout",
    "end-call-answered": "on_end_call",
    "end-call-abandoned": "on_end_call",
    "end-call-outbound-machine": "on_end_call",
}
ENCODINGS = [
    ("query", "GET"),
    ("query", "POST"),
    ("json", "POST"),
    ("json", "GET"),
    ("form", "POST"),
]


def example(name: str, variant: int = 0) -> dict[str, Any]:
    """The payload fixture `name`, its agent and call ids made unique to `variant`."""
    payload = load_payload("engage_wfm", name)
    for key in ("agent_id", "call_id"):
        if payload.get(key):
            payload[key] = f"{payload[key]}{variant:02d}"
    return payload


@pytest.fixture(scope="module")
def wfm(
    tmp_path_factory: pytest.TempPathFactory, tls_ca: DevCertificates
) -> Iterator[ConfiguredReceiver]:
    """One receiver with four WFM endpoints for the tests that only look at answers."""
    yield from module_receiver(tmp_path_factory, tls_ca, CONFIG, ENV)


def test_every_example_in_every_encoding_and_method_is_stored_once_and_typed(
    harness: Harness,
) -> None:
    receiver = start_configured(harness, CONFIG, ENV)
    for variant, (encoding, method) in enumerate(ENCODINGS):
        wire = WfmWire(credential=AUTHORIZATION, encoding=encoding, method=method)
        with receiver.sender("/engage/wfm", wire) as sender:
            for name in EXAMPLES:
                request = wire.build(sender.url, example(name, variant))
                assert request.method == method
                for _ in range(2):  # the second is a retry of the same event
                    assert sender.deliver(request).status == 200, (name, encoding, method)
    expected = len(EXAMPLES) * len(ENCODINGS)
    receiver.wait_for_handled(expected)
    assert receiver.by_source() == {"wfm": expected}
    typed = receiver.typed()
    assert Counter(r["method"] for r in typed) == Counter(
        {method: count * len(ENCODINGS) for method, count in Counter(EXAMPLES.values()).items()}
    )
    by_agent_state = {
        (r["event"]["agent_id"], r["event"]["prev_state"], r["event"]["event_type"]): r["event"]
        for r in typed
        if r["class"] == "AgentStateEvent"
    }
    # Every encoding decodes to the same typed event (only the ids were made unique).
    for variant, _ in enumerate(ENCODINGS):
        agent = f"482213{variant:02d}"
        login = by_agent_state[(agent, None, "LOGIN")]
        assert login["date_time"] == "2020-06-30T19:44:01-04:00"
        assert login["external_agent_id"] == "WFM-4471"
        custom = by_agent_state[(agent, "AVAILABLE", "COACHING")]
        assert custom["event_aux_type"] == "Team huddle"
        assert custom["external_agent_id"] is None
        assert custom["pending_disp"] is True
        engaged = by_agent_state[(agent, "AVAILABLE", "ENGAGED")]
        assert engaged["call_id"] == f"100200300401{variant:02d}"
        assert engaged["call_type"] == "ACD"
    calls = {r["event"]["call_id"]: r["event"] for r in typed if r["class"] == "EndCallEvent"}
    answered = calls["10020030040100"]
    assert answered["call_duration"] == 385
    assert answered["queue_duration"] == 42
    assert answered["call_start"] == "2020-06-30T21:36:37-04:00"
    assert answered["recording_url"] == "https://recordings.example.com/engage/100200300401.wav"
    assert answered["agent_id"] == "48221300"
    abandoned = calls["10020030097700"]
    assert abandoned["recording_url"] is None  # empty means no recording
    assert abandoned["agent_id"] is None
    assert abandoned["call_state"] == "ABANDON"
    assert calls["10020030122000"]["event_type"] == "VPD-CALL"
    orders = {r["order_key"] for r in receiver.ended()}
    assert "agent:48221300" in orders
    assert "call:10020030040100" in orders


def test_the_login_pair_gives_two_events(harness: Harness) -> None:
    receiver = start_configured(harness, CONFIG, ENV)
    first, second = example("login-pair-1"), example("login-pair-2")
    assert first["date_time"] == second["date_time"]  # the same second
    wire = WfmWire(credential=AUTHORIZATION)
    with receiver.sender("/engage/wfm", wire) as sender:
        for payload in (first, second, first, second):
            assert sender.send(payload).status == 200
    receiver.wait_for_handled(2)
    receiver.process.stop()
    assert len(receiver.ended()) == 2
    transitions = sorted(
        (r["event"]["prev_state"], r["event"]["event_type"]) for r in receiver.typed()
    )
    assert transitions == [("AVAILABLE", "AVAILABLE"), ("LOGIN", "AVAILABLE")]


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        pytest.param("/engage/wfm", {}, id="missing-header"),
        pytest.param("/engage/wfm", {"Authorization": "Basic d3Jvbmc6d3Jvbmc="}, id="wrong-value"),
        pytest.param("/engage/wfm", {"X-Authorization": AUTHORIZATION}, id="other-header"),
        pytest.param("/engage/wfm/basic", {}, id="basic-missing"),
        pytest.param(
            "/engage/wfm/basic",
            {"Authorization": basic_authorization("wfm-sender:wrong")},
            id="basic-wrong-password",
        ),
        pytest.param(
            "/engage/wfm/basic",
            {"Authorization": basic_authorization("intruder:s3cret-pass")},
            id="basic-unknown-user",
        ),
        pytest.param("/engage/wfm/basic", {"Authorization": "Bearer x"}, id="basic-not-basic"),
    ],
)
def test_wrong_or_missing_credentials_get_401_and_store_nothing(
    wfm: ConfiguredReceiver, path: str, headers: dict[str, str]
) -> None:
    before = wfm.by_source()
    query = "agent_id=1&event_type=AVAILABLE&date_time=2020-06-30+19%3A44%3A01"
    with wfm.harness.client() as client:
        response = client.get(f"{wfm.url(path)}?{query}", headers=headers)
    assert response.status_code == 401
    assert response.content == b""
    assert wfm.by_source() == before


@pytest.mark.parametrize(
    ("path", "credential"),
    [
        pytest.param("/engage/wfm", PREVIOUS, id="rotated-previous-value"),
        pytest.param(
            "/engage/wfm/basic", basic_authorization("wfm-sender:s3cret-pass"), id="basic"
        ),
    ],
)
def test_accepted_credentials(wfm: ConfiguredReceiver, path: str, credential: str) -> None:
    wire = WfmWire(credential=credential, encoding="json")
    with wfm.sender(path, wire) as sender:
        assert sender.send(example("agent-engaged", 90)).status == 200


@pytest.mark.parametrize(
    ("path", "content_type", "body", "reason"),
    [
        pytest.param(
            "/engage/wfm", "application/json", b'{"agent_id": ', "not valid JSON", id="json"
        ),
        pytest.param("/engage/wfm", "application/json", b"[1, 2]", "not a JSON object", id="array"),
        pytest.param(
            "/engage/wfm",
            "application/x-www-form-urlencoded",
            b"agent_id&x",
            "URL-encoded",
            id="form",
        ),
        pytest.param("/engage/wfm", "text/xml", b"<a>1</a>", "unsupported Content-Type", id="xml"),
        pytest.param("/engage/wfm", None, b"", "no event fields", id="empty"),
        pytest.param(
            "/engage/wfm",
            "application/json",
            b'{"event_type": "AWAY"}',
            "without agent_id",
            id="id",
        ),
        pytest.param(
            "/engage/wfm/agents",
            "application/json",
            b'{"call_id": "1", "event_type": "ACD-CALL", "call_state": "ANSWERED"}',
            "agent events only",
            id="end-call-at-agent-url",
        ),
        pytest.param(
            "/engage/wfm/calls",
            "application/json",
            b'{"agent_id": "1", "event_type": "AWAY"}',
            "end call events only",
            id="agent-event-at-call-url",
        ),
    ],
)
def test_a_malformed_request_gets_400_and_stores_nothing(
    wfm: ConfiguredReceiver, path: str, content_type: str | None, body: bytes, reason: str
) -> None:
    before = wfm.by_source()
    headers = {"Authorization": AUTHORIZATION}
    if content_type:
        headers["Content-Type"] = content_type
    with wfm.harness.client() as client:
        response = client.post(wfm.url(path), content=body, headers=headers)
    assert response.status_code == 400
    assert reason in response.text
    assert wfm.by_source() == before


def test_other_methods_get_405(wfm: ConfiguredReceiver) -> None:
    with wfm.harness.client() as client:
        response = client.put(wfm.url("/engage/wfm"), headers={"Authorization": AUTHORIZATION})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


def test_validation_token_is_echoed_in_a_small_empty_response(wfm: ConfiguredReceiver) -> None:
    token = "a1b2c3d4-validation"
    auth = base64.b64encode(b"aladdin:opensesame")
    for query in (b"?agent_id=7&event_type=AWAY&date_time=2020-06-30+19%3A44%3A02", b""):
        request = (
            b"GET /engage/wfm" + query + b" HTTP/1.1\r\nHost: localhost\r\n"
            b"Authorization: Basic " + auth + b"\r\n"
            b"Validation-Token: " + token.encode() + b"\r\nConnection: close\r\n\r\n"
        )
        head, body = raw_https(wfm.process.port, request, wfm.harness.certs.ca)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert b"validation-token: " + token.encode() in head.lower()
        assert body == b""
        assert len(head) + 4 < 1024
    with wfm.harness.client() as client:
        plain = client.get(
            wfm.url("/engage/wfm") + "?agent_id=8&event_type=AWAY&date_time=2020-06-30+19:44:03",
            headers={"Authorization": AUTHORIZATION},
        )
    assert plain.status_code == 200
    assert "validation-token" not in plain.headers


def test_curl_sends_the_default_query_form(wfm: ConfiguredReceiver) -> None:
    query = (
        "agent_id=9001&prev_state=AVAILABLE&event_type=LUNCH&date_time=2020-06-30%2012%3A00%3A00"
    )
    result = subprocess.run(
        [
            "curl", "--silent", "--show-error", "--cacert", str(wfm.harness.certs.ca),
            "--write-out", "%{http_code}", "--output", "/dev/null",
            "--header", f"Authorization: {AUTHORIZATION}",
            f"{wfm.url('/engage/wfm')}?{query}",
        ],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.stdout == "200", result.stderr


def test_a_wfm_agent_day_scenario_is_handled_exactly_once(harness: Harness) -> None:
    receiver = start_configured(harness, CONFIG, ENV)
    result = run_cli(
        "scenario", receiver.url("/engage/wfm/agents"), "--provider", "engage_wfm",
        "--call-url", receiver.url("/engage/wfm/calls"), "--encoding", "json",
        "--calls", "4", "--seed", "7", "--duplicate-ratio", "0.2",
        "--wrong-token-ratio", "0.2", "--out-of-order-ratio", "0.1",
        "--cacert", str(harness.certs.ca), "--json",
        cwd=harness.tmp_path, env={"RECEIVER_ENGAGE_WFM_SECRET": AUTHORIZATION},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = orjson.loads(result.stdout)
    assert summary["ok"] is True
    assert summary["wrong_token_sent"] == summary["rejected_as_expected"] > 0
    unique = summary["acknowledged"] - summary["duplicates_sent"]
    receiver.wait_for_handled(unique)
    counts = receiver.by_source()
    assert sum(counts.values()) == unique
    methods = Counter(r["method"] for r in receiver.typed())
    assert {"on_agent_login", "on_agent_logout", "on_agent_state", "on_end_call"} <= set(methods)

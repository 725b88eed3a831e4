"""RingCentral Engage Voice Web Services end to end, over real TLS against a receiver process."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from receiver.certs import DevCertificates
from receiver.sender import WebServicesWire, basic_authorization
from tests.conftest import Harness, run_cli
from tests.support.e2e import ConfiguredReceiver, load_payload, module_receiver, start_configured

TOKEN = "ws-token-4f0d7c"
USER = "engage-ws:pa55-w0rd"
ENV = {"WS_TOKEN": TOKEN, "WS_USER": USER}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
BODIES = ("json", "form", "xml", "text", "query")
HANDLER = 'handler = "tests.support.typed:WebServicesRecorder"\n'
# Every other body kind authenticates with Basic, the others with a custom header.
AUTH = {
    body: (
        'basic_users_env = "WS_USER"\n'
        if n % 2 == 0
        else 'auth_header = "X-Engage-Token"\nsecret_env = "WS_TOKEN"\n'
    )
    for n, body in enumerate(BODIES)
}
CONFIG = "".join(
    "[[endpoints]]\n"
    f'name = "ws-{body}"\nkind = "engage_web_services"\npath = "/engage/ws/{body}"\n'
    f'body = "{body}"\nmethods = {list(METHODS)!r}\nevent_type = "AgentTermination"\n'
    f'time_zone = "Europe/Helsinki"\n{AUTH[body]}{HANDLER}'
    for body in BODIES
).replace("'", '"') + (
    "[[endpoints]]\n"
    'name = "ws-mapped"\nkind = "engage_web_services"\npath = "/engage/ws/mapped"\n'
    'basic_users_env = "WS_USER"\ndedup_fields = ["uii", "agent_id"]\n' + HANDLER + "\n"
    '[endpoints.fields]\ncaller = "ani"\nsegmentRecording = "recording_url"\n'
)
EXAMPLES = (
    "documented-template-filled",
    "documented-form-parameters",
    "documented-template",
    "transfer-segment-1",
)


def wire_for(body: str, method: str = "POST") -> WebServicesWire:
    """The wire of the `ws-<body>` endpoint, with its credential."""
    if "basic_users_env" in AUTH[body]:
        return WebServicesWire(credential=basic_authorization(USER), method=method, body=body)
    return WebServicesWire(credential=TOKEN, auth_header="X-Engage-Token", method=method, body=body)


@pytest.fixture(scope="module")
def ws(
    tmp_path_factory: pytest.TempPathFactory, tls_ca: DevCertificates
) -> Iterator[ConfiguredReceiver]:
    """One receiver with every web service endpoint, for the tests that only look at answers."""
    yield from module_receiver(tmp_path_factory, tls_ca, CONFIG, ENV)


def test_every_example_in_every_body_kind_and_method_is_stored_once_and_typed(
    harness: Harness,
) -> None:
    receiver = start_configured(harness, CONFIG, ENV)
    for body in BODIES:
        for method in METHODS:
            wire = wire_for(body, method)
            with receiver.sender(f"/engage/ws/{body}", wire) as sender:
                for name in EXAMPLES:
                    # One event per method: the probe field makes the content differ.
                    payload = {**load_payload("engage_web_services", name), "probe": method}
                    request = wire.build(sender.url, payload)
                    for _ in range(2):
                        assert sender.deliver(request).status == 200, (name, body, method)
    per_endpoint = len(EXAMPLES) * len(METHODS)
    receiver.wait_for_handled(per_endpoint * len(BODIES))
    assert receiver.by_source() == {f"ws-{body}": per_endpoint for body in BODIES}
    typed = receiver.typed()
    assert {r["method"] for r in typed} == {"on_agent_termination"}
    events = [r["event"] for r in typed]
    assert Counter(e["method"] for e in events) == Counter(
        {m: len(EXAMPLES) * len(BODIES) for m in METHODS}
    )
    for event in events:
        fields: dict[str, Any] = event["fields"]
        if "text" in fields:  # a text body is kept whole: no typed fields
            assert fields["text"].startswith(("agentId: ", "agent_id: "))
            assert event["uii"] is None
            continue
        assert event["extra"]["probe"] == event["method"]
        if fields.get("agentId") is None and fields.get("agent_id") is None:
            # The documented template with no tag substituted: every value is missing.
            assert fields["agentUsername"] is None
            assert all(
                event[name] is None
                for name in ("agent_id", "agent_username", "ani", "call_start", "recording_url")
            )
            continue
        assert event["agent_id"] == "1104522"
        assert event["agent_username"] == "omar.haddad@example.com"
        assert event["ani"] == "+15550200177"
        assert event["uii"] is not None
        assert event["call_start"].endswith("+03:00")  # April in Europe/Helsinki
    filled = next(e for e in events if e["uii"] == "20200422000000123456" and e["method"] == "POST")
    assert filled["call_start"] == "2020-04-22T00:00:00+03:00"
    assert filled["duration"] == 385
    assert filled["recording_url"].endswith("-1.wav")
    form_names = next(e for e in events if e["uii"] == "20200422140309000042")
    assert form_names["call_duration"] == 385  # sent as 00:06:25
    assert form_names["agent_recording_url"].startswith(
        "https://recordings.example.com/engage/agent/"
    )
    segment = next(e for e in events if e["uii"] == "20200422091530000777")
    assert segment["extra"]["agentUsernameFallback"] is None  # a literal tag is missing


def test_agent_segments_of_a_transferred_call_are_separate_events(harness: Harness) -> None:
    receiver = start_configured(harness, CONFIG, ENV)
    first = load_payload("engage_web_services", "transfer-segment-1")
    second = load_payload("engage_web_services", "transfer-segment-2")
    renamed = dict(second)
    renamed["caller"] = renamed.pop("ani")
    renamed["segmentRecording"] = renamed.pop("recordingUrl")
    wire = WebServicesWire(credential=basic_authorization(USER))
    with receiver.sender("/engage/ws/mapped", wire) as sender:
        for payload in (first, renamed, first, renamed):
            assert sender.send(payload).status == 200
        # Same uii and agent: a retry even if another field changed.
        assert sender.send({**first, "duration": "141"}).status == 200
    receiver.wait_for_handled(2)
    receiver.process.stop()
    ended = receiver.ended()
    assert len(ended) == 2
    assert {r["order_key"] for r in ended} == {"call:20200422091530000777"}
    events = {r["event"]["agent_id"]: r["event"] for r in receiver.typed()}
    assert events["1107730"]["ani"] == "+15550200177"  # mapped from "caller"
    assert events["1107730"]["recording_url"].endswith("-2.wav")
    assert events["1107730"]["duration"] == 242  # sent as 00:04:02
    assert events["1104522"]["event_type"] == "CallDetails"


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param("json", {}, id="basic-missing"),
        pytest.param(
            "json", {"Authorization": basic_authorization("engage-ws:nope")}, id="basic-wrong"
        ),
        pytest.param("form", {}, id="token-missing"),
        pytest.param("form", {"X-Engage-Token": TOKEN + "x"}, id="token-wrong"),
        pytest.param(
            "form", {"Authorization": basic_authorization(USER)}, id="token-endpoint-basic"
        ),
    ],
)
def test_wrong_or_missing_credentials_get_401_and_store_nothing(
    ws: ConfiguredReceiver, body: str, headers: dict[str, str]
) -> None:
    before = ws.by_source()
    with ws.harness.client() as client:
        response = client.post(ws.url(f"/engage/ws/{body}"), content=b"uii=1", headers=headers)
    assert response.status_code == 401
    assert response.content == b""
    assert ws.by_source() == before


@pytest.mark.parametrize(
    ("body", "content", "reason"),
    [
        pytest.param("json", b'{"uii": "1"', "not valid JSON", id="json"),
        pytest.param("json", b'["#uii#"]', "not a JSON object", id="json-array"),
        pytest.param("form", b"uii&agent_id", "URL-encoded", id="form"),
        pytest.param("xml", b"<call><uii>1</call>", "not well-formed XML", id="xml"),
        pytest.param(
            "xml",
            b'<?xml version="1.0"?><!DOCTYPE c [<!ENTITY a "aaaa">]><c><uii>&a;</uii></c>',
            "document type declaration",
            id="xml-entity",
        ),
        pytest.param(
            "xml",
            '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE c []><c/>'.encode("utf-16"),
            "document type declaration",
            id="xml-utf16-doctype",
        ),
        pytest.param("json", b"", "no fields", id="empty"),
        pytest.param("query", b"uii=1", "no fields", id="query-without-parameters"),
    ],
)
def test_a_malformed_body_gets_400_and_stores_nothing(
    ws: ConfiguredReceiver, body: str, content: bytes, reason: str
) -> None:
    before = ws.by_source()
    request = wire_for(body).build(ws.url(f"/engage/ws/{body}"), {})
    response = ws.deliver(
        type(request)(
            method="POST",
            url=ws.url(f"/engage/ws/{body}"),
            headers=request.headers,
            body=content,
            event_type=request.event_type,
        )
    )
    assert response.status_code == 400
    assert reason in response.text
    assert ws.by_source() == before


def test_a_method_the_web_service_does_not_use_gets_405(ws: ConfiguredReceiver) -> None:
    with ws.harness.client() as client:
        response = client.get(
            ws.url("/engage/ws/mapped") + "?uii=1",
            headers={"Authorization": basic_authorization(USER)},
        )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_transfer_scenario_with_form_bodies_is_handled_exactly_once(harness: Harness) -> None:
    receiver = start_configured(harness, CONFIG, ENV)
    result = run_cli(
        "scenario", receiver.url("/engage/ws/form"), "--provider", "engage_web_services",
        "--body", "form", "--method", "PUT", "--auth-header", "X-Engage-Token",
        "--flows", "transfer", "--calls", "5", "--seed", "3", "--duplicate-ratio", "0.3",
        "--wrong-token-ratio", "0.2", "--cacert", str(harness.certs.ca), "--json",
        cwd=harness.tmp_path, env={"RECEIVER_ENGAGE_WEB_SERVICES_SECRET": TOKEN},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = orjson.loads(result.stdout)
    assert summary["ok"] is True
    assert summary["rejected_as_expected"] == summary["wrong_token_sent"] > 0
    unique = summary["acknowledged"] - summary["duplicates_sent"]
    assert unique > 5  # every call has two or three agent segments
    receiver.wait_for_handled(unique)
    assert receiver.by_source() == {"ws-form": unique}
    per_call = Counter(r["order_key"] for r in receiver.ended())
    assert len(per_call) == 5
    assert all(2 <= n <= 3 for n in per_call.values())

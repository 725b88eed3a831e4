"""Buzzeasy service hooks end to end, over real TLS against a receiver process."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from receiver.certs import DevCertificates
from receiver.sender import BuzzeasyWire
from tests.conftest import Harness, run_cli
from tests.support.e2e import ConfiguredReceiver, load_payload, module_receiver, start_configured

KEY = "bz-key-current-9c41e2"
OLD_KEY = "bz-key-previous-77aa01"
ENV = {"BUZZEASY_KEY": KEY, "BUZZEASY_KEY_OLD": OLD_KEY}
HOOKS = {
    "work-item-closed": "WorkItemClosed",
    "abandoned-conversation": "Abandoned Conversation",
    "outbound-call": "Outbound Call",
    "callback-requested": "CallbackRequested",
}
CONFIG = "".join(
    "[[endpoints]]\n"
    f'name = "buzzeasy-{slug}"\nkind = "buzzeasy"\npath = "/buzzeasy/{slug}"\n'
    f'event_type = "{hook}"\nsecret_env = ["BUZZEASY_KEY", "BUZZEASY_KEY_OLD"]\n'
    'handler = "tests.support.typed:BuzzeasyRecorder"\n'
    for slug, hook in HOOKS.items()
)
EXAMPLES = [
    ("work-item-closed", "work-item-closed"),
    ("abandoned-conversation", "abandoned-conversation"),
    ("abandoned-conversation", "abandoned-conversation-other-casing"),
    ("outbound-call", "outbound-call"),
    ("outbound-call", "outbound-call-other-casing"),
]


@pytest.fixture(scope="module")
def buzzeasy(
    tmp_path_factory: pytest.TempPathFactory, tls_ca: DevCertificates
) -> Iterator[ConfiguredReceiver]:
    """One receiver with every hook endpoint, for the tests that only look at answers."""
    yield from module_receiver(tmp_path_factory, tls_ca, CONFIG, ENV)


def test_every_example_is_stored_once_and_typed(harness: Harness) -> None:
    receiver = start_configured(harness, CONFIG, ENV)
    wire = BuzzeasyWire(api_key=KEY)
    for slug, name in EXAMPLES:
        payload = load_payload("buzzeasy", name)
        with receiver.sender(f"/buzzeasy/{slug}", wire) as sender:
            assert sender.send(payload).status == 200
            assert sender.send(payload).status == 200  # a retry
            # The same body spaced and ordered differently is still the same event.
            respaced = json.dumps(dict(reversed(payload.items())), indent=2).encode()
            request = wire.build(sender.url, payload)
            assert (
                receiver.deliver(
                    type(request)(
                        method="POST",
                        url=request.url,
                        headers=request.headers,
                        body=respaced,
                        event_type=request.event_type,
                    )
                ).status_code
                == 200
            )
    receiver.wait_for_handled(len(EXAMPLES))
    receiver.process.stop()
    ended = receiver.ended()
    assert len(ended) == len(EXAMPLES)
    keys: dict[str, list[str]] = defaultdict(list)
    for record in ended:
        keys[record["type"]].append(record["key"])
    assert keys["WorkItemClosed"] == ["ff34b1fb68cd4f7f9921e70c08fab7a7"]
    assert all(
        k.startswith("sha256:") for k in keys["AbandonedConversation"] + keys["OutboundCall"]
    )
    assert {r["order_key"] for r in ended if r["type"] == "WorkItemClosed"} == {
        "conversation:48fad19d15104c8fbd7344853f35019e"
    }
    typed: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in receiver.typed():
        typed[record["method"]].append(record["event"])
    [closed] = typed["on_work_item_closed"]
    assert closed["created_at"] == "2022-03-08T07:39:47.605245+00:00"
    assert closed["closed_at"] == "2022-03-08T07:41:47.605245+00:00"
    assert closed["is_outbound"] is True
    assert closed["agent"]["name"] == "Agent John"
    assert closed["agent"]["email"] == "john@agent.com"
    assert closed["completion_code"] == "Success"
    assert closed["extra"] == {}
    abandoned = sorted(typed["on_abandoned_conversation"], key=lambda e: e["timestamp"])
    assert [e["customer_phone_number"] for e in abandoned] == ["+447700900123", "+447700900456"]
    assert [e["time_in_queue"] for e in abandoned] == [95.0, 125.5]
    assert [e["queue"] for e in abandoned] == ["Support", "Billing"]
    outbound = sorted(typed["on_outbound_call"], key=lambda e: e["timestamp"])
    assert [e["agent_id"] for e in outbound] == ["638858857ff57ad8637a7528"] * 2
    assert [e["target_phone_number"] for e in outbound] == ["+447700900789", "+447700900790"]
    assert outbound[0]["timestamp"] == "2022-03-08T09:01:15.987654+00:00"


def test_a_hook_configured_under_another_name_reaches_its_method(harness: Harness) -> None:
    receiver = start_configured(harness, CONFIG, ENV)
    body = {"Id": "AB12", "customerPhoneNumber": "+447700900111", "slot": "tomorrow"}
    with receiver.sender("/buzzeasy/callback-requested", BuzzeasyWire(api_key=OLD_KEY)) as sender:
        assert sender.send(body).status == 200
        assert sender.send(body).status == 200  # a duplicate
    receiver.wait_for_handled(1)
    receiver.process.stop()
    [record] = receiver.typed()
    assert record["method"] == "on_callback_requested"
    assert record["class"] == "BuzzeasyEvent"
    assert record["event"]["event_type"] == "CallbackRequested"
    assert record["event"]["id"] == "AB12"
    assert record["event"]["extra"]["slot"] == "tomorrow"
    assert [r["key"] for r in receiver.ended()] == ["AB12"]  # not a GUID: kept exactly


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"x-api-key": ""}, id="empty"),
        pytest.param({"x-api-key": KEY[:-1]}, id="wrong"),
        pytest.param({"x-api-key": KEY.upper()}, id="wrong-case"),
        pytest.param({"Authorization": KEY}, id="other-header"),
    ],
)
def test_a_missing_or_wrong_api_key_gets_401_and_stores_nothing(
    buzzeasy: ConfiguredReceiver, headers: dict[str, str]
) -> None:
    before = buzzeasy.by_source()
    body = orjson.dumps(load_payload("buzzeasy", "work-item-closed"))
    with buzzeasy.harness.client() as client:
        response = client.post(
            buzzeasy.url("/buzzeasy/work-item-closed"),
            content=body,
            headers={"Content-Type": "application/json", **headers},
        )
    assert response.status_code == 401
    assert response.content == b""
    assert buzzeasy.by_source() == before


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(b'{"id": "1",', "not valid JSON", id="json"),
        pytest.param(b'[{"id": "1"}]', "not a JSON object", id="array"),
        pytest.param(b"id=1", "not valid JSON", id="form"),
        pytest.param(b"", "not valid JSON", id="empty"),
    ],
)
def test_a_malformed_body_gets_400_and_stores_nothing(
    buzzeasy: ConfiguredReceiver, content: bytes, reason: str
) -> None:
    before = buzzeasy.by_source()
    with buzzeasy.harness.client() as client:
        response = client.post(
            buzzeasy.url("/buzzeasy/outbound-call"), content=content, headers={"x-api-key": KEY}
        )
    assert response.status_code == 400
    assert reason in response.text
    assert buzzeasy.by_source() == before


def test_get_gets_405(buzzeasy: ConfiguredReceiver) -> None:
    with buzzeasy.harness.client() as client:
        response = client.get(buzzeasy.url("/buzzeasy/outbound-call"), headers={"x-api-key": KEY})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_scenario_sends_each_hook_to_its_own_url(harness: Harness) -> None:
    receiver = start_configured(harness, CONFIG, ENV)
    result = run_cli(
        "scenario", receiver.url("/buzzeasy"), "--provider", "buzzeasy",
        "--calls", "9", "--seed", "5", "--duplicate-ratio", "0.3", "--wrong-token-ratio", "0.2",
        "--cacert", str(harness.certs.ca), "--json",
        cwd=harness.tmp_path, env={"RECEIVER_BUZZEASY_SECRET": KEY},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = orjson.loads(result.stdout)
    assert summary["ok"] is True
    assert summary["rejected_as_expected"] == summary["wrong_token_sent"] > 0
    unique = summary["acknowledged"] - summary["duplicates_sent"]
    receiver.wait_for_handled(unique)
    counts = receiver.by_source()
    assert sum(counts.values()) == unique
    assert set(counts) <= {f"buzzeasy-{slug}" for slug in HOOKS}
    assert len(counts) >= 2

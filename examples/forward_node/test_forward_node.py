"""The Node.js example end to end: the real server.js (node, the standardwebhooks npm package)
behind a real `receiver serve` process with a forwarding subscriber, call flows from the mock
sender, and the README's command.

Every event reaches node once, in its call's order, with a signature node verified; a
provider's retry does not reach node twice, nor does a replay get handled twice; a wrong secret
makes dead letters at once (401 is permanent), which a replay delivers once the secrets agree.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from examples.forward_node.service import (
    NodeService,
    calls_handled,
    calls_planned,
    ensure_node_modules,
    inbox,
    new_signing_secret,
    receiver_config,
    send,
)
from receiver.certs import DevCertificates
from receiver.scenarios import PlannedRequest, ScenarioOptions, build_stream
from receiver.testing import ReceiverProcess, throwaway_certificates
from tests.support.doc_blocks import ROOT, shell_commands

TOKEN = "forward-node-enreach-token-5d1e"  # noqa: S105 (a throwaway token for a test receiver)
FLOWS = ("inbound", "transfer", "overflow")
"""Enreach flows whose every event has a CallId: each call is one order key."""
WEBHOOK_ID = re.compile(r"^msg_[0-9a-f]{32}$")


@pytest.fixture(scope="module", autouse=True)
def node_modules() -> None:
    """`npm ci` once, when node_modules/ is missing (bounded: NPM_TIMEOUT)."""
    ensure_node_modules()


@pytest.fixture
def certs(tmp_path: Path) -> DevCertificates:
    """A throwaway CA and server certificate for the receiver."""
    return throwaway_certificates(tmp_path / "certs")


def receiver_for(work: Path, certs: DevCertificates, url: str, signing: str) -> ReceiverProcess:
    """`receiver serve` with the example's receiver.toml forwarding to `url`, signing with
    `signing` (not started)."""
    config = receiver_config(work / "receiver.toml", url)
    return ReceiverProcess(
        work,
        certs=certs,
        secret=TOKEN,
        args=["--config", str(config)],
        env={"FORWARD_NODE_SECRET": signing},
    )


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll `condition` until it holds, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:g}s: {what}")
        time.sleep(0.1)


def deliveries(receiver: ReceiverProcess) -> list[dict[str, Any]]:
    """The subscriber `node`'s deliveries, as `receiver inbox list --json` shows them."""
    found: list[dict[str, Any]] = inbox(
        receiver.inbox, "list", "--subscriber", "node", "--limit", "10000"
    )
    return found


def stored(stream: list[PlannedRequest]) -> dict[str, PlannedRequest]:
    """The events the receiver stores, by Id: neither a provider's retry nor a forgery."""
    return {p.event_id: p for p in stream if not (p.duplicate or p.wrong_token)}


def test_each_event_reaches_node_once_in_call_order(tmp_path: Path, certs: DevCertificates) -> None:
    stream = build_stream(
        ScenarioOptions(
            calls=8, seed=2024, flows=FLOWS, duplicate_ratio=0.25, wrong_token_ratio=0.1
        )
    )
    expected = stored(stream)
    signing = new_signing_secret()
    with (
        NodeService(tmp_path, secret=signing, events=tmp_path / "events.jsonl") as node,
        receiver_for(tmp_path, certs, node.url, signing) as receiver,
    ):
        summary = send(receiver.url("/enreach"), certs.ca, TOKEN, stream)
        assert summary.ok, summary
        assert summary.duplicates_sent > 0 and summary.wrong_token_sent > 0
        wait_until(
            lambda: [d["state"] for d in deliveries(receiver)] == ["done"] * len(expected),
            f"{len(expected)} deliveries to node done",
        )
        records = node.records()
        # One line per event: the provider's retries of an event did not reach node again.
        assert len(records) == len(expected)
        assert calls_handled(records) == calls_planned(stream)
        for record in records:
            planned = expected[record["event"]["Id"]]
            assert record["event"] == planned.payload  # the body as the provider sent it
            assert record["type"] == planned.event_type
            assert (record["source"], record["attempt"]) == ("enreach", 1)
            assert WEBHOOK_ID.match(record["webhook_id"])
        assert len({r["webhook_id"] for r in records}) == len(records)

        # A replay reaches node with the same webhook-ids; node answers 204 without
        # handling them again, so the deliveries are done and the file is unchanged.
        call = next(iter(calls_planned(stream)))
        replayed = inbox(
            receiver.inbox, "replay", "--subscriber", "node", "--call", call, "--done-too"
        )
        assert replayed["replayed"] == len(calls_planned(stream)[call])
        wait_until(
            lambda: node.log.count("handled before, not again") == replayed["replayed"],
            "node's answers to the replayed events",
        )
        wait_until(
            lambda: all(d["state"] == "done" for d in deliveries(receiver)),
            "the replayed deliveries done",
        )
        assert node.records() == records
    log = node.log
    assert log.count("from enreach, attempt 1") == len(expected)
    assert "refused" not in log
    numbers = {
        str(p.payload[key])
        for p in stream
        for key in ("CallerNumber", "TargetNumber", "UserNumber", "QueueNumber")
        if p.payload.get(key)
    }
    assert numbers and not [n for n in numbers if n in log], "a phone number in node's log"


def signed(secret: str, body: bytes, *, msg_id: str = "msg_" + "ab" * 16, age: float = 0) -> Any:
    """Standard Webhooks headers for `body`, signed by Python's library with `secret`."""
    when = datetime.now(UTC) - timedelta(seconds=age)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, when, body.decode()),
        "webhook-event-type": "QueueCallInComing",
        "webhook-source": "enreach",
        "webhook-attempt": "1",
    }


BODY = b'{"EventType":"QueueCallInComing","Id":"e1","CallId":"c1"}'
OTHER_SECRET = "whsec_" + base64.b64encode(b"not the service's key, 32 bytes.").decode()


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("signed", 204),
        ("signed with another secret", 401),
        ("body changed after signing", 401),
        ("signed 10 minutes ago", 401),
        ("no signature", 401),
        ("another path", 404),
        ("GET", 405),
    ],
)
def test_node_answers(tmp_path: Path, case: str, status: int) -> None:
    secret = new_signing_secret()
    headers = signed(OTHER_SECRET if "another secret" in case else secret, BODY)
    body, path, method = BODY, "/events", "POST"
    if case == "body changed after signing":
        body = BODY.replace(b"c1", b"c2")
    elif case == "signed 10 minutes ago":
        headers = signed(secret, BODY, age=600)
    elif case == "no signature":
        del headers["webhook-signature"]
    elif case == "another path":
        path = "/other"
    elif case == "GET":
        method = "GET"
    with NodeService(tmp_path, secret=secret, events=tmp_path / "events.jsonl") as node:
        url = node.url.removesuffix("/events") + path
        answer = httpx.request(method, url, content=body, headers=headers, timeout=5)
        assert answer.status_code == status, answer.text
        if status == 204:  # the same webhook-id again: 204, not handled twice
            again = httpx.post(url, content=body, headers=headers, timeout=5)
            assert again.status_code == 204
        assert len(node.records()) == (1 if status == 204 else 0)


def test_wrong_secret_makes_dead_letters_until_replayed(
    tmp_path: Path, certs: DevCertificates
) -> None:
    stream = build_stream(ScenarioOptions(calls=2, seed=7, flows=FLOWS))
    expected = stored(stream)
    signing = new_signing_secret()
    events = tmp_path / "events.jsonl"
    with (
        NodeService(tmp_path, secret=new_signing_secret(), events=events) as wrong,
        receiver_for(tmp_path, certs, wrong.url, signing) as receiver,
    ):
        assert send(receiver.url("/enreach"), certs.ca, TOKEN, stream).ok
        wait_until(
            lambda: [d["state"] for d in deliveries(receiver)] == ["dead"] * len(expected),
            f"{len(expected)} dead letters",
        )
        for delivery in deliveries(receiver):
            assert delivery["attempts"] == 1  # 401 is permanent: no retry
            assert (
                f"HTTP 401 from {wrong.url}: signature does not verify" in (delivery["last_error"])
            )
        assert wrong.records() == []
        assert wrong.log.count("refused") == len(expected)
        port = int(wrong.url.rsplit(":", 1)[1].split("/")[0])
        wrong.stop()

        # The service now has the receiver's secret: the dead letters, replayed, arrive.
        with NodeService(tmp_path, secret=signing, events=events, port=port) as node:
            replayed = inbox(receiver.inbox, "replay", "--subscriber", "node", "--all")
            assert replayed["replayed"] == len(expected)
            records = node.wait_for_records(len(expected))
            wait_until(
                lambda: all(d["state"] == "done" for d in deliveries(receiver)),
                "the replayed deliveries done",
            )
    assert calls_handled(records) == calls_planned(stream)


def test_readme_commands(tmp_path: Path) -> None:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    commands = shell_commands("examples/forward_node/README.md")
    assert any("python -m examples.forward_node" in command for command in commands)
    output = ""
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"{command}{done.stdout}{done.stderr}"
        output += done.stdout
    assert re.search(r"handled \d+ events, each once", output)
    assert "handled before, not again" in output

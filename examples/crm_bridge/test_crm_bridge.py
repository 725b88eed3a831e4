"""The CRM bridge end to end: `receiver serve` with the example's config and handlers, events
from the project's sender, and the stand-in CRM: one activity per ended call and closed work
item, retries on 429 (after its Retry-After) and 503, none twice, a dead letter on 4xx."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from receiver.testing import ReceiverProcess, throwaway_certificates
from tests.support.doc_blocks import ROOT, shell_commands

from .crm import idempotency_key, retry_after
from .standin import Answer, StandInCrm

CONFIG = ROOT / "examples" / "crm_bridge" / "receiver.toml"
API_KEY = "test-crm-key-" + uuid.uuid4().hex
CALL = str(uuid.uuid4())


@pytest.fixture
def crm() -> Iterator[StandInCrm]:
    with StandInCrm(API_KEY) as stand_in:
        yield stand_in


def start_receiver(folder: Path, crm: StandInCrm, **env: str) -> ReceiverProcess:
    """`receiver serve --config receiver.toml`, reaching `crm` (its variables overridden by
    `env`); closed by the caller."""
    settings = {
        "PYTHONPATH": str(ROOT),
        "RECEIVER_BUZZEASY_SECRET": "buzzeasy-" + uuid.uuid4().hex,
        "CRM_URL": crm.url,
        "CRM_API_KEY": API_KEY,
        "CRM_BRIDGE_STATE": str(folder / "calls.db"),
        **env,
    }
    receiver = ReceiverProcess(
        folder,
        certs=throwaway_certificates(folder / "certs"),
        secret="enreach-" + uuid.uuid4().hex,
        args=["--config", str(CONFIG)],
        env=settings,
    )
    try:
        receiver.start()
    except BaseException:
        receiver.close()
        raise
    return receiver


def send(receiver: ReceiverProcess, path: str, event_type: str, *fields: str) -> None:
    """`receiver send` one event of `event_type` with `fields` (FIELD=VALUE) to `path`."""
    provider = ["--provider", "buzzeasy"] if path.startswith("/buzzeasy") else []
    command = [sys.executable, "-m", "receiver", "send", receiver.url(path), event_type]
    command += [*provider, "--cacert", str(receiver.certs.ca)]
    for field in fields:
        command += ["--set", field]
    env = {
        **os.environ,
        "RECEIVER_ENREACH_SECRET": receiver.secret,
        "RECEIVER_BUZZEASY_SECRET": receiver.extra_env["RECEIVER_BUZZEASY_SECRET"],
    }
    subprocess.run(command, env=env, check=True, capture_output=True)


def dead_letters(receiver: ReceiverProcess) -> list[dict[str, Any]]:
    """`receiver inbox dead --json` of the receiver's inbox."""
    command = [sys.executable, "-m", "receiver", "inbox", "dead", "--json"]
    done = subprocess.run(
        [*command, "--inbox", str(receiver.inbox)], check=True, capture_output=True, text=True
    )
    letters: list[dict[str, Any]] = json.loads(done.stdout)
    return letters


def wait_for(ready: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def a_call_and_a_work_item(receiver: ReceiverProcess) -> None:
    """An answered Enreach queue call (answer, end) and a closed Buzzeasy voice work item."""
    queue = ["EntityType=Queue", f"CallId={CALL}", "QueueName=Sales", "CallerNumber=+358401234567"]
    send(receiver, "/enreach", "QueueCallInUserConnected", *queue,
         "UserName=agent@customer.example", "Timestamp=2026-03-02T10:00:00")  # fmt: skip
    send(receiver, "/enreach", "QueueCallInDisconnected", *queue, "Timestamp=2026-03-02T10:03:05")
    send(receiver, "/buzzeasy/work-item-closed", "WorkItemClosed", "mediaType=Voice",
         "isOutbound=true", "customerIdentifier=+447700900123", "completionCode=Sale",
         "createdAt=2026-03-02T11:00:00Z", "closedAt=2026-03-02T11:01:30Z")  # fmt: skip


def test_calls_become_one_activity_each_through_429s_and_a_lost_answer(
    tmp_path: Path, crm: StandInCrm
) -> None:
    # Two 429s asking for 1 s, then the activity made and its answer lost (503).
    crm.answer_next(Answer(429, retry_after=1), Answer(429, retry_after=1))
    crm.answer_next(Answer(503, commit=True))
    receiver = start_receiver(tmp_path, crm)
    try:
        a_call_and_a_work_item(receiver)
        wait_for(lambda: {s for _, s, _ in crm.answers} >= {200, 201}, "the activities")
        wait_for(lambda: len(crm.answers) == 5, "every attempt")
    finally:
        receiver.close()
    call, work_item = sorted(crm.activities, key=lambda a: str(a["call_id"]) != CALL)
    assert len(crm.activities) == 2
    assert {k: v for k, v in call.items() if k not in ("id", "external_id")} == {
        "type": "call",
        "direction": "inbound",
        "outcome": "answered",
        "phone": "+358401234567",
        "agent": "agent@customer.example",
        "queue": "Sales",
        "started_at": "2026-03-02T10:00:00",
        "ended_at": "2026-03-02T10:03:05",
        "duration_seconds": 185,
        "call_id": CALL,
    }
    assert work_item["type"] == "call" and work_item["direction"] == "outbound"
    assert (work_item["outcome"], work_item["duration_seconds"]) == ("Sale", 90)
    assert work_item["phone"] == "+447700900123"
    # Two events, each its own key on every attempt (the two go to the CRM side by side, so
    # either may have met the scripted answers); the retry after the lost answer got 200.
    assert Counter(status for _, status, _ in crm.answers) == {429: 2, 503: 1, 200: 1, 201: 1}
    attempts: dict[str | None, list[tuple[int, float]]] = {}
    for key, status, at in crm.answers:
        attempts.setdefault(key, []).append((status, at))
    assert {a["external_id"] for a in crm.activities} == set(attempts)
    for tried in attempts.values():
        statuses = [status for status, _ in tried]
        assert statuses[-1] in (200, 201) and (200 in statuses) == (503 in statuses)
        for (status, at), (_, again) in itertools.pairwise(tried):
            if status == 429:  # Retry-After: 1 waited for; the config's backoff is 0.1-0.2 s
                assert again - at >= 0.9
    assert "will be retried" in receiver.log
    assert "358401234567" not in receiver.log  # the log masks the caller's number


@pytest.mark.parametrize(
    ("env", "answer", "status", "reason"),
    [
        ({"CRM_API_KEY": "not-the-key"}, None, 401, "invalid API key"),
        ({}, Answer(422), 422, "Unprocessable Entity"),
    ],
    ids=["wrong API key", "activity refused"],
)
def test_a_4xx_answer_is_a_dead_letter_at_once(
    tmp_path: Path,
    crm: StandInCrm,
    env: dict[str, str],
    answer: Answer | None,
    status: int,
    reason: str,
) -> None:
    if answer is not None:
        crm.answer_next(answer)
    receiver = start_receiver(tmp_path, crm, **env)
    try:
        send(receiver, "/enreach", "QueueCallInDisconnected", "EntityType=Queue")
        wait_for(lambda: bool(dead_letters(receiver)), "the dead letter")
        [letter] = dead_letters(receiver)
    finally:
        receiver.close()
    assert letter["subscriber"] == "crm" and letter["attempts"] == 1
    error = f'HTTP {status} from {crm.url}/activities: {{"error": "{reason}"}}'
    assert letter["last_error"] == f"PermanentError: {error}"
    assert crm.activities == []
    assert "now a dead letter" in receiver.log


@pytest.mark.parametrize(
    ("unset", "message"),
    [("CRM_URL", "CRM_URL is not set"), ("CRM_API_KEY", "no CRM API key")],
)
def test_without_its_crm_settings_the_receiver_refuses_to_start(
    tmp_path: Path, crm: StandInCrm, unset: str, message: str
) -> None:
    with pytest.raises(RuntimeError, match="receiver exited") as refused:
        start_receiver(tmp_path, crm, **{unset: ""})
    assert message in str(refused.value)


def test_the_idempotency_key_is_one_per_event() -> None:
    key = idempotency_key("enreach", "3f0c")
    assert key == idempotency_key("enreach", "3f0c")
    assert len({key, idempotency_key("enreach", "3f0d"), idempotency_key("buzzeasy", "3f0c")}) == 3


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("3", 3.0), ("", None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", None)],
)
def test_retry_after_is_read_as_seconds_or_a_date_to_come(
    header: str, seconds: float | None
) -> None:
    assert retry_after(httpx.Headers({"Retry-After": header})) == seconds
    later = retry_after(httpx.Headers({"Retry-After": "Wed, 21 Oct 2099 07:28:00 -0000"}))
    assert later is not None and later > 0


def test_the_readme_commands_run_as_written() -> None:
    commands = shell_commands("examples/crm_bridge/README.md")
    assert commands == ["python -m examples.crm_bridge\n"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.rstrip().endswith("OK")
        assert "the CRM holds 9 activities" in done.stdout
        assert "358" not in done.stdout.replace(" 358", "")  # no caller number in clear

"""`receiver inbox erase`: one caller's data removed on request, on SQLite and PostgreSQL.

A real receiver serving every provider stores events that hold one caller's number written in
different forms (`+358 50 123 1234` from Enreach, `0501231234` with `--region FI`,
`+358501231234` from Engage WFM and Buzzeasy) beside other callers' events. The command finds
exactly the first kind, reports them by delivery state, and erases their payloads while keeping
their dedup keys: the provider's retry of an erased event is acknowledged and not delivered
again, and nothing else changed.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from receiver.inbox.base import open_admin
from receiver.inbox.models import ERASED, EventFilter
from tests.conftest import ROOT, Harness
from tests.support import postgres
from tests.support.e2e import ConfiguredReceiver, start_configured
from tests.test_all_providers import CONFIG, ENV

postgres_server = postgres.postgres_server
postgres_database = postgres.postgres_database

NUMBER = "+358501231234"
# (what the sender sends: receiver send arguments, whether it holds NUMBER)
SENDS: list[tuple[list[str], bool]] = [
    (["/enreach", "QueueCallInUserConnected", "--set", "CallerNumber=+358 50 123 1234"], True),
    (["/enreach", "QueueCallInArrived", "--set", "CallerNumber=0501231234"], True),
    (["/engage/wfm/calls", "EndCall", "--provider", "engage_wfm", "--encoding", "form",
      "--set", f"ani={NUMBER}"], True),
    (["/buzzeasy/outbound-call", "OutboundCall", "--provider", "buzzeasy",
      "--set", f"targetPhoneNumber={NUMBER}"], True),
    (["/enreach", "QueueCallInArrived", "--set", "CallerNumber=+358501231235"], False),
    (["/engage/wfm/calls", "EndCall", "--provider", "engage_wfm", "--encoding", "form",
      "--set", "ani=+15550200123"], False),
    (["/buzzeasy/outbound-call", "OutboundCall", "--provider", "buzzeasy",
      "--set", "targetPhoneNumber=+447700900001"], False),
]  # fmt: skip


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m receiver ARGS` without a terminal (stdin is not a tty)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RECEIVER_")}
    return subprocess.run(
        [sys.executable, "-m", "receiver", *args],
        cwd=cwd, env={**clean, "PYTHONPATH": str(ROOT), **(env or {})},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def send(receiver: ConfiguredReceiver, arguments: list[str], seed: int) -> None:
    path, *rest = arguments
    result = cli(
        "send", receiver.url(path), *rest, "--seed", str(seed), "--retries", "0",
        "--cacert", str(receiver.harness.certs.ca), cwd=receiver.harness.tmp_path, env=ENV,
    )  # fmt: skip
    assert result.returncode == 0, (arguments, result.stdout, result.stderr)


@pytest.fixture(params=["sqlite", "postgresql"])
def inbox_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """The inbox to erase from, and the environment its clients need."""
    if request.param == "sqlite":
        return str(tmp_path / "erase.db"), {}
    server: postgres.PostgresServer = request.getfixturevalue("postgres_server")
    url: str = request.getfixturevalue("postgres_database")
    return url.replace(f":{server.password}@", "@"), {"PGPASSWORD": server.password}


def test_erase_removes_one_callers_payloads_in_any_form_and_keeps_dedup(
    harness: Harness,
    inbox_url: tuple[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, env = inbox_url
    tmp_path = harness.tmp_path
    for name, value in env.items():  # libpq reads PGPASSWORD from this process's environment
        monkeypatch.setenv(name, value)
    receiver = start_configured(harness, CONFIG, {**ENV, **env}, "--inbox", url)
    for seed, (arguments, _) in enumerate(SENDS, start=100):
        send(receiver, arguments, seed)
    receiver.wait_for_handled(len(SENDS))
    admin = open_admin(url)
    try:
        stored = {d.id: d for d in admin.list(EventFilter(), limit=100)}
        assert len(stored) == len(SENDS)

        asked = cli(
            "inbox", "erase", "--inbox", url, "--phone", "+358 50 123 1234",
            "--region", "fi", "--json", cwd=tmp_path, env=env,
        )  # fmt: skip
        assert asked.returncode == 2 and "add --yes" in asked.stderr  # no terminal to ask
        done = cli(
            "inbox", "erase", "--inbox", url, "--phone", "+358 50 123 1234",
            "--region", "fi", "--json", "--yes", cwd=tmp_path, env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["matched"] == report["erased"] == 4
        assert report["deliveries_by_state"] == {"done": 4}
        assert report["searched_for"] == "+*** ** *** **34"  # masked, as everywhere
        assert "50 123 1234" not in done.stdout + done.stderr

        erased = {int(i) for i in report["event_ids"]}
        for event_id, delivery in stored.items():
            record = admin.get(str(event_id))
            assert record is not None
            if event_id in erased:
                assert record.payload == ERASED and record.headers == ()
            else:
                assert record.payload == delivery.payload and NUMBER.encode() not in record.payload
        # Erased means erased: a second search finds nothing.
        again = cli(
            "inbox", "erase", "--inbox", url, "--phone", NUMBER, "--region", "FI", "--yes",
            cwd=tmp_path, env=env,
        )  # fmt: skip
        assert again.returncode == 0 and "no stored event holds" in again.stdout

        # The providers retry the erased events: acknowledged, not delivered again.
        for seed, (arguments, holds) in enumerate(SENDS, start=100):
            if holds:
                send(receiver, arguments, seed)
        send(receiver, SENDS[-1][0], 999)  # a new event, handled after the retries
        receiver.wait_for_handled(len(SENDS) + 1)
        assert len(receiver.ended()) == len(SENDS) + 1
        assert admin.stats().events == len(SENDS) + 1
    finally:
        admin.close()


def answered(answer: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m receiver ARGS` with a terminal on stdin that types `answer` and Enter."""
    import pty

    leader, follower = pty.openpty()
    try:
        os.write(leader, answer.encode() + b"\n")
        clean = {k: v for k, v in os.environ.items() if not k.startswith("RECEIVER_")}
        return subprocess.run(
            [sys.executable, "-m", "receiver", *args],
            cwd=cwd, env={**clean, "PYTHONPATH": str(ROOT)}, stdin=follower,
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        os.close(leader)
        os.close(follower)


def test_erase_asks_first_and_does_nothing_unless_told_yes(harness: Harness) -> None:
    receiver = start_configured(harness, CONFIG, ENV)
    send(receiver, SENDS[0][0], 7)
    receiver.wait_for_handled(1)
    ask = ("inbox", "erase", "--inbox", str(receiver.process.inbox), "--phone", NUMBER)
    declined = answered("n", *ask, cwd=harness.tmp_path)
    assert declined.returncode == 1 and "nothing erased" in declined.stderr
    assert "1 event(s) hold +**********34" in declined.stdout
    assert "their deliveries: done 1" in declined.stdout and "[y/N]" in declined.stdout
    accepted = answered("y", *ask, cwd=harness.tmp_path)
    assert accepted.returncode == 0, accepted.stderr
    assert "erased 1 event(s)" in accepted.stdout
    again = cli(*ask, "--yes", cwd=harness.tmp_path)
    assert "no stored event holds" in again.stdout
    refused = cli("inbox", "erase", "--inbox", str(receiver.process.inbox), cwd=harness.tmp_path)
    assert refused.returncode == 2 and "say what to erase" in refused.stderr
    national = cli(*ask[:-1], "0501231234", cwd=harness.tmp_path)
    assert national.returncode == 2 and "needs --region" in national.stderr


def test_a_dispatcher_does_not_retry_an_event_erased_while_it_waited(tmp_path: Path) -> None:
    from receiver.dispatcher import Dispatcher, DispatchPolicy, Subscription
    from receiver.inbox.base import open_inbox
    from receiver.inbox.models import NewEvent

    calls: list[str] = []

    class Failing:
        async def handle(self, event: Any) -> None:
            calls.append(event.dedup_key)
            raise RuntimeError("the CRM is down")

        async def failed(self, event: Any, error: BaseException, *, final: bool) -> None:
            """Nothing to report."""

    async def main() -> None:
        url = str(tmp_path / "retry.db")
        inbox = open_inbox(url)
        await inbox.open()
        policy = DispatchPolicy(
            max_attempts=5, backoff_base=0.5, backoff_max=0.5, poll_interval=0.05
        )
        dispatch = Dispatcher(inbox, [Subscription("a", default=Failing())], policy=policy)
        await dispatch.start()
        body = b'{"CallerNumber": "+358501231234"}'
        await inbox.append(NewEvent("enreach", "k1", "QueueCallInArrived", None, body), ["a"])
        for _ in range(100):
            if calls:
                break
            await asyncio.sleep(0.02)
        assert calls == ["k1"]
        admin = open_admin(url)
        try:
            (held,) = admin.list(EventFilter())
            assert admin.erase([held.id]) == {"in_progress": 1}
        finally:
            admin.close()
        await asyncio.sleep(1.5)  # three backoffs
        assert calls == ["k1"]  # not retried with the erased payload
        await dispatch.stop(1.0)
        await inbox.close()

    asyncio.run(main())

"""`receiver inbox tail`: a real `receiver serve` handles events sent while the tail, a separate
process, follows its inbox (SQLite file or PostgreSQL); its lines arrive as things happen,
each event and attempt once, filtered as `list` filters; SIGTERM ends it with status 0 and a
summary; a reader that leaves ends it quietly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from receiver.inbox.base import open_admin
from receiver.inbox.sqlite import SqliteInbox
from receiver.testing import ReceiverProcess
from tests.conftest import ROOT, Harness, enreach_event, post_event, run_cli
from tests.support import postgres
from tests.support.inbox import event, run
from tests.support.postgres import PostgresServer

postgres_server = postgres.postgres_server
postgres_database = postgres.postgres_database

CALLER = "+358501231234"
CONFIG = """
[[endpoints]]
name = "enreach"
kind = "enreach"
path = "/enreach"
secret_env = ["RECEIVER_ENREACH_SECRET"]

[[endpoints.subscribers]]
name = "crm"
handler = "tests.support.dead_letters:Accepts"

[[endpoints.subscribers]]
name = "flaky"
handler = "tests.support.dead_letters:FailsOnce"

[[endpoints.subscribers]]
name = "refuses"
handler = "tests.support.dead_letters:Refuses"
"""
SUBSCRIBERS = ["crm", "flaky", "refuses"]
PER_EVENT = {("crm", "done"): 1, ("flaky", "retry"): 1, ("flaky", "done"): 1}
PER_EVENT |= {("refuses", "retry"): 1, ("refuses", "dead"): 1}
"""The attempts of one event with `--max-attempts 2`."""


class Tail:
    """`receiver inbox tail ARGS` running, its stdout lines collected as they arrive."""

    def __init__(self, cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "receiver", "inbox", "tail", "--interval", "0.2", *args],
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[tuple[float, str]] = []
        self.errors: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, None), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        self.wait_for(lambda: bool(self.errors), "the tail's start line")
        assert self.errors[0].startswith("receiver inbox tail: following"), self.errors

    def _read(self, stream: Any, into: list[tuple[float, str]] | None) -> None:
        for line in stream:
            if into is None:
                self.errors.append(line.rstrip("\n"))
            else:
                into.append((time.monotonic(), line.rstrip("\n")))

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
        """Poll `condition` while the tail runs; fail with what it printed."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"no {what} (exit {self.proc.returncode}): {self.errors} {self.lines}")
            time.sleep(0.05)

    def wait_lines(self, count: int, what: str) -> None:
        """Wait until `count` lines came."""
        self.wait_for(lambda: len(self.lines) >= count, what)

    def records(self) -> list[dict[str, Any]]:
        """The JSON lines so far."""
        return [json.loads(line) for _, line in list(self.lines)]

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send `signum`; its exit status once its output is read."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        code = self.proc.wait(30)
        self.close()
        return code

    def close(self) -> None:
        """Kill it if it still runs; close its pipes once they are read."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for reader in self._readers:
            reader.join(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def tails() -> Iterator[list[Tail]]:
    """The tails a test starts, stopped after it."""
    started: list[Tail] = []
    try:
        yield started
    finally:
        for tail in started:
            tail.close()


def serve(harness: Harness, *args: str, env: dict[str, str] | None = None) -> ReceiverProcess:
    """`receiver serve` with three subscribers (done, retried then done, dead after two)."""
    path = harness.tmp_path / "receiver.toml"
    path.write_text(CONFIG)
    options = ["--config", str(path), "--max-attempts", "2", *args]
    return harness.receiver(*options, env=env, handler=None)


def send(harness: Harness, receiver: ReceiverProcess, *payloads: dict[str, Any]) -> None:
    """POST each of `payloads` to the receiver's Enreach endpoint."""
    with harness.client() as client:
        for payload in payloads:
            assert post_event(client, receiver.url(), payload).status_code == 200


def settled(receiver: ReceiverProcess) -> bool:
    """Whether every delivery in the receiver's (SQLite) inbox is finished."""
    admin = open_admin(str(receiver.inbox))
    try:
        states = admin.stats().by_state
    finally:
        admin.close()
    return sum(states.values()) > 0 and not states.get("pending") and not states.get("in_progress")


def attempts_of(records: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """(subscriber, outcome) counts of the attempt records."""
    return Counter((r["subscriber"], r["outcome"]) for r in records if r["kind"] == "attempt")


def check_follows(harness: Harness, receiver: ReceiverProcess, tail: Tail) -> None:
    """Send two events, then one more once the first two were followed; every line once."""
    first = [enreach_event(CallerNumber=CALLER) for _ in range(2)]
    send(harness, receiver, *first)
    tail.wait_lines(2 * (1 + 5), "the first two events' lines")
    running_at = time.monotonic()
    assert tail.proc.poll() is None  # the lines came while it runs
    later = enreach_event("QueueCallInDisconnected", CallerNumber=CALLER)
    send(harness, receiver, later)
    tail.wait_lines(3 * (1 + 5), "the third event's lines")
    time.sleep(1.0)  # polls past the grace period print nothing again

    assert tail.stop() == 0
    assert tail.errors[-1] == "receiver inbox tail: 3 event(s), 15 attempt(s)"
    assert len(tail.errors) == 2
    records = tail.records()
    assert len(records) == 18
    assert all(at > running_at for at, line in tail.lines[12:])
    events = [r for r in records if r["kind"] == "event"]
    assert [e["call_id"] for e in events] == [p["CallId"] for p in [*first, later]]
    assert [e["event_type"] for e in events][2] == "QueueCallInDisconnected"
    for e in events:
        assert e["subscribers"] == SUBSCRIBERS
        assert e["source"] == "enreach"
        assert e["at"].endswith("Z")
    assert attempts_of(records) == Counter({k: 3 * n for k, n in PER_EVENT.items()})
    keys = [
        (r["event_id"], r["subscriber"], r["number"], r["outcome"])
        for r in records
        if r["kind"] == "attempt"
    ]
    assert len(set(keys)) == len(keys)
    ids = [e["event_id"] for e in events]
    for record in records:
        if record["kind"] == "attempt":
            # Each attempt after its event's line.
            assert records.index(record) > records.index(events[ids.index(record["event_id"])])
            assert record["duration"] >= 0
    dead = [r for r in records if r.get("outcome") == "dead"]
    assert {r["number"] for r in dead} == {2}
    assert {r["error"] for r in dead} == {"RuntimeError: the CRM refused caller +**********34"}
    assert {r["error"] for r in records if r.get("outcome") == "done"} == {None}


def test_tail_prints_each_new_event_and_attempt_once_as_they_happen(
    harness: Harness, tails: list[Tail]
) -> None:
    receiver = serve(harness)
    before = enreach_event()
    send(harness, receiver, before)  # before the tail: not shown
    harness.wait_for(lambda: settled(receiver), what="the first event's deliveries finished")
    tails.append(tail := Tail(harness.tmp_path, "--json", "--inbox", str(receiver.inbox)))
    check_follows(harness, receiver, tail)
    assert before["CallId"] not in "\n".join(line for _, line in tail.lines)

    # --since: what happened from then on, the first event included; Ctrl-C ends it too.
    since = Tail(harness.tmp_path, "--json", "--inbox", str(receiver.inbox), "--since", "1h")
    tails.append(since)
    since.wait_lines(4 * 6, "everything of the last hour")
    time.sleep(0.5)
    assert since.stop(signal.SIGINT) == 0
    assert since.errors[-1] == "receiver inbox tail: 4 event(s), 20 attempt(s)"
    assert since.records()[0]["call_id"] == before["CallId"]
    assert sorted(map(json.dumps, since.records()[6:])) == sorted(map(json.dumps, tail.records()))


def test_tail_on_a_postgresql_inbox(
    harness: Harness,
    tails: list[Tail],
    postgres_server: PostgresServer,
    postgres_database: str,
) -> None:
    inbox = postgres_database.replace(f":{postgres_server.password}@", "@")
    env = {"PGPASSWORD": postgres_server.password}
    receiver = serve(harness, "--inbox", inbox, env=env)
    tails.append(tail := Tail(harness.tmp_path, "--json", "--inbox", inbox, env=env))
    check_follows(harness, receiver, tail)


def test_tail_takes_the_filters_of_list(harness: Harness, tails: list[Tail]) -> None:
    receiver = serve(harness)
    wanted_call = "5b0d4a6e-1c2f-4e8a-9d3b-7f6a5c4e3d21"
    other_caller = "+358409876543"

    def tail(*args: str) -> Tail:
        started = Tail(harness.tmp_path, "--json", "--inbox", str(receiver.inbox), *args)
        tails.append(started)
        return started

    by_subscriber = tail("--subscriber", "refuses")
    by_type = tail("--type", "QueueCallInDisconnected")
    by_call = tail("--call", wanted_call)
    by_phone = tail("--phone", "358 40 987-6543")
    send(
        harness,
        receiver,
        enreach_event(CallerNumber=CALLER),
        enreach_event("QueueCallInDisconnected", CallerNumber=CALLER),
        enreach_event(CallId=wanted_call, CallerNumber=other_caller),
    )
    by_subscriber.wait_lines(3 * 3, "refuses' lines")
    for each in (by_type, by_call, by_phone):
        each.wait_lines(6, "one event's lines")
    time.sleep(1.0)
    for each in (by_subscriber, by_type, by_call, by_phone):
        assert each.stop() == 0

    records = by_subscriber.records()
    assert len(records) == 9
    assert {tuple(r["subscribers"]) for r in records if r["kind"] == "event"} == {("refuses",)}
    assert {r["subscriber"] for r in records if r["kind"] == "attempt"} == {"refuses"}
    assert {r["event_type"] for r in by_type.records()} == {"QueueCallInDisconnected"}
    assert {r["call_id"] for r in by_call.records()} == {wanted_call}
    assert {r["call_id"] for r in by_phone.records()} == {wanted_call}
    assert attempts_of(by_type.records()) == Counter(PER_EVENT)
    # `list` takes the same filters, --phone included.
    listed = run_cli(
        "inbox", "list", "--inbox", str(receiver.inbox), "--phone", "358 40 987-6543", "--json",
        cwd=harness.tmp_path,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert {(d["order_key"], d["subscriber"]) for d in json.loads(listed.stdout)} == {
        (wanted_call, name) for name in SUBSCRIBERS
    }


def test_tail_as_text_masks_phone_numbers_unless_asked(harness: Harness, tails: list[Tail]) -> None:
    receiver = serve(harness)
    masked = Tail(harness.tmp_path, "--inbox", str(receiver.inbox))
    shown = Tail(harness.tmp_path, "--inbox", str(receiver.inbox), "--show-phone-numbers")
    tails += [masked, shown]
    call = "0f6e2b1c-8a3d-4c5e-9b7a-2d4f6e8a0c13"
    send(
        harness,
        receiver,
        enreach_event("QueueCallInUserAllocated", CallId=call, CallerNumber=CALLER),
    )
    for tail in (masked, shown):
        tail.wait_lines(6, "six lines")
        assert tail.stop() == 0
    lines = [line for _, line in masked.lines]
    first = lines[0].split()
    assert first[2:5] == ["event", first[3], "enreach"]
    assert first[5:] == [
        "QueueCallInUserAllocated",
        "call",
        call,
        "->",
        "crm,",
        "flaky,",
        "refuses",
    ]
    dead = next(line for line in lines if " dead " in line)
    assert dead.split()[4:7] == ["refuses", "#2", "dead"]
    assert dead.endswith("RuntimeError: the CRM refused caller +**********34")
    assert CALLER not in "\n".join(lines)
    shown_dead = next(line for _, line in shown.lines if " dead " in line)
    assert shown_dead.endswith(f"RuntimeError: the CRM refused caller {CALLER}")


EVENTS = 3000  # far more lines than a pipe holds (64 KiB)


def test_a_reader_that_leaves_ends_the_tail_quietly(tmp_path: Path) -> None:
    async def fill(inbox: SqliteInbox) -> None:
        await asyncio.gather(*(inbox.append(event(f"event-{n:05d}")) for n in range(EVENTS)))

    run(tmp_path, fill)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["inbox", "tail", "--inbox", str(tmp_path / "inbox.db"), "--since", "1h", "--json"]
    writer = subprocess.Popen(
        [sys.executable, "-m", "receiver", *args],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert writer.stdout is not None and writer.stderr is not None
    head = subprocess.run(
        ["head", "-n", "1"], stdin=writer.stdout, capture_output=True, timeout=60, check=True
    )
    writer.stdout.close()  # head has gone: with this copy closed, the pipe has no reader left
    errors = writer.stderr.read().decode()
    writer.stderr.close()
    assert writer.wait(timeout=60) == 141, errors  # 128 + SIGPIPE, as `yes | head` reports
    assert errors.startswith("receiver inbox tail: following")
    assert len(errors.splitlines()) == 1  # no traceback, no summary
    assert json.loads(head.stdout)["kind"] == "event"


def test_bad_tail_options_are_usage_errors(tmp_path: Path) -> None:
    for args, message in (
        (["--interval", "0"], "is not a number of seconds from 0.05 to 3600"),
        (["--phone", "abc"], "is not a phone number"),
        (["--until", "1h"], "unrecognized arguments: --until"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "receiver", "inbox", "tail", "--inbox", "x.db", *args],
            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 2
        assert message in result.stderr

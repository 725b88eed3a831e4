"""Faults inside the receiver's own machinery: a write SQLite cannot hold in memory, an inbox
writer thread that dies, a SIGTERM while the inbox is locked by another process.

One write that fails, whatever it raises, fails alone (503) and everything else goes on. A
writer that stops all the same is fatal: the receiver says so in one line and exits with a
non-zero status (so a supervisor restarts it), answering every request meanwhile (503, or a
closed connection), never hanging. The faults come from `tests.support.faulty_serve`, which
runs `receiver serve` with SQLite's heap capped (a genuine out-of-memory error) or with its
writer thread made to crash.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import threading
import time
from collections import Counter

import httpx
import pytest

from receiver.testing import ReceiverProcess
from tests.conftest import ROOT, SECRET, Harness, enreach_event, post_event
from tests.support.faults import (
    assert_no_unhandled_errors,
    deliver,
    inbox_states,
    provider_receiver,
    settled_states,
    stop_within,
)
from tests.support.provider_cases import PROVIDERS_ON_ENGINES, ProviderCase

DONE = 2
SHUTDOWN = 2.0
BOUND = 2 * SHUTDOWN + 3.0
"""SIGTERM to exit: open requests get --shutdown-timeout, then handlers get as long again
(tests/test_faults_shutdown.py), plus start-up-sized slack."""


class FaultyReceiver(ReceiverProcess):
    """`receiver serve` run through `tests.support.faulty_serve`."""

    def command(self) -> list[str]:
        """The usual command line, with the fault-injecting module in place of `receiver`."""
        command = super().command()
        assert command[1:3] == ["-m", "receiver"]
        return [command[0], "-m", "tests.support.faulty_serve", *command[3:]]


def faulty_receiver(harness: Harness, *args: str, env: dict[str, str]) -> FaultyReceiver:
    """A started `FaultyReceiver` with the recording handler, stopped after the test."""
    process = FaultyReceiver(
        harness.tmp_path,
        certs=harness.certs,
        secret=SECRET,
        handler="tests.support.recorder:Recorder",
        args=["--backoff-base", "0.05", "--backoff-max", "0.2", *args],
        env={"RECORD_FILE": str(harness.record_file), "PYTHONPATH": str(ROOT), **env},
    )
    harness.processes.append(process)
    process.start()
    return process


def test_a_write_sqlite_has_no_memory_for_gets_503_and_every_other_write_goes_on(
    harness: Harness,
) -> None:
    # 4 MB of heap for SQLite: a 6 MB payload cannot be bound, a normal one always can.
    receiver = faulty_receiver(
        harness, "--max-body", str(8 * 1024 * 1024), env={"FAULT_SQLITE_HEAP_LIMIT": "4000000"}
    )
    before, huge, after = enreach_event(), enreach_event(Note="x" * 6_000_000), enreach_event()
    alongside = [enreach_event() for _ in range(8)]
    answers: dict[str, int] = {}

    def send(event: dict[str, object]) -> None:
        with harness.client() as client:
            answers[str(event["Id"])] = post_event(client, receiver.url(), event).status_code

    with harness.client() as client:
        assert post_event(client, receiver.url(), before).status_code == 200
        # Normal webhooks in flight with it, likely sharing its transaction.
        senders = [threading.Thread(target=send, args=(e,)) for e in [huge, *alongside]]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join(30)
        assert answers.pop(str(huge["Id"])) == 503, "a write that failed was not answered 503"
        assert set(answers.values()) == {200}, answers
        assert post_event(client, receiver.url(), after).status_code == 200
        # Nothing stopped (the admin listener's health), and the inbox takes writes again.
        assert client.get(receiver.admin_url("/healthz")).status_code == 200
        ready = client.get(receiver.admin_url("/readyz"))
        assert ready.status_code == 200, ready.text
    stored = {str(e["Id"]) for e in [before, *alongside, after]}
    harness.wait_for(lambda: set(harness.handled_keys()) == stored, what="the others handled")
    assert settled_states(receiver.inbox, dict.fromkeys(stored, DONE)) == dict.fromkeys(
        stored, DONE
    )
    assert "MemoryError" in receiver.log and "could not store event" in receiver.log
    assert receiver.stop() == 0
    assert_no_unhandled_errors(receiver.log)


@pytest.mark.parametrize("sigterm", [False, True], ids=["on-its-own", "with-sigterm"])
def test_a_writer_that_dies_makes_the_receiver_say_so_and_exit_non_zero_promptly(
    harness: Harness, sigterm: bool
) -> None:
    crash = harness.tmp_path / "crash-the-writer"
    receiver = faulty_receiver(
        harness,
        "--shutdown-timeout",
        str(SHUTDOWN),
        env={"FAULT_WRITER_CRASH_FILE": str(crash)},
    )
    assert receiver.proc is not None
    first, doomed, later = enreach_event(), enreach_event(), enreach_event()
    with harness.client() as client:
        assert post_event(client, receiver.url(), first).status_code == 200
        harness.wait_for(lambda: harness.handled_keys() == [first["Id"]], what="first handled")
        crash.touch()
        started = time.monotonic()
        # The request whose write finds the writer dying: 503 or a closed connection.
        with contextlib.suppress(httpx.TransportError):
            assert post_event(client, receiver.url(), doomed).status_code == 503
        if sigterm:
            receiver.proc.terminate()
        # Until the process is gone, requests are answered at once, never left hanging.
        try:
            with harness.client() as another:
                another.timeout = httpx.Timeout(3.0)
                assert post_event(another, receiver.url(), later).status_code == 503
        except httpx.TransportError:
            pass
    try:
        code = receiver.proc.wait(BOUND)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {BOUND:g}s after its writer died:\n{receiver.log[-4000:]}")
    took = time.monotonic() - started
    assert code == 1, f"exit status {code}:\n{receiver.log[-3000:]}"
    lines = [line for line in receiver.log.splitlines() if " CRITICAL " in line]
    assert len(lines) == 1, receiver.log[-3000:]
    assert "inbox writer stopped (MemoryError: injected" in lines[0]
    assert took < BOUND
    # Nothing acknowledged was lost; a supervisor's restart goes on where it stopped.
    restarted = harness.receiver()
    with harness.client() as client:
        assert post_event(client, restarted.url(), later).status_code == 200
    harness.wait_for(
        lambda: set(harness.handled_keys()) == {first["Id"], later["Id"]}, what="later handled"
    )
    assert restarted.stop() == 0


@pytest.mark.parametrize(("provider", "engine"), PROVIDERS_ON_ENGINES)
def test_sigterm_is_bounded_while_another_process_holds_the_inbox_locked(
    harness: Harness, provider: ProviderCase, engine: str
) -> None:
    receiver = provider_receiver(
        harness, provider,
        "--engine", engine, "--shutdown-timeout", str(SHUTDOWN), "--handler-timeout", "30",
        env={"RECORD_STUBBORN_MARK": "Stubborn"},
        handler="tests.support.stubborn:Stubborn",
    )  # fmt: skip
    url = receiver.url(provider.path)
    stubborn, fine = provider.marked(url, "Stubborn"), provider.request(url)
    with harness.client() as client:
        assert deliver(client, stubborn).status_code == 200
        assert deliver(client, fine).status_code == 200
    harness.wait_for(
        lambda: provider.dedup_key(fine) in harness.handled_keys(), what="the fine one handled"
    )
    blocker = sqlite3.connect(receiver.inbox, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process writes, for longer than any timeout
    answers: list[int | str] = []

    def send() -> None:
        with harness.client() as client:
            try:
                answers.append(deliver(client, provider.request(url)).status_code)
            except httpx.HTTPError as exc:
                answers.append(type(exc).__name__)

    senders = [threading.Thread(target=send) for _ in range(8)]
    try:
        for thread in senders:
            thread.start()
        time.sleep(0.3)  # the requests wait on the locked inbox
        code, took = stop_within(receiver, BOUND)
    finally:
        for thread in senders:
            thread.join(30)
        blocker.execute("ROLLBACK")
        blocker.close()
    assert took <= BOUND and code == 0, (
        f"SIGTERM to exit took {took:.1f}s (bound {BOUND:g}s), exit status {code}, with the "
        f"inbox locked:\n{receiver.log[-4000:]}"
    )
    assert 200 not in answers, f"acknowledged while nothing could be stored: {answers}"
    # The stubborn event, never finished, is handed out again at the next start.
    assert inbox_states(receiver.inbox)[provider.dedup_key(stubborn)] in (0, 1)
    counts = Counter(harness.handled_keys())
    assert counts[provider.dedup_key(fine)] == 1

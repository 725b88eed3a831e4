"""Storage faults beyond the request path: a full disk or a locked database while the
dispatcher records what handlers did, and a real full filesystem under the inbox.

(test_reliability.py covers appends: EFBIG and a locked file give 503, then recovery.)
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from receiver.sender import WireRequest
from tests.conftest import ROOT, Harness
from tests.support.faults import (
    SmallDiskReceiver,
    assert_no_unhandled_errors,
    deliver,
    file_size_limit,
    provider_receiver,
    settled_states,
)
from tests.support.provider_cases import PROVIDER_CASES, PROVIDERS, ProviderCase

DONE, DEAD = 2, 3


@contextlib.contextmanager
def storage_fault(kind: str, pid: int, inbox: Path) -> Iterator[None]:
    """While inside, every inbox write of the receiver `pid` fails."""
    if kind == "disk-full":
        # Any write past the first 4 KiB of a file fails with EFBIG: every WAL frame does,
        # while the recorder's and the log's few lines still fit.
        with file_size_limit(pid, 4096):
            yield
        return
    blocker = sqlite3.connect(inbox, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock past busy_timeout
        yield
        blocker.execute("ROLLBACK")
    finally:
        blocker.close()


# The dispatcher knows nothing of providers: each fault case runs once, the providers in turn.
STATE_WRITE_CASES = [
    pytest.param(fault, outcome, case, id=f"{fault}-{outcome}-{case.name}")
    for (fault, outcome), case in zip(
        [("disk-full", "done"), ("disk-full", "dead"), ("locked", "done"), ("locked", "dead")],
        itertools.cycle(PROVIDER_CASES),
    )
]


@pytest.mark.parametrize(("fault", "outcome", "provider"), STATE_WRITE_CASES)
def test_failed_state_writes_are_retried_not_lost_or_repeated(
    harness: Harness, provider: ProviderCase, fault: str, outcome: str
) -> None:
    fail = {"RECORD_FAIL_MARKER": str(harness.tmp_path / "always")} if outcome == "dead" else {}
    if fail:
        (harness.tmp_path / "always").touch()
    receiver = provider_receiver(
        harness, provider, "--max-attempts", "1",
        env={"RECORD_SLEEP": "1", **fail},
    )  # fmt: skip
    assert receiver.proc is not None
    keys = []
    with harness.client() as client:
        for _ in range(3):
            request = provider.request(receiver.url(provider.path))
            assert deliver(client, request).status_code == 200
            keys.append(provider.dedup_key(request))
    harness.wait_for(
        lambda: sum(r["phase"] == "start" for r in harness.records()) == 3, what="handlers busy"
    )
    final = "end" if outcome == "done" else "failed"
    with storage_fault(fault, receiver.proc.pid, receiver.inbox):
        # The handlers finish while nothing can be written: marking them done (or dead) fails.
        harness.wait_for(
            lambda: sum(r["phase"] == final for r in harness.records()) == 3,
            what=f"three '{final}' records",
        )
        time.sleep(2.5 if fault == "locked" else 0.5)  # past a locked file's 2 s busy timeout
    # Evidence the fault hit the dispatcher's writes: the dispatcher's retry message, or the
    # writer's own (it re-runs a failed batch one write at a time, which may already succeed).
    hit = ("could not record", "inbox write failed", "writes failed (database is locked)")
    assert any(text in receiver.log for text in hit), (
        f"the {fault} fault did not hit the dispatcher's writes:\n{receiver.log}"
    )
    # Without a restart, the receiver records the outcome once it can write again.
    want = DONE if outcome == "done" else DEAD
    states = settled_states(receiver.inbox, dict.fromkeys(keys, want), timeout=10)
    assert states == dict.fromkeys(keys, want), (
        f"10 s after the {fault} fault cleared, the inbox still says {states}: the dispatcher "
        f"dropped its failed '{outcome}' writes instead of retrying them"
    )
    # And a restart does not hand any of them to the handler again.
    assert receiver.stop() == 0
    receiver.start()
    time.sleep(1.5)
    assert receiver.stop() == 0
    starts = Counter(str(r["key"]) for r in harness.records() if r["phase"] == "start")
    assert starts == Counter(keys), f"handled again after a restart: {starts}"
    assert_no_unhandled_errors(receiver.log)


needs_namespaces = pytest.mark.skipif(
    not SmallDiskReceiver.available(),
    reason="mounting a tmpfs needs root or unprivileged user namespaces (unshare -rm)",
)


@needs_namespaces
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_full_filesystem_gives_503_and_the_receiver_recovers_when_space_is_freed(
    harness: Harness, provider: ProviderCase
) -> None:
    config = provider.write_config(harness.tmp_path)
    receiver = SmallDiskReceiver(
        harness.tmp_path,
        certs=harness.certs,
        size_kib=1024,
        handler="tests.support.recorder:Recorder",
        args=["--config", str(config), "--backoff-base", "0.05", "--backoff-max", "0.2"],
        env={
            **provider.secret_env,
            "RECORD_FILE": str(harness.record_file),
            "RECORD_SLEEP": "1",
            "PYTHONPATH": str(ROOT),
        },
    )
    harness.processes.append(receiver)
    receiver.start()
    url = receiver.url(provider.path)
    with harness.client() as client:
        early = provider.request(url)  # being handled when the disk fills up
        assert deliver(client, early).status_code == 200
        harness.wait_for(lambda: len(harness.records()) == 1, what="the handler to start")
        ballast = receiver.fill()
        # What still fits in space the inbox already holds (its WAL is reused once
        # checkpointed) is stored and acknowledged; then nothing fits, and the answer is 503.
        accepted: list[WireRequest] = []
        refused: list[WireRequest] = []
        for _ in range(60):
            request = provider.request(url)
            response = deliver(client, request)
            assert response.status_code in (200, 503), response.text
            (accepted if response.status_code == 200 else refused).append(request)
            if len(refused) == 3:
                break
        assert len(refused) == 3, f"{len(accepted)} events accepted on a full filesystem"
        harness.wait_for(
            lambda: len(harness.handled_keys()) == 1 + len(accepted),
            what="the events stored before the disk filled handled",
        )
        ballast.unlink()
        # The sender's next retries are stored; nobody restarted anything.
        for request in refused:
            assert deliver(client, request).status_code == 200
    keys = {provider.dedup_key(r) for r in [early, *accepted, *refused]}
    harness.wait_for(lambda: set(harness.handled_keys()) == keys, what="both events handled")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and set(receiver.states().values()) != {DONE}:
        time.sleep(0.1)
    assert receiver.states() == dict.fromkeys(keys, DONE), (
        "the event whose completion could not be written on the full disk is not done"
    )
    with harness.client() as client:
        # Nothing stopped (the admin listener's health), and the inbox takes writes again.
        assert client.get(receiver.admin_url("/healthz")).status_code == 200
        ready = client.get(receiver.admin_url("/readyz"))
        assert ready.status_code == 200, ready.text
    assert receiver.stop() == 0
    assert Counter(harness.handled_keys()) == Counter(keys)
    assert "could not store event" in receiver.log
    assert_no_unhandled_errors(receiver.log)

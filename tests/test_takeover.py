"""Several processes on one SQLite inbox: one dispatches, the others take over when it stops.

`receiver serve --no-dispatch` acknowledges and stores; `receiver worker` processes with the
same config dispatch. One of them holds the inbox's dispatch lock and says "dispatching", the
others say "waiting to take over"; when the holder dies (kill -9) or stops (SIGTERM), another
one dispatches within seconds and nothing stored is lost.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from receiver.certs import DevCertificates
from receiver.inbox.base import open_admin
from receiver.inbox.models import EventFilter
from receiver.scenarios import PlannedRequest, ScenarioOptions, Summary, build_stream, run_stream
from receiver.sender import EnreachWire, Sender
from receiver.testing import ReceiverProcess, free_port
from tests.conftest import ROOT, Harness
from tests.support.faults import assert_no_unhandled_errors
from tests.support.startup import assert_refused
from tests.support.subscribers import (
    assert_call_order,
    assert_every_one,
    assert_exactly_once,
    assert_lane_order,
    read_handled,
    subscribers_config,
)
from tests.support.webhook_sink import WebhookSink

TOKEN = "Zk5-takeover-enreach-token-0b9e"
FORWARD_SECRET = "whsec_" + base64.b64encode(b"takeover forwarding key, 32 b...").decode()
SUBSCRIBERS = ("crm", "audit", "sink")
DISPATCHES_NOW = "the process that dispatched has stopped; this one dispatches now"


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without RECEIVER_* variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECEIVER_")}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **extra}


def delivery_states(inbox: Path) -> dict[str, dict[str, int]]:
    """Deliveries by subscriber and state."""
    admin = open_admin(str(inbox))
    try:
        return admin.stats().by_subscriber
    finally:
        admin.close()


class Worker:
    """`receiver worker` as a child process, its output in a log file, its admin listener on
    a free port of its own (several run side by side) with `certs`."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        args: list[str],
        env: dict[str, str],
        certs: DevCertificates,
    ) -> None:
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self.admin_port = free_port()
        self.command = [sys.executable, "-m", "receiver", "worker", *args]
        self.command += ["--cert", str(certs.cert), "--key", str(certs.key)]
        self.command += ["--admin-port", str(self.admin_port)]
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The child's process id."""
        assert self.proc is not None
        return self.proc.pid

    @property
    def log(self) -> str:
        """Everything it wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        """Start the child."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_for(self, text: str, timeout: float = 20.0) -> float:
        """Wait until `text` is in its output; the time.monotonic() it was seen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log:
                return time.monotonic()
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"worker exited with {self.proc.returncode}:\n{self.log}")
            time.sleep(0.02)
        pytest.fail(f"no {text!r} from the worker after {timeout}s:\n{self.log}")

    def kill(self) -> None:
        """SIGKILL it (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM it; its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise


class Cluster:
    """Receivers and workers sharing one inbox, with three subscribers (crm and audit record,
    sink forwards to `sink`)."""

    def __init__(self, harness: Harness, sink: WebhookSink, certs: DevCertificates) -> None:
        self.harness = harness
        self.sink = sink
        self.tmp_path = harness.tmp_path
        self.config = self.tmp_path / "receiver.toml"
        self.config.write_text(
            subscribers_config(
                forward=sink.url,
                ca_file=certs.ca,
                handlers=(("crm", "Recorder"), ("audit", "Recorder")),
                secret_env="TAKEOVER_ENREACH_TOKEN",
                forward_secret_env="TAKEOVER_FORWARD_SECRET",
            )
        )
        self.records = self.tmp_path / "subscribers.jsonl"
        self.inbox = self.tmp_path / "inbox.db"
        self.workers: list[Worker] = []

    def subscriber_env(self, sleep: float) -> dict[str, str]:
        """What the subscribers need (the forwarding secret; no Enreach token)."""
        return {
            "TAKEOVER_FORWARD_SECRET": FORWARD_SECRET,
            "SUBSCRIBERS_RECORD_FILE": str(self.records),
            "SUBSCRIBERS_SLEEP": str(sleep),
        }

    def receiver(self, *args: str, sleep: float = 0.0, name: str = "") -> ReceiverProcess:
        """`receiver serve` on the shared inbox (`name`: in a folder of its own)."""
        workdir = self.tmp_path / name if name else None
        if workdir is not None:
            workdir.mkdir()
        return self.harness.receiver(
            "--config", str(self.config), "--inbox", str(self.inbox), "--workers", "4", *args,
            env={"TAKEOVER_ENREACH_TOKEN": TOKEN, **self.subscriber_env(sleep)},
            handler=None,
            workdir=workdir,
        )  # fmt: skip

    def worker(self, name: str, *, sleep: float = 0.0) -> Worker:
        """A started `receiver worker` on the shared inbox."""
        args = ["--config", str(self.config), "--inbox", str(self.inbox), "--workers", "4"]
        args += ["--backoff-base", "0.05", "--backoff-max", "0.2"]
        env = clean_env(**self.subscriber_env(sleep))
        worker = Worker(self.tmp_path, name, args, env, self.harness.certs)
        self.workers.append(worker)
        worker.start()
        return worker

    def handled(self) -> dict[str, list[str]]:
        """Each subscriber's handled dedup keys, in the order handled."""
        found = {n: [h.key for h in read_handled(self.records, n)] for n in ("crm", "audit")}
        found["sink"] = [r.event_id for r in self.sink.received if r.verified]
        return found

    def states(self) -> dict[str, dict[str, int]]:
        """Deliveries by subscriber and state."""
        return delivery_states(self.inbox)

    def wait_all_done(self, count: int, timeout: float = 30.0) -> None:
        """Wait until every subscriber has `count` deliveries done."""

        def done() -> bool:
            states = self.states()
            return all(states.get(n, {}).get("done", 0) >= count for n in SUBSCRIBERS)

        self.harness.wait_for(done, timeout=timeout, what=f"{count} deliveries done each")

    def arrival(self) -> dict[str, tuple[int, str | None]]:
        """Dedup key to inbox id and order key."""
        admin = open_admin(str(self.inbox))
        try:
            return {
                d.dedup_key: (d.id, d.order_key) for d in admin.list(EventFilter(), limit=10**6)
            }
        finally:
            admin.close()

    def close(self) -> None:
        """Stop every worker and receiver started."""
        try:
            for worker in self.workers:
                worker.kill()
        finally:
            self.harness.close()


@pytest.fixture
def sink(tls_ca: DevCertificates) -> Iterator[WebhookSink]:
    """The forwarding subscriber's service."""
    with WebhookSink(FORWARD_SECRET, tls_ca) as service:
        yield service


@pytest.fixture
def cluster(tmp_path: Path, tls_ca: DevCertificates, sink: WebhookSink) -> Iterator[Cluster]:
    """Processes on one inbox, all stopped (before the sink) after the test."""
    harness = Harness(tmp_path, tls_ca)
    processes = Cluster(harness, sink, tls_ca)
    try:
        yield processes
    finally:
        processes.close()


def send(receiver: ReceiverProcess, ca: Path, stream: list[PlannedRequest]) -> Summary:
    """Send `stream` to the receiver's Enreach endpoint."""

    async def main() -> Summary:
        async with Sender(
            receiver.url("/enreach"), provider=EnreachWire(secret=TOKEN), verify=ca, retries=0
        ) as sender:
            return await run_stream(stream, sender, rate=200.0, concurrency=8)

    return asyncio.run(main())


def keys_of(stream: list[PlannedRequest]) -> set[str]:
    """The dedup keys of the stream's genuine events."""
    return {p.event_id.lower() for p in stream if not p.wrong_token}


def planned_calls(stream: list[PlannedRequest]) -> dict[str, list[str]]:
    """CallId to the dedup keys of its events in sending order."""
    calls: dict[str, list[str]] = {}
    for p in stream:
        if p.payload.get("CallId") and not p.duplicate and not p.wrong_token:
            calls.setdefault(str(p.payload["CallId"]), []).append(p.event_id.lower())
    return calls


def test_a_waiting_worker_takes_over_from_a_killed_one(
    cluster: Cluster, tls_ca: DevCertificates
) -> None:
    receiver = cluster.receiver("--no-dispatch")
    assert "(not dispatching)" in receiver.log
    first = cluster.worker("worker-1", sleep=0.05)
    first.wait_for("worker dispatching: inbox ")
    second = cluster.worker("worker-2", sleep=0.05)
    second.wait_for("worker waiting to take over: inbox ")
    assert (
        "subscribers crm, audit, sink" in first.log and "subscribers crm, audit, sink" in second.log
    )

    stream = build_stream(ScenarioOptions(calls=30, seed=31, duplicate_ratio=0.05))
    expected = keys_of(stream)
    summary = send(receiver, tls_ca.ca, stream)
    assert summary.ok, summary
    # Four at a time, 50 ms each: a backlog of pending deliveries is waiting.
    cluster.harness.wait_for(
        lambda: len(read_handled(cluster.records, "crm")) >= 40, what="40 events handled"
    )
    first.kill()
    killed = time.monotonic()
    before = {name: len(keys) for name, keys in cluster.handled().items()}
    assert all(count < len(expected) - 20 for count in before.values()), before
    took_over = second.wait_for(DISPATCHES_NOW, timeout=10)
    assert took_over - killed < 3.0, f"took over {took_over - killed:.1f}s after the kill"
    cluster.wait_all_done(len(expected))

    handled = cluster.handled()
    arrival = cluster.arrival()
    calls = planned_calls(stream)
    repeats = {}
    for name, keys in handled.items():
        assert_every_one(keys, expected, name)
        assert_lane_order(keys, arrival, name)
        assert_call_order(keys, calls, name)
        repeats[name] = len(keys) - len(set(keys))
    # Only what the killed worker held in progress runs again: those it had handled (or
    # forwarded) but whose outcome it had not yet recorded. The new dispatcher says how many
    # it took back; how many of them were already done depends on the machine's load.
    found = re.search(r"recovered (\d+) delivery\(ies\) left in progress", second.log)
    recovered = int(found[1]) if found else 0
    assert sum(repeats.values()) <= recovered, (repeats, recovered)
    pids = {h.pid for h in read_handled(cluster.records)}
    assert pids == {first.pid, second.pid}
    late = read_handled(cluster.records)[sum(before[n] for n in ("crm", "audit")) :]
    assert late and {h.pid for h in late} == {second.pid}
    assert second.stop() == 0
    assert_no_unhandled_errors(second.log)
    for log in (first.log, second.log, receiver.log):
        assert FORWARD_SECRET.removeprefix("whsec_") not in log and TOKEN not in log
    states = cluster.states()
    assert all(states[n]["dead"] == 0 and states[n]["done"] == len(expected) for n in SUBSCRIBERS)


def test_a_second_receiver_takes_over_when_the_first_stops(
    cluster: Cluster, tls_ca: DevCertificates
) -> None:
    first = cluster.receiver(sleep=0.05)
    second = cluster.receiver(sleep=0.05, name="second")
    assert "(not dispatching)" not in second.log
    second_says = "another process dispatches from"
    cluster.harness.wait_for(lambda: second_says in second.log, what="the second one waiting")

    stream = build_stream(ScenarioOptions(calls=40, seed=77))
    third = len(stream) // 3
    # Events stored by either receiver are dispatched by the first.
    assert send(first, tls_ca.ca, stream[:third]).ok
    assert send(second, tls_ca.ca, stream[third : 2 * third]).ok
    cluster.harness.wait_for(
        lambda: len(read_handled(cluster.records, "crm")) >= 20, what="20 events handled"
    )
    assert DISPATCHES_NOW not in second.log
    assert first.proc is not None
    assert {h.pid for h in read_handled(cluster.records)} == {first.proc.pid}
    stopping = time.monotonic()
    assert first.stop() == 0
    stopped = time.monotonic()
    assert_no_unhandled_errors(first.log)
    cluster.harness.wait_for(lambda: DISPATCHES_NOW in second.log, timeout=10, what="takeover")
    took = time.monotonic() - stopped
    assert took < 3.0, f"took over {took:.1f}s after the first one stopped"
    assert stopped - stopping < 15
    assert send(second, tls_ca.ca, stream[2 * third :]).ok
    expected = keys_of(stream)
    cluster.wait_all_done(len(expected))

    arrival = cluster.arrival()
    calls = planned_calls(stream)
    for name, keys in cluster.handled().items():
        # A graceful stop finishes what is running and hands back the rest: nothing twice.
        assert_exactly_once(keys, expected, name)
        assert_lane_order(keys, arrival, name)
        assert_call_order(keys, calls, name)
    assert second.stop() == 0
    assert_no_unhandled_errors(second.log)
    for log in (first.log, second.log):
        assert FORWARD_SECRET.removeprefix("whsec_") not in log and TOKEN not in log


def test_a_listener_that_does_not_dispatch_needs_no_forwarding_secret(
    harness: Harness, tls_ca: DevCertificates
) -> None:
    # In the two-process setup only the worker signs what it forwards; the listener should
    # not need (or hold) the signing secret, as the worker needs no endpoint token.
    config = harness.tmp_path / "receiver.toml"
    config.write_text(
        subscribers_config(
            forward="https://127.0.0.1:9/hooks",
            ca_file=tls_ca.ca,
            handlers=(),
            secret_env="TAKEOVER_ENREACH_TOKEN",
            forward_secret_env="TAKEOVER_FORWARD_SECRET",
        )
    )
    receiver = harness.receiver(
        "--config", str(config), "--no-dispatch",
        env={"TAKEOVER_ENREACH_TOKEN": TOKEN}, handler=None,
    )  # fmt: skip
    stream = build_stream(ScenarioOptions(calls=1, seed=3))
    assert send(receiver, tls_ca.ca, stream).ok
    assert delivery_states(receiver.inbox)["sink"]["pending"] == len(keys_of(stream))


def worker_refusal(
    tmp_path: Path, *args: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run `receiver worker` expecting it to refuse to start."""
    return subprocess.run(
        [sys.executable, "-m", "receiver", "worker", *args],
        cwd=tmp_path,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_worker_with_no_workers_refuses_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "receiver.toml"
    config.write_text(subscribers_config(secret_env="TAKEOVER_ENREACH_TOKEN"))
    result = worker_refusal(
        tmp_path, "--config", str(config), "--workers", "0",
        env={"SUBSCRIBERS_RECORD_FILE": str(tmp_path / "r.jsonl")},
    )  # fmt: skip
    assert_refused(result, "--workers 0")
    assert not (tmp_path / "inbox.db").exists()


def test_a_worker_whose_forwarding_secret_is_unset_refuses_naming_it(
    tmp_path: Path, tls_ca: DevCertificates
) -> None:
    config = tmp_path / "receiver.toml"
    config.write_text(
        subscribers_config(
            forward="https://127.0.0.1:9/hooks",
            ca_file=tls_ca.ca,
            secret_env="TAKEOVER_ENREACH_TOKEN",
            forward_secret_env="TAKEOVER_FORWARD_SECRET",
        )
    )
    result = worker_refusal(
        tmp_path, "--config", str(config),
        env={"SUBSCRIBERS_RECORD_FILE": str(tmp_path / "r.jsonl")},
    )  # fmt: skip
    assert_refused(result, "TAKEOVER_FORWARD_SECRET")
    assert "enreach/sink" in result.stderr
    # The Enreach token is not the worker's business: it is not what it complains about.
    assert "TAKEOVER_ENREACH_TOKEN" not in result.stderr
    assert not (tmp_path / "inbox.db").exists()

"""Scale-out on a shared PostgreSQL inbox, end to end (issue 15): two `receiver serve
--no-dispatch` behind HAProxy, three `receiver worker` processes, two recording Python
subscribers, realistic Enreach flows from the scenario sender.

Every unique event is delivered once per subscriber, in each call's order, whichever receiver
stored it and whichever worker claimed it; a worker killed mid-run has its claims taken over
after its lease; a receiver killed mid-run costs the sender only retries through HAProxy.
"""

from __future__ import annotations

import os
import signal
import ssl
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from receiver.certs import DevCertificates
from receiver.scenarios import PlannedRequest, ScenarioOptions, Summary, build_stream
from receiver.sender import EnreachWire
from tests.conftest import Harness
from tests.support import postgres
from tests.support.cluster import (
    RECORDERS,
    TOKEN,
    PgCluster,
    Play,
    genuine_keys,
    planned_calls,
    play_together,
)
from tests.support.faults import assert_no_unhandled_errors
from tests.support.postgres import PostgresServer
from tests.support.subscribers import (
    assert_call_order,
    assert_every_one,
    assert_exactly_once,
    assert_lane_order,
)

postgres_server = postgres.postgres_server
postgres_database = postgres.postgres_database

pytest.importorskip("psycopg")


@pytest.fixture
def cluster(
    tmp_path: Path,
    tls_ca: DevCertificates,
    postgres_server: PostgresServer,
    postgres_database: str,
) -> Iterator[PgCluster]:
    """Processes on one PostgreSQL database, all stopped after the test."""
    processes = PgCluster(Harness(tmp_path, tls_ca), postgres_server, postgres_database)
    try:
        yield processes
    finally:
        processes.close()


def scenario(calls: int, seed: int) -> list[PlannedRequest]:
    """Enreach flows with duplicates, swapped pairs and forged copies mixed in."""
    return build_stream(
        ScenarioOptions(
            calls=calls,
            seed=seed,
            duplicate_ratio=0.08,
            out_of_order_ratio=0.1,
            wrong_token_ratio=0.04,
        )
    )


def forged_only(stream: list[PlannedRequest], count: int) -> list[dict[str, object]]:
    """`count` events of the stream under fresh Ids, to be sent only with a forged token."""
    return [{**p.payload, "Id": str(uuid.uuid4())} for p in stream[: count * 3 : 3]]


def send_forged(urls: list[str], ca: Path, payloads: list[dict[str, object]]) -> list[int]:
    """POST each payload with a wrong token to each URL; the statuses."""
    forged = EnreachWire(secret=TOKEN).forged()
    statuses = []
    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca)), timeout=10) as client:
        for url in urls:
            for payload in payloads:
                request = forged.build(url, payload)
                response = client.request(
                    request.method, request.url, headers=list(request.headers), content=request.body
                )
                statuses.append(response.status_code)
    return statuses


def readiness(admin_port: int, ca: Path) -> str:
    """What the admin listener on `admin_port` says of its process's readiness."""
    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca)), timeout=10) as client:
        answer = client.get(f"https://127.0.0.1:{admin_port}/readyz")
    status: str = answer.json()["status"]
    assert answer.status_code == (200 if status == "ready" else 503), answer.text
    return status


def assert_delivered_in_order(
    cluster: PgCluster, stream: list[PlannedRequest], expected: set[str], *, once: bool = True
) -> dict[str, list[str]]:
    """Each recorder got every expected event (exactly once when `once`), first handled in
    inbox order per call and in the order each call's events were sent; its keys."""
    arrival = cluster.arrival()
    calls = planned_calls(stream)
    handled = {}
    for name in RECORDERS:
        keys = cluster.handled_keys(name)
        if once:
            assert_exactly_once(keys, expected, name)
        else:
            assert_every_one(keys, expected, name)
        assert_lane_order(keys, arrival, name)
        assert_call_order(keys, calls, name)
        handled[name] = keys
    return handled


def test_two_receivers_three_workers_deliver_each_event_once_in_call_order(
    cluster: PgCluster, tls_ca: DevCertificates
) -> None:
    r1, r2 = cluster.receiver("r1"), cluster.receiver("r2")
    workers = [cluster.worker(f"worker-{n}") for n in (1, 2, 3)]
    for worker in workers:
        worker.wait_for("worker dispatching: inbox postgresql://")
        assert cluster.server.password not in worker.log
    # HAProxy checks /readyz: a --no-dispatch receiver is ready once a worker dispatches.
    proxy = cluster.start_proxy([r1, r2])
    # Five processes on one host, each with an admin listener of its own, each ready.
    ports = [r.admin_port for r in (r1, r2)] + [w.admin_port for w in workers]
    assert [readiness(port, tls_ca.ca) for port in ports] == ["ready"] * 5
    stream = scenario(calls=40, seed=1515)
    expected = genuine_keys(stream)
    assert len(expected) > 250
    assert sum(p.out_of_order for p in stream) > 10 and sum(p.duplicate for p in stream) > 10

    # The scenario through HAProxy, and copies of the same requests straight to each receiver
    # at the same moment: every genuine event arrives at least three times, at both receivers.
    started = time.monotonic()
    plays = [Play(proxy.url("/enreach"), stream)]
    plays += [Play(r.url("/enreach"), stream) for r in (r1, r2)]
    summaries = play_together(tls_ca.ca, plays)
    sending = time.monotonic() - started
    for summary in summaries:
        assert summary.ok, summary.render()
        assert summary.wrong_token_accepted == 0 and summary.wrong_token_sent > 5
    fakes = forged_only(stream, 8)
    statuses = send_forged(
        [proxy.url("/enreach"), r1.url("/enreach"), r2.url("/enreach")], tls_ca.ca, fakes
    )
    assert statuses == [401] * len(statuses)

    cluster.wait_all_done(len(expected))
    stored = cluster.stored_keys()
    assert len(stored) == len(set(stored)) == len(expected)
    assert set(stored) == expected  # no forged-only event stored
    handled = assert_delivered_in_order(cluster, stream, expected)
    assert not {str(f["Id"]) for f in fakes} & set(handled["crm"])
    assert cluster.attempts() == [], "a delivery failed"
    # Both receivers stored events, and the workers shared the deliveries.
    logs = [r.log for r in (r1, r2)]
    pids = Counter(h.pid for h in cluster.handled())
    assert set(pids) <= {w.pid for w in workers}
    assert len(pids) >= 2, f"one worker handled everything: {pids}"

    for worker in workers:
        assert worker.stop() == 0
        assert_no_unhandled_errors(worker.log)
    for receiver in (r1, r2):
        assert receiver.stop() == 0
        assert_no_unhandled_errors(receiver.log)
    for log in [*logs, *(w.log for w in workers)]:
        assert TOKEN not in log and cluster.server.password not in log
    print(f"sent 3 x {len(stream)} requests in {sending:.1f}s; handled per worker: {pids}")


# -- kill -9 a worker ----------------------------------------------------------------------

LEASE = 6.0
"""Seconds a worker's claims outlive its last heartbeat (`--lease`; renewed every third)."""


def test_a_killed_workers_claims_are_finished_by_the_others_after_its_lease(
    tls_ca: DevCertificates, tmp_path: Path, postgres_server: PostgresServer, postgres_database: str
) -> None:
    # Handlers slower than the sender (3 workers x 4 tasks x 0.2 s < 100 events/s): a backlog
    # builds, and each worker holds claims when one is killed.
    cluster = PgCluster(Harness(tmp_path, tls_ca), postgres_server, postgres_database, sleep=0.2)
    try:
        run_worker_kill(cluster, tls_ca)
    finally:
        cluster.close()


def run_worker_kill(cluster: PgCluster, tls_ca: DevCertificates) -> None:
    r1, r2 = cluster.receiver("r1"), cluster.receiver("r2")
    workers = [cluster.worker(f"worker-{n}", "--lease", str(LEASE)) for n in (1, 2, 3)]
    for worker in workers:
        worker.wait_for("worker dispatching: inbox ")
    # HAProxy checks /readyz: a --no-dispatch receiver is ready once a worker dispatches.
    proxy = cluster.start_proxy([r1, r2])
    stream = scenario(calls=40, seed=2424)
    expected = genuine_keys(stream)
    play = Play(proxy.url("/enreach"), stream)
    outcome: list[list[Summary] | BaseException] = []

    def run() -> None:
        try:
            outcome.append(play_together(tls_ca.ca, [play]))
        except BaseException as exc:  # reported by the test thread
            outcome.append(exc)

    sending = threading.Thread(target=run, name="scenario-sender")
    sending.start()
    try:
        cluster.wait_for(
            lambda: len(play.acknowledged()) >= len(expected) * 2 // 5, what="40% acknowledged"
        )
        victim, others = workers[0], workers[1:]
        victim.kill()
        killed = time.time()
        # It is gone: what it held and what it recorded are final.
        held = cluster.query(
            "SELECT d.event_id, d.subscriber, e.dedup_key FROM receiver_deliveries d"
            " JOIN receiver_events e ON e.id = d.event_id JOIN receiver_owners o USING (owner)"
            " WHERE d.state = 1 AND o.name LIKE %s",
            (f"%:{victim.pid}",),
        )
        recorded_by_victim = [h for h in cluster.handled() if h.pid == victim.pid]
        by_others_at_kill = len(cluster.handled()) - len(recorded_by_victim)
        time.sleep(LEASE / 3)
        by_others_soon = len([h for h in cluster.handled() if h.pid != victim.pid])
    finally:
        sending.join(60)
    assert outcome and isinstance(outcome[0], list), outcome
    assert outcome[0][0].ok, outcome[0][0].render()

    assert len(held) >= 5, f"the killed worker held only {len(held)} delivery(ies)"
    assert recorded_by_victim, "the killed worker had handled nothing"
    # The others carried on with the calls it did not hold while its lease ran.
    assert by_others_soon > by_others_at_kill
    cluster.wait_all_done(len(expected), timeout=LEASE * 2 + 30)

    held_keys = {(subscriber, key) for _, subscriber, key in held}
    finished = dict(
        ((subscriber, key), at)
        for subscriber, key, at in cluster.query(
            "SELECT d.subscriber, e.dedup_key, d.finished_at FROM receiver_deliveries d"
            " JOIN receiver_events e ON e.id = d.event_id"
        )
    )
    taken_over = sorted(finished[k] - killed for k in held_keys)
    # Not before its lease ran out (its last heartbeat was at most a third of a lease before
    # the kill), and soon after (the others look every third of a lease).
    assert taken_over[0] >= LEASE * 2 / 3 - 0.5, f"taken over {taken_over[0]:.1f}s after the kill"
    assert taken_over[-1] <= LEASE + LEASE / 3 + 10, f"finished {taken_over[-1]:.1f}s after"
    handled = assert_delivered_in_order(cluster, stream, expected, once=False)
    for name, keys in handled.items():
        repeated = {k for k, n in Counter(keys).items() if n > 1}
        # Only a delivery in progress at the kill may run twice: the victim's own handling
        # was never recorded as done.
        assert repeated <= {k for s, k in held_keys if s == name}, (name, repeated)
    for worker in others:
        assert worker.stop() == 0
        assert_no_unhandled_errors(worker.log)
    print(
        f"killed worker held {len(held)} delivery(ies); finished by the others "
        f"{taken_over[0]:.1f}-{taken_over[-1]:.1f}s after the kill"
    )


# -- kill -9 a receiver --------------------------------------------------------------------


def test_a_killed_receiver_costs_the_sender_only_retries_through_haproxy(
    cluster: PgCluster, tls_ca: DevCertificates
) -> None:
    r1, r2 = cluster.receiver("r1"), cluster.receiver("r2")
    workers = [cluster.worker(f"worker-{n}") for n in (1, 2)]
    for worker in workers:
        worker.wait_for("worker dispatching: inbox ")
    # HAProxy checks /readyz: a --no-dispatch receiver is ready once a worker dispatches.
    proxy = cluster.start_proxy([r1, r2])
    stream = scenario(calls=50, seed=3131)
    expected = genuine_keys(stream)
    play = Play(proxy.url("/enreach"), stream, retries=60, rate=80.0)
    outcome: list[list[Summary] | BaseException] = []

    def run() -> None:
        try:
            outcome.append(play_together(tls_ca.ca, [play]))
        except BaseException as exc:  # reported by the test thread
            outcome.append(exc)

    def sessions() -> dict[str, int]:
        return {
            row["svname"]: int(row["stot"])
            for row in proxy.stats()
            if row["svname"] in ("r1", "r2")
        }

    sending = threading.Thread(target=run, name="scenario-sender")
    sending.start()
    try:
        cluster.wait_for(
            lambda: len(play.acknowledged()) >= len(expected) * 2 // 5, what="40% acknowledged"
        )
        before = sessions()
        acknowledged_at_kill = len(play.acknowledged())
        # Frozen for a second first, so that requests are in flight there when it dies.
        assert r2.proc is not None
        os.kill(r2.proc.pid, signal.SIGSTOP)
        time.sleep(1.0)
        r2.kill()
        r2.sock.close()  # the crashed machine's port: connections are refused, not queued
        killed = time.monotonic()
        proxy.wait_for_up(1, timeout=5, names=["r1"])
        marked_down = time.monotonic() - killed
    finally:
        sending.join(90)
    assert outcome and isinstance(outcome[0], list), outcome
    [summary] = outcome[0]
    assert summary.failed == 0 and summary.wrong_token_accepted == 0, summary.render()
    assert summary.retried > 0, "no request was in flight at the kill"
    acknowledged = play.acknowledged()
    assert acknowledged == expected
    assert before["r1"] > 0 and before["r2"] > 0, before
    assert acknowledged_at_kill < len(expected) * 3 // 4

    cluster.wait_all_done(len(expected))
    stored = cluster.stored_keys()
    assert len(stored) == len(set(stored)) and set(stored) == acknowledged
    assert_delivered_in_order(cluster, stream, expected)
    assert cluster.attempts() == []
    for worker in workers:
        assert worker.stop() == 0
        assert_no_unhandled_errors(worker.log)
    assert r1.stop() == 0
    assert_no_unhandled_errors(r1.log)
    print(
        f"r2 marked down {marked_down:.1f}s after the kill; {summary.retried} request(s) "
        f"retried; HAProxy sessions before the kill {before}, after {sessions()}"
    )

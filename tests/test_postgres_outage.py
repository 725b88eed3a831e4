"""The shared PostgreSQL inbox when PostgreSQL goes away, and when two receivers race (issue 15).

While PostgreSQL is down the receivers answer 503 (never 200 for an event they could not
store), their `/readyz` fails so that HAProxy takes them out (a sender then finds no receiver
at all, at once), and the workers pause; once it is back both carry on by themselves, HAProxy
puts them back, with no process restarted, and nothing acknowledged is lost. The same event
arriving at two receivers at the same moment is stored once and delivered once per subscriber.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from receiver.certs import DevCertificates
from receiver.scenarios import PlannedRequest, ScenarioOptions, Summary, build_stream
from receiver.sender import Delivery, EnreachWire, Sender, SyncSender
from receiver.testing import ReceiverProcess
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
    assert_exactly_once,
    assert_lane_order,
)

postgres_server = postgres.postgres_server
postgres_database = postgres.postgres_database

pytest.importorskip("psycopg")

OUTAGE = 8.0
"""Seconds PostgreSQL stays down: within the default lease (15 s)."""


def make_cluster(
    tmp_path: Path,
    tls_ca: DevCertificates,
    server: PostgresServer,
    database: str,
    *,
    sleep: float = 0.0,
) -> PgCluster:
    """Processes on one PostgreSQL database (the caller closes them)."""
    return PgCluster(Harness(tmp_path, tls_ca), server, database, sleep=sleep)


@pytest.fixture
def cluster(
    tmp_path: Path,
    tls_ca: DevCertificates,
    postgres_server: PostgresServer,
    postgres_database: str,
) -> Iterator[PgCluster]:
    """Processes on one PostgreSQL database, all stopped after the test."""
    processes = make_cluster(tmp_path, tls_ca, postgres_server, postgres_database)
    try:
        yield processes
    finally:
        processes.close()


def probe(receiver: ReceiverProcess, ca: Path) -> tuple[str, Delivery]:
    """One new event sent once straight to `receiver` (waiting up to 30 s for the answer): its
    dedup key and what happened."""
    return probe_url(receiver.url("/enreach"), ca)


def probe_url(url: str, ca: Path) -> tuple[str, Delivery]:
    """One new Enreach event sent once to `url`: its dedup key and what happened."""
    event_id = str(uuid.uuid4())
    payload = {"EventType": "QueueCallInComing", "Id": event_id, "CallId": str(uuid.uuid4())}
    with SyncSender(
        url,
        provider=EnreachWire(secret=TOKEN),
        verify=ca,
        retries=0,
        timeout=30.0,
    ) as sender:
        return event_id.lower(), sender.send(payload)


def timed_probe(receiver: ReceiverProcess, ca: Path) -> tuple[str, Delivery, float]:
    """`probe`, and the time.monotonic() its answer came."""
    key, delivery = probe(receiver, ca)
    return key, delivery, time.monotonic()


def statuses(play: Play) -> Counter[int | None]:
    """Every attempt's status (None: no answer) over the play's genuine requests."""
    return Counter(
        a.status for p, d in list(play.deliveries) if not p.wrong_token for a in d.attempts
    )


def timed_out(play: Play) -> int:
    """How many of the play's attempts got no answer within the sender's timeout (5 s)."""
    return sum(a.timed_out for _, d in list(play.deliveries) for a in d.attempts)


# -- PostgreSQL stopped and started again ---------------------------------------------------


def test_postgresql_down_means_503_and_paused_workers_then_everything_resumes(
    tls_ca: DevCertificates, tmp_path: Path, postgres_server: PostgresServer, postgres_database: str
) -> None:
    # Handlers slower than the sender: deliveries are pending when PostgreSQL stops.
    cluster = make_cluster(tmp_path, tls_ca, postgres_server, postgres_database, sleep=0.15)
    try:
        run_outage(cluster, postgres_server, tls_ca)
    finally:
        cluster.close()


def run_outage(cluster: PgCluster, server: PostgresServer, tls_ca: DevCertificates) -> None:
    r1, r2 = cluster.receiver("r1"), cluster.receiver("r2")
    workers = [cluster.worker(f"worker-{n}") for n in (1, 2)]
    for worker in workers:
        worker.wait_for("worker dispatching: inbox ")
    # HAProxy checks /readyz: a --no-dispatch receiver is ready once a worker dispatches.
    proxy = cluster.start_proxy([r1, r2])
    pids = [p.pid for p in workers] + [r.proc.pid for r in (r1, r2) if r.proc is not None]
    stream = build_stream(
        ScenarioOptions(calls=40, seed=4004, duplicate_ratio=0.05, wrong_token_ratio=0.03)
    )
    expected = genuine_keys(stream)
    # Retries 0.2 s apart for up to 40 s: the sender rides over the outage, as a provider's
    # retries would.
    play = Play(proxy.url("/enreach"), stream, retries=200, rate=60.0)
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
            lambda: len(play.acknowledged()) >= len(expected) * 3 // 10, what="30% acknowledged"
        )
        open_at_stop = {
            name: counts.get("pending", 0) + counts.get("in_progress", 0)
            for name, counts in cluster.states().items()
        }
        server.stop()
        stopped = time.monotonic()
        logs_at_stop = {w.name: len(w.log) for w in workers}
        acknowledged_before = len(play.acknowledged())
        time.sleep(0.5)
        # New events straight to each receiver meanwhile, two each, all at once.
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            probes = [pool.submit(timed_probe, r, tls_ca.ca) for r in (r1, r2, r1, r2)]
            # Once HAProxy has taken both out, a new connection through it finds no receiver.
            in_proxy_during = proxy.server_states()
            while not all(s.startswith("DOWN") for s in in_proxy_during.values()):
                if time.monotonic() > stopped + OUTAGE - 1:
                    break
                time.sleep(0.1)
                in_proxy_during = proxy.server_states()
            _, through_proxy = probe_url(proxy.url("/enreach"), tls_ca.ca)
            time.sleep(max(0.0, stopped + OUTAGE - time.monotonic()))
            acknowledged_during = len(play.acknowledged()) - acknowledged_before
            alive_during = [w.alive for w in workers] + [
                r.proc is not None and r.proc.poll() is None for r in (r1, r2)
            ]
            worker_logs = {w.name: w.log[logs_at_stop[w.name] :] for w in workers}
            server.start()
            restarted = time.monotonic()
        answered = [f.result() for f in probes]
        # A new event is stored again soon, by either receiver, without restarting it.
        recovered: dict[str, float] = {}
        for receiver in (r1, r2):
            while True:
                key, delivery = probe(receiver, tls_ca.ca)
                if delivery.acknowledged:
                    expected.add(key)
                    recovered[receiver.workdir.name] = time.monotonic() - restarted
                    break
                assert time.monotonic() - restarted < 15, f"still {delivery.status} after 15s"
                time.sleep(0.2)
        # Ready again: HAProxy puts both back.
        proxy.wait_for_up(2, timeout=15)
    finally:
        sending.join(90)
    assert outcome and isinstance(outcome[0], list), outcome
    [summary] = outcome[0]
    assert summary.failed == 0 and summary.wrong_token_accepted == 0, summary.render()

    # While it was down: 503 (never 200) for new events, every process up, workers saying so.
    # Each probe answered while PostgreSQL was down got a 503; one answered only after the
    # restart may have been stored then (200), never before.
    early = [(key, d) for key, d, at in answered if at < restarted]
    assert [d.status for _, d in early] == [503] * len(early), answered
    refused = {key for key, d, _ in answered if not d.acknowledged}
    expected |= {key for key, d, _ in answered if d.acknowledged}
    refusal_latency = [d.attempts[0].latency for _, d, _ in answered]
    assert all(open_at_stop.get(name, 0) >= 10 for name in RECORDERS), open_at_stop
    assert acknowledged_during <= 8 * 2, "events acknowledged while PostgreSQL was down"
    assert all(alive_during), alive_during
    for name, text in worker_logs.items():
        assert "could not claim deliveries" in text or "could not renew" in text, (name, text)
    # HAProxy took both out (their /readyz failed): from then on, a sender found no receiver.
    assert all(state.startswith("DOWN") for state in in_proxy_during.values()), in_proxy_during
    assert through_proxy.status is None, through_proxy  # the connection closed by HAProxy
    seen = statuses(play)
    assert seen[503] > 0, seen  # before HAProxy's checks failed
    assert set(seen) <= {200, 503, None}, seen

    # Afterwards: every acknowledged event stored once and delivered once per subscriber, in
    # order; what was refused is not stored.
    acknowledged = play.acknowledged() | {k for k in expected if k not in genuine_keys(stream)}
    assert acknowledged == expected
    cluster.wait_all_done(len(expected), timeout=45)
    stored = cluster.stored_keys()
    assert len(stored) == len(set(stored))
    assert set(stored) == expected
    assert not refused & set(stored)
    arrival = cluster.arrival()
    calls = planned_calls(stream)
    for name in RECORDERS:
        keys = cluster.handled_keys(name)
        assert_exactly_once(keys, expected, name)
        assert_lane_order(keys, arrival, name)
        assert_call_order(keys, calls, name)

    # No process was restarted, and each stops cleanly.
    assert [w.pid for w in workers] + [r.proc.pid for r in (r1, r2) if r.proc] == pids
    for worker in workers:
        assert worker.stop() == 0, worker.log[-3000:]
        assert_no_unhandled_errors(worker.log)
    for receiver in (r1, r2):
        assert receiver.stop() == 0, receiver.log[-3000:]
        assert_no_unhandled_errors(receiver.log)
    print(
        f"outage {OUTAGE:g}s: attempts {dict(seen)}; probes answered "
        f"{[(d.status, round(d.attempts[0].latency, 1)) for _, d, _ in answered]}; stored again "
        f"{', '.join(f'{n} {t:.1f}s' for n, t in recovered.items())} after the restart"
    )
    # "While PostgreSQL is unreachable every write fails at once with a StorageError (a 503
    # to the sender)" (receiver/inbox/postgres.py): a sender must not wait for its answer
    # until its own timeout, nor a provider give up on the URL meanwhile.
    assert max(refusal_latency) < 2.0, f"answered only after {refusal_latency} s"
    waited = timed_out(play)
    assert waited == 0, f"{waited} attempt(s) got no answer within 5 s"


# -- the same event at two receivers at once -----------------------------------------------


def test_the_same_event_at_two_receivers_at_once_is_stored_and_delivered_once(
    cluster: PgCluster, tls_ca: DevCertificates
) -> None:
    r1, r2 = cluster.receiver("r1"), cluster.receiver("r2")
    workers = [cluster.worker(f"worker-{n}") for n in (1, 2)]
    for worker in workers:
        worker.wait_for("worker dispatching: inbox ")
    stream = [
        p
        for p in build_stream(ScenarioOptions(calls=40, seed=5005))
        if not p.duplicate and not p.wrong_token
    ]
    expected = genuine_keys(stream)
    rounds = 3

    async def race() -> list[tuple[PlannedRequest, list[Delivery]]]:
        # Each event to both receivers at once (two connections), 16 events in flight, the
        # whole stream three times over.
        results: list[tuple[PlannedRequest, list[Delivery]]] = []
        slots = asyncio.Semaphore(16)

        async def both(planned: PlannedRequest, senders: list[Sender]) -> None:
            async with slots:
                got = await asyncio.gather(*(s.send(planned.payload) for s in senders))
                results.append((planned, list(got)))

        def sender(receiver: ReceiverProcess) -> Sender:
            return Sender(
                receiver.url("/enreach"),
                provider=EnreachWire(secret=TOKEN),
                verify=tls_ca.ca,
                retries=0,
                max_connections=16,
            )

        async with sender(r1) as first, sender(r2) as second:
            for _ in range(rounds):
                async with asyncio.TaskGroup() as group:
                    for planned in stream:
                        group.create_task(both(planned, [first, second]))
        return results

    started = time.monotonic()
    results = asyncio.run(race())
    took = time.monotonic() - started
    answers: Counter[Any] = Counter(d.status for _, pair in results for d in pair)
    assert answers == Counter({200: 2 * rounds * len(stream)}), answers

    cluster.wait_all_done(len(expected))
    stored = cluster.stored_keys()
    assert len(stored) == len(set(stored)) == len(expected)
    assert set(stored) == expected
    arrival = cluster.arrival()
    for name in RECORDERS:
        keys = cluster.handled_keys(name)
        assert_exactly_once(keys, expected, name)
        assert_lane_order(keys, arrival, name)
    assert cluster.attempts() == []
    for worker in workers:
        assert worker.stop() == 0
        assert_no_unhandled_errors(worker.log)
    for receiver in (r1, r2):
        assert receiver.stop() == 0
        assert_no_unhandled_errors(receiver.log)
    print(f"{2 * rounds * len(stream)} requests in {took:.1f}s, all 200")


# -- an outage longer than the lease ----------------------------------------------------------

SHORT_LEASE = 6.0


def test_an_outage_longer_than_the_lease_repeats_no_more_than_handlers_in_flight(
    tls_ca: DevCertificates, tmp_path: Path, postgres_server: PostgresServer, postgres_database: str
) -> None:
    # Both workers hold claims (a backlog) when PostgreSQL goes away for twice their lease: when
    # it is back, each finds the other's lease expired. A claim the other took back must not be
    # handled by both, nor a call by both at once: only handlers running at the outage's end
    # (2 workers x 2 subscribers x 4 tasks) may repeat.
    cluster = make_cluster(tmp_path, tls_ca, postgres_server, postgres_database, sleep=0.15)
    try:
        r1 = cluster.receiver("r1")
        workers = [cluster.worker(f"worker-{n}", "--lease", str(SHORT_LEASE)) for n in (1, 2)]
        for worker in workers:
            worker.wait_for("worker dispatching: inbox ")
        stream = build_stream(ScenarioOptions(calls=40, seed=6006))
        expected = genuine_keys(stream)
        [summary] = play_together(tls_ca.ca, [Play(r1.url("/enreach"), stream, rate=150.0)])
        assert summary.ok, summary.render()
        held = cluster.query(
            "SELECT count(DISTINCT owner) FROM receiver_deliveries WHERE state = 1"
        )
        postgres_server.stop()
        time.sleep(SHORT_LEASE * 4)
        postgres_server.start()
        cluster.wait_all_done(len(expected), timeout=45)
        arrival = cluster.arrival()
        calls = planned_calls(stream)
        repeats = {}
        for name in RECORDERS:
            keys = cluster.handled_keys(name)
            repeats[name] = len(keys) - len(set(keys))
            assert_lane_order(keys, arrival, name)
            assert_call_order(keys, calls, name)
        print(f"claims held by {held[0][0]} worker(s) at the stop; repeats {repeats}")
        assert all(n <= 8 for n in repeats.values()), repeats
        for worker in workers:
            assert worker.stop() == 0
            assert_no_unhandled_errors(worker.log)
    finally:
        cluster.close()

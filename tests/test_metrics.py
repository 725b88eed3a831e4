"""`/metrics` of real processes counts what happened: a known mix of requests (stored,
duplicates, a wrong token, bad bodies, a body too large, a wrong method) and deliveries to two
subscribers, one of which fails every attempt, are what the families say; the page passes
`promtool check metrics` and parses with prometheus-client's own parser. A `receiver worker`'s
page has the delivery figures, the serving process's the request figures, both the same
inbox's; on PostgreSQL two receivers report the shared inbox's backlog.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from receiver.certs import DevCertificates
from tests.conftest import ROOT, SECRET, Harness, enreach_event, post_event
from tests.support import postgres
from tests.support.admin_worker import AdminWorker
from tests.support.cluster import RECORDERS, TOKEN, PgCluster
from tests.support.postgres import PostgresServer
from tests.support.subscribers import subscribers_config

postgres_server = postgres.postgres_server
postgres_database = postgres.postgres_database

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

TYPES = ["QueueCallInUserAllocated"] * 3 + ["UserStatus", "QueueStatus"]
"""The event types of the stored events, one event each."""
DUPLICATES = 2
WRONG_TOKEN = 3
BAD_BODIES = (b"{not json", b"[]")
MAX_BODY = 2048
ATTEMPTS = 2
"""--max-attempts: the failing subscriber's deliveries are dead after two."""


def scrape(client: httpx.Client, url: str) -> str:
    """The page at `url` (a `/metrics`), checked by `promtool check metrics`."""
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
        timeout=30, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, f"promtool check metrics:\n{checked.stdout}{checked.stderr}"
    return text


def samples(text: str) -> Samples:
    """Every sample of the page by name and labels, as prometheus-client parses it."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def pick(found: Samples, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples called `name` that have `labels`, by their labels."""
    wanted = set(labels.items())
    return {key: v for (n, key), v in found.items() if n == name and wanted <= key}


def one(found: Samples, name: str, **labels: str) -> float:
    """The value of the one sample `name` with `labels`."""
    matches = pick(found, name, **labels)
    assert len(matches) == 1, f"{name}{labels}: {matches}"
    return next(iter(matches.values()))


def by(found: Samples, name: str, label: str, **labels: str) -> dict[str, float]:
    """The samples `name` (with `labels`) by the value of `label`."""
    return {dict(key)[label]: v for key, v in pick(found, name, **labels).items()}


def wait_for(condition: Callable[[], bool], what: str, log: Callable[[], str]) -> None:
    """Poll `condition` for 30 s; fail with `log()`."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}\n{log()[-4000:]}")


def send_mix(client: httpx.Client, url: str) -> dict[str, int]:
    """The known mix of requests; how many of each outcome were sent."""
    stored = [enreach_event(t) for t in TYPES]
    for payload in stored:
        assert post_event(client, url, payload).status_code == 200
    for payload in stored[:DUPLICATES]:
        assert post_event(client, url, payload).status_code == 200
    for _ in range(WRONG_TOKEN):
        assert post_event(client, url, enreach_event(), token="not-the-secret").status_code == 401
    for body in BAD_BODIES:
        assert post_event(client, url, body, event_header="QueueStatus").status_code == 400
    too_large = {**enreach_event(), "Padding": "x" * MAX_BODY}
    assert post_event(client, url, too_large).status_code == 413
    assert client.get(url, headers={"X-Benemen-Token": SECRET}).status_code == 405
    return {
        "stored": len(stored), "duplicate": DUPLICATES, "unauthorized": WRONG_TOKEN,
        "bad_request": len(BAD_BODIES), "too_large": 1, "method_not_allowed": 1,
        "forbidden": 0, "unsupported": 0, "unavailable": 0,
    }  # fmt: skip


def subscribers_env(tmp_path: Path) -> dict[str, str]:
    """For tests/support/subscribers.py: `crm` records, `flaky` fails while its flag exists."""
    flag = tmp_path / "crm-down"
    flag.touch()
    return {
        "SUBSCRIBERS_RECORD_FILE": str(tmp_path / "handled.jsonl"),
        "SUBSCRIBERS_FLAKY_FLAG": str(flag),
        "PYTHONPATH": str(ROOT),
    }


def write_config(tmp_path: Path) -> Path:
    """The endpoint with subscribers `crm` (Recorder) and `flaky` (Flaky)."""
    config = tmp_path / "receiver.toml"
    config.write_text(subscribers_config())
    return config


def settled(found: Samples, subscriber: str) -> bool:
    """Whether the inbox holds nothing pending or in progress for `subscriber`."""
    states = by(found, "receiver_inbox_deliveries", "state", subscriber=subscriber)
    return bool(states) and states["pending"] + states["in_progress"] == 0


def certificate_expiry(certs: DevCertificates) -> float:
    """The server certificate's notAfter (unix time)."""
    cert = x509.load_pem_x509_certificate(certs.cert.read_bytes())
    return cert.not_valid_after_utc.timestamp()


def test_metrics_count_the_requests_events_and_deliveries_of_one_process(
    harness: Harness, tmp_path: Path
) -> None:
    started = time.time()
    receiver = harness.receiver(
        "--config", str(write_config(tmp_path)), "--max-attempts", str(ATTEMPTS),
        "--max-body", str(MAX_BODY),
        env=subscribers_env(tmp_path), handler=None,
    )  # fmt: skip
    with harness.client() as client:
        sent = send_mix(client, receiver.url())
        url = receiver.admin_url("/metrics")

        def done() -> bool:
            found = samples(client.get(url).text)
            dead = by(found, "receiver_inbox_deliveries", "state", subscriber="flaky")
            return settled(found, "crm") and settled(found, "flaky") and dead["dead"] == 5

        wait_for(done, "every delivery done or dead", lambda: receiver.log)
        found = samples(scrape(client, url))
    assert by(found, "receiver_requests_total", "outcome", endpoint="enreach") == sent
    events = by(found, "receiver_events_total", "type", endpoint="enreach", source="enreach")
    assert events == Counter(TYPES)
    acknowledged = sent["stored"] + sent["duplicate"]
    assert one(found, "receiver_ack_seconds_count", endpoint="enreach") == acknowledged
    assert one(found, "receiver_ack_seconds_bucket", endpoint="enreach", le="+Inf") == acknowledged
    assert 0 < one(found, "receiver_ack_seconds_sum", endpoint="enreach") < acknowledged * 5
    last = one(found, "receiver_last_event_timestamp_seconds", endpoint="enreach")
    assert started < last <= time.time()
    stored = len(TYPES)
    # crm handled each event at its first attempt; flaky failed each twice, then gave up.
    attempts = {
        name: by(found, "receiver_delivery_attempts_total", "outcome", subscriber=name)
        for name in ("crm", "flaky")
    }
    assert attempts == {
        "crm": {"done": stored, "retry": 0, "dead": 0},
        "flaky": {"done": 0, "retry": stored * (ATTEMPTS - 1), "dead": stored},
    }
    assert by(found, "receiver_delivery_retries_total", "subscriber") == {"crm": 0, "flaky": stored}
    assert by(found, "receiver_dead_letters_total", "subscriber") == {"crm": 0, "flaky": stored}
    durations = by(found, "receiver_delivery_seconds_count", "subscriber")
    assert durations == {"crm": stored, "flaky": stored * ATTEMPTS}
    backlog = {
        name: by(found, "receiver_inbox_deliveries", "state", subscriber=name)
        for name in ("crm", "flaky")
    }
    assert backlog == {
        "crm": {"pending": 0, "in_progress": 0, "dead": 0, "done": stored, "discarded": 0},
        "flaky": {"pending": 0, "in_progress": 0, "dead": stored, "done": 0, "discarded": 0},
    }
    assert by(found, "receiver_inbox_oldest_open_seconds", "subscriber") == {"crm": 0, "flaky": 0}
    assert one(found, "receiver_inbox_up") == 1 and one(found, "receiver_dispatching") == 1
    expiry = one(found, "receiver_certificate_expiry_timestamp_seconds")
    assert expiry == certificate_expiry(harness.certs)
    [info] = pick(found, "receiver_build_info")
    assert dict(info)["inbox"] == "sqlite" and dict(info)["engine"] == "uvicorn"


def worker_on(
    workdir: Path, config: Path, inbox: str, certs: DevCertificates, env: Mapping[str, str]
) -> AdminWorker:
    """`receiver worker` on `inbox` with `config` (not started)."""
    args = ["--config", str(config), "--inbox", inbox, "--max-attempts", str(ATTEMPTS)]
    args += ["--backoff-base", "0.05", "--backoff-max", "0.2"]
    return AdminWorker(workdir, args, certs=certs, env=env)


def pg_worker(cluster: PgCluster) -> AdminWorker:
    """A worker on the cluster's inbox, the password from PGPASSWORD (not started)."""
    env = {"PGPASSWORD": cluster.server.password, "PGCONNECT_TIMEOUT": "5"}
    env["SUBSCRIBERS_RECORD_FILE"] = str(cluster.records)
    certs = cluster.harness.certs
    return worker_on(cluster.tmp_path, cluster.config, cluster.inbox, certs, env)


def test_a_worker_reports_the_deliveries_and_the_receiver_the_requests_of_one_inbox(
    harness: Harness, tmp_path: Path
) -> None:
    config, env = write_config(tmp_path), subscribers_env(tmp_path)
    receiver = harness.receiver(
        "--config", str(config), "--no-dispatch", "--max-body", str(MAX_BODY),
        env=env, handler=None,
    )  # fmt: skip
    worker = worker_on(tmp_path, config, str(receiver.inbox), harness.certs, env)
    with worker, harness.client() as client:
        sent = send_mix(client, receiver.url())

        def done() -> bool:
            found = samples(client.get(worker.admin_url("/metrics")).text)
            return settled(found, "crm") and settled(found, "flaky")

        wait_for(done, "every delivery done or dead", lambda: worker.log)
        at_worker = samples(scrape(client, worker.admin_url("/metrics")))
        at_receiver = samples(scrape(client, receiver.admin_url("/metrics")))
    assert worker.stop() == 0, worker.log
    stored = len(TYPES)
    # The receiver counts requests and dispatches nothing.
    assert by(at_receiver, "receiver_requests_total", "outcome", endpoint="enreach") == sent
    assert one(at_receiver, "receiver_dispatching") == 0
    assert sum(pick(at_receiver, "receiver_delivery_attempts_total").values()) == 0
    # The worker serves no endpoint and makes every attempt.
    assert not pick(at_worker, "receiver_requests_total")
    assert not pick(at_worker, "receiver_ack_seconds_count")
    assert one(at_worker, "receiver_dispatching") == 1
    assert by(at_worker, "receiver_delivery_attempts_total", "outcome", subscriber="crm") == {
        "done": stored, "retry": 0, "dead": 0,
    }  # fmt: skip
    assert by(at_worker, "receiver_dead_letters_total", "subscriber") == {"crm": 0, "flaky": stored}
    expiry = certificate_expiry(harness.certs)
    assert one(at_worker, "receiver_certificate_expiry_timestamp_seconds") == expiry
    # Both read the one inbox's figures.
    for name in ("receiver_inbox_deliveries", "receiver_inbox_oldest_open_seconds"):
        assert pick(at_worker, name) == pick(at_receiver, name)
        assert pick(at_worker, name)
    assert one(at_receiver, "receiver_inbox_deliveries", subscriber="flaky", state="dead") == stored


def test_on_postgresql_every_process_reports_the_shared_inbox_backlog(
    tmp_path: Path, tls_ca: DevCertificates, postgres_server: PostgresServer, postgres_database: str
) -> None:
    cluster = PgCluster(Harness(tmp_path, tls_ca), postgres_server, postgres_database)
    with contextlib.ExitStack() as stack:
        stack.callback(cluster.close)
        r1, r2 = cluster.receiver("r1"), cluster.receiver("r2")
        count = 4
        with cluster.harness.client() as client:
            for _ in range(count):
                assert post_event(client, r1.url(), enreach_event(), token=TOKEN).status_code == 200
            time.sleep(1.0)  # the oldest delivery is a second old
            first, second = (samples(scrape(client, r.admin_url("/metrics"))) for r in (r1, r2))
            # r2 stored nothing, yet reports the events r1 stored, waiting for a worker.
            assert one(first, "receiver_requests_total", outcome="stored") == count
            assert one(second, "receiver_requests_total", outcome="stored") == 0
            for name in RECORDERS:
                states = by(second, "receiver_inbox_deliveries", "state", subscriber=name)
                assert states == {
                    "pending": count, "in_progress": 0, "dead": 0, "done": 0, "discarded": 0,
                }  # fmt: skip
                assert pick(first, "receiver_inbox_deliveries", subscriber=name) == pick(
                    second, "receiver_inbox_deliveries", subscriber=name
                )
                ages = [one(m, "receiver_inbox_oldest_open_seconds", subscriber=name)
                        for m in (first, second)]  # fmt: skip
                assert min(ages) >= 1.0 and max(ages) - min(ages) < 5, ages
            [info] = pick(second, "receiver_build_info")
            assert dict(info)["inbox"] == "postgresql"
            # A worker drains the backlog; all three processes see it drained.
            worker = pg_worker(cluster)
            stack.enter_context(worker)
            urls = [r.admin_url("/metrics") for r in (r1, r2, worker)]

            def drained() -> bool:
                pages = [samples(client.get(url).text) for url in urls]
                return all(
                    one(page, "receiver_inbox_deliveries", subscriber=name, state="done") == count
                    and settled(page, name)
                    for page in pages
                    for name in RECORDERS
                )

            wait_for(drained, "the backlog drained, as every process reports it", cluster.logs)
            at_worker = samples(scrape(client, urls[2]))
        for name in RECORDERS:
            attempts = by(at_worker, "receiver_delivery_attempts_total", "outcome", subscriber=name)
            assert attempts == {"done": count, "retry": 0, "dead": 0}
            assert one(at_worker, "receiver_inbox_oldest_open_seconds", subscriber=name) == 0

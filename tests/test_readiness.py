"""`/readyz` of real processes: 200 with JSON naming each check while ready, 503 naming the
check that fails, and 200 again once it is fixed, with nobody restarting anything.

- `inbox`: an SQLite inbox on a tiny tmpfs that fills up (in a mount namespace of the
  receiver's own), then gets its space back; a PostgreSQL inbox whose server is made read-only
  (`default_transaction_read_only`), then writable again, and whose server is stopped, then
  started again.
- `dispatcher`: a `--no-dispatch` receiver with no worker (ready, since it still stores what
  it is sent, with the check under `warnings`), then a `receiver worker` on the same inbox,
  then that worker stopped.
- `certificate`: a certificate that expires within `--ready-cert-days`.
"""

from __future__ import annotations

import datetime
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import trustme

from receiver.certs import DevCertificates
from receiver.testing import ReceiverProcess, throwaway_certificates
from tests.conftest import SECRET, Harness, enreach_event, post_event
from tests.support import postgres
from tests.support.admin_worker import AdminWorker
from tests.support.cluster import TOKEN, PgCluster
from tests.support.faults import SmallDiskReceiver
from tests.support.postgres import PostgresServer

postgres_server = postgres.postgres_server
postgres_database = postgres.postgres_database

CHECKS = {"process", "inbox", "dispatcher", "certificate"}


def readyz(client: httpx.Client, receiver: ReceiverProcess) -> tuple[int, dict[str, Any]]:
    """`/readyz`'s status and JSON body (no token: it is open)."""
    response = client.get(receiver.admin_url("/readyz"))
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return response.status_code, body


def assert_ready(status: int, body: dict[str, Any]) -> None:
    """200, every check named and passed."""
    assert (status, body["status"]) == (200, "ready"), body
    assert set(body["checks"]) == CHECKS and "failed" not in body
    assert all(check["ok"] for check in body["checks"].values()), body


def wait_readyz(
    client: httpx.Client,
    receiver: ReceiverProcess,
    failed: list[str],
    log: Callable[[], str],
    timeout: float = 20,
    warnings: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Poll `/readyz` until it fails exactly the checks `failed` (none: 200) and warns of
    exactly `warnings` (failed checks that leave the process ready); its body."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, body = readyz(client, receiver)
        if body.get("failed", []) == failed and body.get("warnings", []) == list(warnings):
            assert status == (503 if failed else 200), body
            assert set(body["checks"]) == CHECKS
            assert body["status"] == ("unready" if failed else "ready")
            for name, check in body["checks"].items():
                assert check["ok"] is (name not in failed and name not in warnings), body
            return body
        time.sleep(0.2)
    pytest.fail(f"/readyz never failed just {failed}, warned {warnings}: {body}\n{log()[-4000:]}")


def test_readyz_names_every_check_and_passes_on_a_working_receiver(harness: Harness) -> None:
    receiver = harness.receiver()
    with harness.client() as client:
        status, body = readyz(client, receiver)
        assert_ready(status, body)
        checks = body["checks"]
        assert checks["inbox"]["detail"] == f"{receiver.inbox} takes writes"
        assert checks["dispatcher"]["detail"] == "this process dispatches"
        assert checks["certificate"]["detail"].startswith("valid for ")
        # /healthz only says the process is up.
        health = client.get(receiver.admin_url("/healthz"))
        assert health.status_code == 200 and health.json() == {"status": "ok", "role": "serve"}


# -- inbox ---------------------------------------------------------------------------------


def test_a_full_sqlite_filesystem_fails_the_inbox_check_until_space_is_freed(
    harness: Harness,
) -> None:
    receiver = SmallDiskReceiver(
        harness.tmp_path, certs=harness.certs, size_kib=1024, args=["--backoff-base", "0.05"]
    )
    receiver.secret = SECRET
    harness.processes.append(receiver)
    receiver.start()
    with harness.client() as client:
        for _ in range(3):
            assert post_event(client, receiver.url(), enreach_event()).status_code == 200
        wait_readyz(client, receiver, [], lambda: receiver.log)
        # The filesystem fills up: the probe's write cannot be stored.
        ballast = receiver.fill()
        body = wait_readyz(client, receiver, ["inbox"], lambda: receiver.log)
        detail = body["checks"]["inbox"]["detail"]
        assert detail.startswith(f"{receiver.inbox}: ") and "full" in detail, detail
        assert post_event(client, receiver.url(), enreach_event()).status_code == 503
        ballast.unlink()
        wait_readyz(client, receiver, [], lambda: receiver.log)
        assert post_event(client, receiver.url(), enreach_event()).status_code == 200
    assert receiver.stop() == 0


@pytest.fixture
def cluster(
    tmp_path: Path, tls_ca: DevCertificates, postgres_server: PostgresServer, postgres_database: str
) -> Iterator[PgCluster]:
    """Receivers and workers on one PostgreSQL database, stopped after the test."""
    processes = PgCluster(Harness(tmp_path, tls_ca), postgres_server, postgres_database)
    try:
        yield processes
    finally:
        processes.close()


def set_read_only(server: PostgresServer, on: bool) -> None:
    """Make every new transaction on `server` read-only (or not), as a hot standby's are."""
    # This session never reads the setting: ALTER SYSTEM is refused in a read-only one.
    options = "-c default_transaction_read_only=off"
    with psycopg.connect(server.url(), autocommit=True, options=options) as conn:
        conn.execute(f"ALTER SYSTEM SET default_transaction_read_only = {'on' if on else 'off'}")
        conn.execute("SELECT pg_reload_conf()")


def test_a_read_only_or_stopped_postgresql_fails_the_inbox_check_until_it_is_back(
    cluster: PgCluster, postgres_server: PostgresServer
) -> None:
    receiver = cluster.receiver("r1")
    args = ["--config", str(cluster.config), "--inbox", cluster.inbox]
    env = {"PGPASSWORD": postgres_server.password, "PGCONNECT_TIMEOUT": "5"}
    env["SUBSCRIBERS_RECORD_FILE"] = str(cluster.records)
    worker = AdminWorker(cluster.tmp_path, args, certs=cluster.harness.certs, env=env)
    with worker, cluster.harness.client() as client:
        wait_readyz(client, receiver, [], cluster.logs)
        set_read_only(postgres_server, True)
        try:
            body = wait_readyz(client, receiver, ["inbox"], cluster.logs)
            assert "read-only" in body["checks"]["inbox"]["detail"]
            assert postgres_server.password not in str(body)
        finally:
            set_read_only(postgres_server, False)
        wait_readyz(client, receiver, [], cluster.logs)
        assert post_event(client, receiver.url(), enreach_event(), token=TOKEN).status_code == 200
        # Stopped: neither the inbox nor who dispatches can be told.
        postgres_server.stop()
        try:
            body = wait_readyz(client, receiver, ["inbox"], cluster.logs, warnings=("dispatcher",))
            assert postgres_server.password not in str(body)
        finally:
            postgres_server.start()
        wait_readyz(client, receiver, [], cluster.logs, timeout=30)
        assert post_event(client, receiver.url(), enreach_event(), token=TOKEN).status_code == 200
    assert worker.stop() == 0, worker.log


# -- dispatcher ----------------------------------------------------------------------------

LEASE = 3.0
"""The worker's --lease: how long its claim to dispatch outlives its last heartbeat."""


def test_a_receiver_without_a_dispatching_worker_stays_ready_and_warns_until_one_runs(
    harness: Harness,
) -> None:
    receiver = harness.receiver("--no-dispatch")
    log = receiver.log_path.read_text
    with harness.client() as client:
        body = wait_readyz(client, receiver, [], log, warnings=("dispatcher",))
        assert body["checks"]["dispatcher"]["detail"] == (
            "no process dispatches: events wait for subscribers default"
        )
        # Events are still stored meanwhile.
        assert post_event(client, receiver.url(), enreach_event()).status_code == 200
        args = ["--inbox", str(receiver.inbox), "--lease", str(LEASE)]
        args += ["--handler", "tests.support.recorder:Recorder"]
        env = {"RECORD_FILE": str(harness.record_file)}
        worker = AdminWorker(harness.tmp_path, args, certs=harness.certs, env=env)
        worker.start()
        try:
            body = wait_readyz(client, receiver, [], log)
            assert body["checks"]["dispatcher"]["detail"] == "1 other process(es) dispatch"
            harness.wait_for(lambda: len(harness.handled_keys()) == 1, what="the event handled")
        finally:
            assert worker.stop() == 0, worker.log
        # Stopped, it no longer counts: it gave its lease up as it closed.
        stopped = time.monotonic()
        wait_readyz(client, receiver, [], log, warnings=("dispatcher",))
        assert time.monotonic() - stopped < LEASE


# -- certificate ---------------------------------------------------------------------------


def certificates_expiring_in(directory: Path, days: float) -> DevCertificates:
    """A CA and a localhost certificate that expires `days` from now."""
    ca = trustme.CA()
    not_after = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=days)
    cert = ca.issue_cert("localhost", "127.0.0.1", "::1", not_after=not_after)
    paths = DevCertificates.in_dir(directory)
    directory.mkdir(parents=True)
    ca.cert_pem.write_to_path(str(paths.ca))
    paths.cert.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(paths.key))
    return paths


def test_a_certificate_expiring_within_ready_cert_days_fails_the_certificate_check(
    tmp_path: Path,
) -> None:
    short = certificates_expiring_in(tmp_path / "short", 3)
    expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=3)
    long = throwaway_certificates(tmp_path / "long")  # the development CA's: 825 days
    for certs, days, failed in (
        (short, "4", ["certificate"]),
        (short, "2", []),
        (long, "10000", ["certificate"]),
    ):
        workdir = tmp_path / f"{certs.cert.parent.name}-{days}"
        workdir.mkdir()
        receiver = ReceiverProcess(
            workdir, certs=certs, secret=SECRET, args=["--ready-cert-days", days]
        )
        context = ssl.create_default_context(cafile=str(certs.ca))
        with receiver, httpx.Client(verify=context) as client:
            body = wait_readyz(client, receiver, failed, receiver.log_path.read_text)
        check = body["checks"]["certificate"]
        if certs is long:
            assert check["detail"].startswith("expires in 82"), check
            continue
        expires = datetime.datetime.fromisoformat(check["expires"])
        assert abs((expires - expiry).total_seconds()) < 120, check
        if failed:
            assert check["detail"].startswith("expires in 3.0 days ("), check
            assert check["detail"].endswith("); renew it"), check
        else:
            assert check["detail"] == "valid for 3 more days", check

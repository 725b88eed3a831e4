"""The HAProxy configuration shipped in examples/scaling/ is the one that works.

HAProxy runs that very file, with only its addresses changed (the listening port, the status
page's, the receivers' ports and their admin ports, all ephemeral here), in front of two real
receivers (`receiver serve --no-dispatch`) and a worker on one PostgreSQL database:
connections are spread over both receivers, a receiver killed outright costs the senders
nothing (its refused connections go to the other) and is taken out by the health checks (each
receiver's `/readyz` on its admin listener), a receiver cut off from PostgreSQL is taken out
while the other takes every event, PostgreSQL down takes both out until it is back, and every
acknowledged event is stored once and handled. docs/scaling.md shows the same file.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from receiver.certs import DevCertificates
from receiver.testing import ReceiverProcess
from tests.conftest import ROOT, SECRET, enreach_event, post_event
from tests.support import postgres
from tests.support.haproxy import haproxy_binary
from tests.support.postgres import PostgresServer, free_port
from tests.support.relay import Relay

postgres_server = postgres.postgres_server
postgres_database = postgres.postgres_database

CONFIG = ROOT / "examples" / "scaling" / "haproxy.cfg"

SHIPPED_ADDRESSES = {
    "frontend": "bind :443",
    "stats": "bind 127.0.0.1:8404",
    "r1": "server r1 127.0.0.1:8443 check port 9443",
    "r2": "server r2 127.0.0.1:8444 check port 9445",
}
"""The lines of the shipped file that name an address: all that the test changes."""


def shipped_config() -> str:
    """examples/scaling/haproxy.cfg as it is in the repository."""
    return CONFIG.read_text()


def with_addresses(
    config: str, front: int, stats: int, r1: ReceiverProcess | None, r2: ReceiverProcess | None
) -> str:
    """`config` with its listening ports and its receivers' ports (webhooks, admin) changed,
    nothing else (None: port 1, for a check only)."""
    changed = {
        "frontend": f"bind 127.0.0.1:{front}",
        "stats": f"bind 127.0.0.1:{stats}",
        "r1": server_line("r1", r1),
        "r2": server_line("r2", r2),
    }
    for key, line in SHIPPED_ADDRESSES.items():
        assert config.count(line) == 1, f"examples/scaling/haproxy.cfg: expected one {line!r}"
        config = config.replace(line, changed[key])
    return config


def server_line(name: str, receiver: ReceiverProcess | None) -> str:
    """The `server` line of `receiver`, health-checked on its admin port."""
    port, admin = (receiver.port, receiver.admin_port) if receiver else (1, 1)
    return f"server {name} 127.0.0.1:{port} check port {admin}"


def test_the_shipped_config_is_valid_as_it_stands() -> None:
    result = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(CONFIG)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_docs_scaling_shows_the_shipped_config() -> None:
    doc = (ROOT / "docs" / "scaling.md").read_text()
    shown = re.search(r"```text\n(global\n.*?)```", doc, re.DOTALL)
    assert shown is not None, "docs/scaling.md shows no HAProxy configuration"
    config = shipped_config()
    assert shown.group(1) == config[config.index("global\n") :]


def test_only_addresses_change() -> None:
    config = shipped_config()
    rendered = with_addresses(config, 1, 2, None, None)
    different = [
        (a, b) for a, b in zip(config.splitlines(), rendered.splitlines(), strict=True) if a != b
    ]
    assert sorted(a.strip() for a, _ in different) == sorted(SHIPPED_ADDRESSES.values())


class Proxy:
    """HAProxy running the shipped file (addresses changed) in the foreground."""

    def __init__(self, workdir: Path, r1: ReceiverProcess, r2: ReceiverProcess) -> None:
        self.port = free_port()
        self.stats_port = free_port()
        self.config = workdir / "haproxy.cfg"
        self.config.write_text(with_addresses(shipped_config(), self.port, self.stats_port, r1, r2))
        self.log_path = workdir / "haproxy.log"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [haproxy_binary(), "-db", "-f", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    @property
    def log(self) -> str:
        """HAProxy's output so far."""
        return self.log_path.read_text(errors="replace")

    def stats(self) -> dict[str, dict[str, str]]:
        """The status page's CSV: the backend `receivers`' rows by server name."""
        text = httpx.get(f"http://127.0.0.1:{self.stats_port}/;csv", timeout=5).text
        rows = csv.DictReader(line for line in text.lstrip("# ").splitlines() if line)
        return {row["svname"]: row for row in rows if row["pxname"] == "receivers"}

    def wait_for(self, states: dict[str, str], timeout: float = 15.0) -> None:
        """Wait until each named server's status is the one given (`UP`, `DOWN`)."""
        deadline = time.monotonic() + timeout
        seen: dict[str, str] = {}
        while time.monotonic() < deadline:
            try:
                rows = self.stats()
            except httpx.HTTPError:
                rows = {}
            seen = {name: rows[name]["status"] for name in states if name in rows}
            if seen == states:
                return
            time.sleep(0.1)
        raise TimeoutError(f"HAProxy shows {seen}, not {states}:\n{self.log}")

    def close(self) -> None:
        """Stop HAProxy."""
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def pg_url(postgres_server: PostgresServer, postgres_database: str) -> str:
    """The test database's URL without its password (the receivers refuse one in the URL)."""
    name = urlsplit(postgres_database).path.lstrip("/")
    return postgres_server.url(name, password=False)


@pytest.fixture
def pg_env(postgres_server: PostgresServer) -> dict[str, str]:
    """What the receivers and the worker need besides the URL: the password."""
    return {"PGPASSWORD": postgres_server.password, "PYTHONPATH": str(ROOT)}


def wait_for_line(log: Path, text: str, proc: subprocess.Popen[bytes]) -> None:
    """Wait until `proc` wrote `text` to `log`."""
    deadline = time.monotonic() + 30
    while text not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"no {text!r} from the worker:\n{log.read_text()}")
        time.sleep(0.05)


Cluster = tuple[Proxy, list[ReceiverProcess], subprocess.Popen[bytes]]


@contextlib.contextmanager
def running_cluster(
    tmp_path: Path,
    certs: DevCertificates,
    inboxes: tuple[str, str],
    pg_url: str,
    env: dict[str, str],
) -> Iterator[Cluster]:
    """Two receivers (on `inboxes`) and a worker (on `pg_url`), HAProxy in front; all UP."""
    receivers: list[ReceiverProcess] = []
    proxy: Proxy | None = None
    worker: subprocess.Popen[bytes] | None = None
    try:
        for name, inbox in zip(("r1", "r2"), inboxes, strict=True):
            workdir = tmp_path / name
            workdir.mkdir()
            receiver = ReceiverProcess(
                workdir,
                certs=certs,
                secret=SECRET,
                args=["--inbox", inbox, "--no-dispatch"],
                env=env,
            )
            receivers.append(receiver)
            receiver.start(timeout=30)
        with (tmp_path / "worker.log").open("ab") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "receiver", "worker", "--inbox", pg_url],
                cwd=tmp_path,
                env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        # A --no-dispatch receiver is ready (and HAProxy sends to it) once a process dispatches.
        wait_for_line(tmp_path / "worker.log", "worker dispatching", worker)
        proxy = Proxy(tmp_path, receivers[0], receivers[1])
        proxy.wait_for({"r1": "UP", "r2": "UP"})
        yield proxy, receivers, worker
    finally:
        if proxy is not None:
            proxy.close()
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        for receiver in receivers:
            receiver.close()


@pytest.fixture
def cluster(
    tmp_path: Path, tls_ca: DevCertificates, pg_url: str, pg_env: dict[str, str]
) -> Iterator[Cluster]:
    """Two receivers and a worker on the test's database, HAProxy in front; all UP."""
    with running_cluster(tmp_path, tls_ca, (pg_url, pg_url), pg_url, pg_env) as running:
        yield running


def send_events(proxy: Proxy, ca: Path, count: int) -> list[int | None]:
    """POST `count` new events through HAProxy, each on a new connection; their statuses
    (None: no answer, as when HAProxy has no receiver up and closes the connection)."""
    context = ssl.create_default_context(cafile=str(ca))
    url = f"https://127.0.0.1:{proxy.port}/enreach"
    statuses: list[int | None] = []
    for _ in range(count):
        with httpx.Client(verify=context, timeout=10) as client:
            try:
                answer = post_event(client, url, enreach_event("QueueCallInUserConnected"))
            except httpx.TransportError:
                statuses.append(None)
            else:
                statuses.append(answer.status_code)
    return statuses


def inbox_states(url: str, password: str) -> dict[str, int]:
    """How many events the inbox holds, and its deliveries by state number."""
    with psycopg.connect(url, password=password, connect_timeout=5) as conn:
        events = conn.execute("SELECT count(*) FROM receiver_events").fetchone()
        rows = conn.execute(
            "SELECT state, count(*) FROM receiver_deliveries GROUP BY state"
        ).fetchall()
    return {"events": int(events[0]) if events else 0, **{str(s): int(n) for s, n in rows}}


def wait_all_done(url: str, password: str, timeout: float = 30.0) -> dict[str, int]:
    """Wait until every delivery the inbox holds is done (state 2); its counts."""
    deadline = time.monotonic() + timeout
    states = inbox_states(url, password)
    while states != {"events": states["events"], "2": states["events"]}:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
        states = inbox_states(url, password)
    return states


def test_shipped_config_spreads_connections_and_survives_a_killed_receiver(
    cluster: Cluster,
    tls_ca: DevCertificates,
    pg_url: str,
    postgres_server: PostgresServer,
) -> None:
    proxy, (r1, _), worker = cluster
    assert send_events(proxy, tls_ca.ca, 10) == [200] * 10
    served = {name: int(row["stot"]) for name, row in proxy.stats().items()}
    assert served["r1"] >= 4 and served["r2"] >= 4, served  # round robin per connection

    # A receiver killed outright (its port closed, as when its process dies): the senders
    # see nothing, since HAProxy retries a refused connection on the other receiver...
    r1.kill()
    r1.sock.close()
    assert send_events(proxy, tls_ca.ca, 10) == [200] * 10
    # ...and the health checks take it out within two intervals.
    proxy.wait_for({"r1": "DOWN", "r2": "UP"}, timeout=10)
    assert "Server receivers/r1 is DOWN" in proxy.log
    assert send_events(proxy, tls_ca.ca, 10) == [200] * 10

    # Every acknowledged event is stored once and handled by the worker.
    assert wait_all_done(pg_url, postgres_server.password) == {"events": 30, "2": 30}
    assert worker.poll() is None


def test_a_receiver_cut_off_from_postgresql_is_taken_out_and_put_back(
    tmp_path: Path,
    tls_ca: DevCertificates,
    pg_url: str,
    pg_env: dict[str, str],
    postgres_server: PostgresServer,
) -> None:
    """The point of health-checking `/readyz`: r1 reaches PostgreSQL through a relay that is
    cut (a partition between it and PostgreSQL only). Its readiness fails, HAProxy takes it
    out, and r2 takes every event; once the relay is back, so is r1."""
    relay = Relay(("127.0.0.1", postgres_server.port))
    relay.start()
    cut_off = pg_url.replace(f":{postgres_server.port}/", f":{relay.port}/")
    try:
        with running_cluster(tmp_path, tls_ca, (cut_off, pg_url), pg_url, pg_env) as cluster:
            proxy, (r1, _), worker = cluster
            assert send_events(proxy, tls_ca.ca, 4) == [200] * 4
            relay.cut()
            proxy.wait_for({"r1": "DOWN", "r2": "UP"}, timeout=15)
            context = ssl.create_default_context(cafile=str(tls_ca.ca))
            with httpx.Client(verify=context, timeout=10) as client:
                ready = client.get(r1.admin_url("/readyz"))
            assert ready.status_code == 503 and "inbox" in ready.json()["failed"], ready.text
            assert r1.proc is not None and r1.proc.poll() is None  # up, only unready
            assert send_events(proxy, tls_ca.ca, 10) == [200] * 10  # all to r2

            relay.start()
            proxy.wait_for({"r1": "UP", "r2": "UP"}, timeout=30)
            before = int(proxy.stats()["r1"]["stot"])
            assert send_events(proxy, tls_ca.ca, 10) == [200] * 10
            assert int(proxy.stats()["r1"]["stot"]) >= before + 4  # r1 takes its share again
            assert "Server receivers/r1 is DOWN" in proxy.log
            assert wait_all_done(pg_url, postgres_server.password) == {"events": 24, "2": 24}
            assert worker.poll() is None
    finally:
        relay.close()


def test_postgres_down_takes_every_receiver_out_until_it_is_back(
    cluster: Cluster,
    tls_ca: DevCertificates,
    pg_url: str,
    postgres_server: PostgresServer,
) -> None:
    """With PostgreSQL down no receiver is ready: HAProxy takes both out (a sender then gets
    no answer at all, never a 200), and puts them back once PostgreSQL is up again."""
    proxy, _, _ = cluster
    assert send_events(proxy, tls_ca.ca, 2) == [200, 200]
    postgres_server.stop()
    try:
        proxy.wait_for({"r1": "DOWN", "r2": "DOWN"}, timeout=15)
        assert send_events(proxy, tls_ca.ca, 4) == [None] * 4
    finally:
        postgres_server.start()
    # The receivers reconnect by themselves: within seconds they are ready, and back in.
    proxy.wait_for({"r1": "UP", "r2": "UP"}, timeout=30)
    deadline = time.monotonic() + 30
    statuses = send_events(proxy, tls_ca.ca, 2)
    while statuses[-2:] != [200, 200] and time.monotonic() < deadline:
        time.sleep(0.5)
        statuses += send_events(proxy, tls_ca.ca, 2)
    assert statuses[-2:] == [200, 200]
    assert set(statuses) <= {200, 503}
    states = wait_all_done(pg_url, postgres_server.password)
    acknowledged = 2 + statuses.count(200)
    # Every acknowledged event is stored (one answered 503 may be too: its commit may have
    # succeeded unseen) and handled.
    assert acknowledged <= states["events"] <= 2 + len(statuses)
    assert states == {"events": states["events"], "2": states["events"]}

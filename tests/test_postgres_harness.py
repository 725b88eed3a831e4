"""The harness's real servers: PostgreSQL (tests/support/postgres.py) and HAProxy
(tests/support/haproxy.py) behave as the PostgreSQL tests rely on."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from receiver.certs import DevCertificates
from tests.support import postgres
from tests.support.haproxy import HAProxy
from tests.support.postgres import PostgresServer

postgres_server = postgres.postgres_server
postgres_database = postgres.postgres_database


def dbname(url: str) -> str:
    """The database a URL names."""
    return urlsplit(url).path.lstrip("/")


def no_passfile(tmp_path: Path) -> dict[str, str]:
    """libpq settings that find no password anywhere (not even in ~/.pgpass)."""
    return {"PGPASSFILE": str(tmp_path / "no-passfile"), "PGUSER": "postgres"}


def test_server_is_loopback_durable_and_not_root(postgres_server: PostgresServer) -> None:
    """The server listens on 127.0.0.1 only, syncs commits, and does not run as root."""
    rows = postgres_server.query(
        "SELECT current_setting('listen_addresses'), current_setting('fsync'), "
        "current_setting('synchronous_commit'), current_setting('server_encoding'), "
        "current_setting('max_connections'), inet_server_addr()"
    )
    assert rows == [["127.0.0.1", "on", "on", "UTF8", "200", "127.0.0.1"]]
    assert os.stat(f"/proc/{postgres_server.pid}").st_uid != 0
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        assert sock.connect_ex(("127.0.0.1", postgres_server.port)) == 0


def test_psycopg_connects_with_the_url(postgres_database: str) -> None:
    """The URL works as is with psycopg, the driver the PostgreSQL inbox uses."""
    import psycopg  # the dev extra installs it (the product's postgres extra)

    with psycopg.connect(postgres_database, connect_timeout=5) as conn:
        row = conn.execute("SELECT current_database(), inet_server_addr()::text").fetchone()
    assert row == (dbname(postgres_database), "127.0.0.1/32")


@pytest.mark.parametrize(
    ("password", "refusal"),
    [
        pytest.param(None, "no password supplied", id="none"),
        pytest.param("not-the-password", "password authentication failed", id="wrong"),
    ],
)
def test_tcp_needs_the_password(
    postgres_server: PostgresServer, tmp_path: Path, password: str | None, refusal: str
) -> None:
    """A connection over TCP without the right password is refused."""
    env = no_passfile(tmp_path)
    if password is not None:
        env["PGPASSWORD"] = password
    result = postgres_server.psql("SELECT 1", env=env)
    assert result.returncode != 0
    assert refusal in result.stderr


def test_password_from_a_passfile(postgres_server: PostgresServer, tmp_path: Path) -> None:
    """The URL without a password works with libpq's passfile."""
    passfile = postgres_server.write_passfile(tmp_path / "pgpass")
    assert "@127.0.0.1:" in postgres_server.url(password=False)
    assert postgres_server.password not in postgres_server.url(password=False)
    result = postgres_server.psql("SELECT current_user", env={"PGPASSFILE": str(passfile)})
    assert (result.returncode, result.stdout.strip()) == (0, "postgres"), result.stderr


def test_created_database_is_fresh_and_usable(
    postgres_server: PostgresServer, postgres_database: str
) -> None:
    """Each test gets its own empty database, and can make more."""
    name = dbname(postgres_database)
    assert name.startswith("t_test_created_database_is_fresh")
    tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
    assert postgres_server.query(tables, name) == [["0"]]
    postgres_server.query("CREATE TABLE events (id int PRIMARY KEY, body text)", name)
    postgres_server.query("INSERT INTO events VALUES (1, 'ünïcode')", name)
    assert postgres_server.query("SELECT id, body FROM events", name) == [["1", "ünïcode"]]
    other = postgres_server.create_database()
    assert dbname(other) != name
    assert postgres_server.query(tables, dbname(other)) == [["0"]]
    postgres_server.drop_database(dbname(other))


def test_stop_refuses_connections_and_start_keeps_the_data(
    postgres_server: PostgresServer, postgres_database: str
) -> None:
    """stop() makes connections fail; start() brings the server back on the same port with
    every committed row."""
    name = dbname(postgres_database)
    postgres_server.query("CREATE TABLE kept (n int)", name)
    postgres_server.query("INSERT INTO kept SELECT generate_series(1, 100)", name)
    port, pid = postgres_server.port, postgres_server.pid
    try:
        postgres_server.stop()
        assert not postgres_server.running
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        result = postgres_server.psql("SELECT 1", name)
        assert result.returncode != 0
        assert "Connection refused" in result.stderr
    finally:
        started = time.monotonic()
        postgres_server.start()
        restart = time.monotonic() - started
    assert postgres_server.port == port
    assert postgres_server.pid != pid
    assert restart < 5
    assert postgres_server.query("SELECT count(*), sum(n) FROM kept", name) == [["100", "5050"]]


# -- HAProxy -------------------------------------------------------------------------------


@dataclass
class Backend:
    """A tiny HTTPS backend: its traffic address, its check port, and switches."""

    address: str
    check_port: int
    stop: Callable[[], None]
    ready: threading.Event


@contextlib.contextmanager
def named_server(name: str, certs: DevCertificates) -> Iterator[Backend]:
    """A tiny HTTPS app on uvicorn answering its `name` at /whoami, on two ports as a receiver
    has (webhooks and admin); /readyz, on the second only, answers 200 while `ready` is set,
    else 503."""
    ready = threading.Event()
    ready.set()

    async def whoami(request: Request) -> PlainTextResponse:
        return PlainTextResponse(name)

    async def readyz(request: Request) -> PlainTextResponse:
        if request.scope["server"][1] != check_port:  # as a receiver's webhook port
            return PlainTextResponse("not here", 404)
        if not ready.is_set():
            return PlainTextResponse("unready", 503)
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/whoami", whoami), Route("/readyz", readyz)])
    socks = []
    for _ in range(2):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        socks.append(sock)
    check_port: int = socks[1].getsockname()[1]
    config = uvicorn.Config(
        app,
        log_config=None,
        lifespan="off",
        loop="asyncio",
        http="h11",
        ws="none",
        timeout_graceful_shutdown=2,
        ssl_certfile=str(certs.cert),
        ssl_keyfile=str(certs.key),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=asyncio.run, args=(server.serve(sockets=socks),))
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join(10)
        for sock in socks:
            sock.close()
        assert not thread.is_alive(), f"{name} did not stop"

    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, f"{name} did not start"
            time.sleep(0.01)
        address = f"127.0.0.1:{socks[0].getsockname()[1]}"
        yield Backend(address, check_port, stop, ready)
    finally:
        stop()


def who_answers(proxy: HAProxy, certs: DevCertificates, count: int) -> Counter[str]:
    """Which backend answers each of `count` requests, each on a new TLS connection."""
    context = ssl.create_default_context(cafile=str(certs.ca))
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(verify=context, limits=limits, timeout=15) as client:
        answers = []
        for _ in range(count):
            response = client.get(proxy.url("/whoami"))
            assert response.status_code == 200
            answers.append(response.text)
    return Counter(answers)


def test_haproxy_balances_and_fails_over(tmp_path: Path, tls_ca: DevCertificates) -> None:
    """Through HAProxy, TLS reaches both backends in turn; a stopped one is marked down within
    2.5 s, and the other serves every connection meanwhile and after."""
    with (
        named_server("a", tls_ca) as a,
        named_server("b", tls_ca) as b,
        HAProxy(
            [a.address, b.address], tmp_path, check_ports=[a.check_port, b.check_port]
        ) as proxy,
    ):
        proxy.wait_for_up(2)
        assert who_answers(proxy, tls_ca, 6) == Counter({"a": 3, "b": 3})
        b.stop()
        stopped = time.monotonic()
        assert who_answers(proxy, tls_ca, 4) == Counter({"a": 4})  # retried on a at once
        # fall 2 x inter 500 ms, and slack for a loaded machine
        proxy.wait_for_up(1, timeout=max(0.0, stopped + 2.5 - time.monotonic()), names=["r1"])
        assert proxy.server_states()["r2"].startswith("DOWN")
        assert who_answers(proxy, tls_ca, 4) == Counter({"a": 4})
    assert "r2 is DOWN" in proxy.log.read_text()


def test_haproxy_checks_readiness_on_the_check_port(
    tmp_path: Path, tls_ca: DevCertificates
) -> None:
    """With `check_ports`, each backend's /readyz is asked on its own port (a receiver's admin
    listener): one that answers 503 there is taken out although its traffic port works, and
    put back once ready again."""
    with (
        named_server("a", tls_ca) as a,
        named_server("b", tls_ca) as b,
        HAProxy(
            [a.address, b.address], tmp_path, check_ports=[a.check_port, b.check_port]
        ) as proxy,
    ):
        assert f"server r2 {b.address} check port {b.check_port}" in proxy.config.read_text()
        proxy.wait_for_up(2)
        assert who_answers(proxy, tls_ca, 4) == Counter({"a": 2, "b": 2})
        b.ready.clear()
        proxy.wait_for_up(1, timeout=2.5, names=["r1"])
        assert who_answers(proxy, tls_ca, 4) == Counter({"a": 4})
        b.ready.set()
        proxy.wait_for_up(2, timeout=2.5)
        assert who_answers(proxy, tls_ca, 4) == Counter({"a": 2, "b": 2})

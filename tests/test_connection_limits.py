"""Idle and half-open connections cannot exhaust the receiver's file descriptors.

Every open connection holds a file descriptor, and a process has a fixed number of them
(systemd's default soft limit is 1024). Every case runs on both engines:

- a TCP connection that never starts TLS is closed after `--tls-handshake-timeout`;
- a connection past its request deadline releases its descriptor at once (nothing to say)
  or within a second of its `408` (a TLS close does not wait long for a stalled peer);
- the process raises its soft open-files limit to the hard one, so a thousand idle
  connections do not lock out a genuine sender;
- past `--max-connections`, a new connection closes the longest idle one, or is closed
  itself when every connection is busy; either is logged once, however often it happens.
"""

from __future__ import annotations

import os
import re
import resource
import socket
import ssl
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from receiver.engines.limits import (
    FILES_RESERVE,
    MAX_CONNECTIONS_CAP,
    ConnectionLimit,
    default_max_connections,
)
from receiver.engines.uvicorn_engine import GuardedServer, check_uvicorn
from receiver.testing import ReceiverProcess
from tests.conftest import ROOT, SECRET, Harness
from tests.support.faults import (
    closed_within,
    deliver,
    open_tls,
    request_bytes,
    stop_cleanly,
    wait_all_closed,
)
from tests.support.provider_cases import ENGINES, PROVIDER_CASES

PROVIDER = PROVIDER_CASES[0]
SLACK = 1.0
"""How much later than its bound a connection may be closed (scheduling, a loaded CI box)."""
TLS_CLOSE_GRACE = 1.0
"""What the receiver gives a peer to answer its TLS close_notify (`limits.TLS_CLOSE_GRACE`)."""
SOFT_FILES, HARD_FILES = 1024, 4096
"""The open-files limits a receiver starts with in the exhaustion test: systemd's default
soft limit, and a hard limit it may raise that to."""
ATTACKERS = 1100
"""Connections that never start TLS: more than `SOFT_FILES`."""


def receiver(harness: Harness, engine: str, *args: str, **env: str) -> ReceiverProcess:
    """A started receiver for the first provider on `engine`."""
    config = PROVIDER.write_config(harness.tmp_path)
    return harness.receiver(
        "--config", str(config), "--engine", engine, *args, env={**PROVIDER.secret_env, **env}
    )


def open_files(pid: int) -> int:
    """How many file descriptors process `pid` holds."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def resident_kib(pid: int) -> int:
    """Process `pid`'s resident memory (VmRSS) in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match.group(1))


def pid_of(process: ReceiverProcess) -> int:
    """The receiver's process id (it must be running)."""
    assert process.proc is not None and process.proc.poll() is None, process.log
    return process.proc.pid


def held_files_after(pid: int, baseline: int, timeout: float) -> tuple[float | None, int]:
    """Seconds until process `pid` holds no more than `baseline` descriptors (None: still
    more after `timeout`), and how many it held last."""
    started = time.monotonic()
    while True:
        count = open_files(pid)
        elapsed = time.monotonic() - started
        if count <= baseline:
            return elapsed, count
        if elapsed >= timeout:
            return None, count
        time.sleep(0.02)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_connection_that_never_starts_tls_is_closed_at_the_handshake_deadline(
    harness: Harness, engine: str
) -> None:
    handshake = 1.0
    process = receiver(harness, engine, "--tls-handshake-timeout", str(handshake))
    with socket.create_connection(("127.0.0.1", process.port)) as silent:
        closed, received = closed_within(silent, handshake + SLACK + 1)
    assert closed is not None and closed <= handshake + SLACK, (
        f"a connection that sent no TLS ClientHello was still open after {closed or 'more than'} "
        f"{handshake + SLACK + 1:g}s (--tls-handshake-timeout {handshake:g})"
    )
    assert received == b""
    stop_cleanly(process)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("sent", ["nothing", "half a request"])
def test_a_connection_past_its_deadline_releases_its_descriptor_promptly(
    harness: Harness, engine: str, sent: str
) -> None:
    """Closed at the request deadline, and its file descriptor released at once (nothing
    was sent: nothing to say) or within a second (a `408`, then a TLS close the stalled
    peer never answers), not after asyncio's 30 s TLS shutdown timeout."""
    deadline = 1.0
    process = receiver(harness, engine, "--request-timeout", str(deadline))
    pid = pid_of(process)
    time.sleep(0.2)  # the readiness check's connection is released
    baseline = open_files(pid)
    stalled = open_tls(process.port, harness.certs.ca)
    with stalled:
        if sent == "half a request":
            head, body = request_bytes(PROVIDER.request(process.url(PROVIDER.path)))
            stalled.sendall(head + body[: len(body) // 2])
        # The client reads nothing from here on: it never answers the server's close_notify.
        bound = deadline + (TLS_CLOSE_GRACE if sent == "half a request" else 0.0) + SLACK
        released, held = held_files_after(pid, baseline, bound + 1)
    assert released is not None and released <= bound, (
        f"{held - baseline} descriptor(s) still held after {released or 'more than'} "
        f"{bound + 1:g}s by a connection that sent {sent} (request deadline {deadline:g}s)"
    )
    stop_cleanly(process)


class LimitedFilesReceiver(ReceiverProcess):
    """A receiver started with soft and hard open-files limits of `SOFT_FILES` and
    `HARD_FILES`, as a service under systemd's defaults would be."""

    def command(self) -> list[str]:
        """`receiver serve` behind a Python that sets the limits and `exec`s it."""
        set_limits = (
            "import os, resource, sys; "
            "resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2]))); "
            "os.execv(sys.argv[3], sys.argv[3:])"
        )
        limits = [str(SOFT_FILES), str(HARD_FILES)]
        return [sys.executable, "-c", set_limits, *limits, *super().command()]


@pytest.fixture
def own_files_for_attackers() -> Iterator[None]:
    """Room in the test process for `ATTACKERS` sockets and then some."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = ATTACKERS + 512
    if soft >= needed:
        yield
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the test process may open only {hard} files; it needs {needed}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.usefixtures("own_files_for_attackers")
def test_a_thousand_idle_connections_do_not_lock_out_a_genuine_sender(
    harness: Harness, engine: str
) -> None:
    config = PROVIDER.write_config(harness.tmp_path)
    process = LimitedFilesReceiver(
        harness.tmp_path,
        certs=harness.certs,
        secret=SECRET,
        args=["--config", str(config), "--engine", engine],
        env={"PYTHONPATH": str(ROOT), **PROVIDER.secret_env},
    )
    harness.processes.append(process)
    process.start()
    pid = pid_of(process)
    limits = Path(f"/proc/{pid}/limits").read_text()
    assert re.search(rf"^Max open files\s+{HARD_FILES}\s+{HARD_FILES}\s", limits, re.M), limits
    raised = f"raised the soft limit from {SOFT_FILES} to the hard limit, {HARD_FILES}"
    deadline = time.monotonic() + 5.0  # log lines are written a batch at a time
    while raised not in process.log and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.log.count(raised) == 1, process.log
    before = resident_kib(pid)
    # More connections than systemd's default soft limit, none of which ever starts TLS.
    attackers = [socket.create_connection(("127.0.0.1", process.port)) for _ in range(ATTACKERS)]
    try:
        # Until the receiver has accepted them all (within its 5 s TLS handshake deadline).
        deadline = time.monotonic() + 3.0
        while (held := open_files(pid)) < ATTACKERS and time.monotonic() < deadline:
            time.sleep(0.05)
        request = PROVIDER.request(process.url(PROVIDER.path))
        started = time.monotonic()
        with harness.client() as client:
            response = deliver(client, request)
        took = time.monotonic() - started
        grown = resident_kib(pid) - before
    finally:
        for sock in attackers:
            sock.close()
    assert held >= ATTACKERS, f"the receiver accepted only about {held} connections"
    assert response.status_code == 200, response.text
    assert took < 2.0, f"the genuine sender waited {took:.1f}s behind {ATTACKERS} idle sockets"
    # About 50 KiB each (OpenSSL's state and the TLS protocol's buffers), whether or not
    # the handshake has begun; what bounds the total is the handshake deadline.
    assert grown < ATTACKERS * 100, f"{ATTACKERS} idle connections cost {grown} KiB"
    stop_cleanly(process)


@pytest.mark.parametrize("engine", ENGINES)
def test_past_max_connections_the_longest_idle_ones_make_room(
    harness: Harness, engine: str
) -> None:
    limit = 50
    process = receiver(harness, engine, "--max-connections", str(limit))
    time.sleep(0.2)  # the readiness check's connection is released
    head, body = request_bytes(PROVIDER.request(process.url(PROVIDER.path)))
    busy = open_tls(process.port, harness.certs.ca)
    busy.sendall(head + body[: len(body) // 2])  # the oldest, but a request in progress
    idle = [open_tls(process.port, harness.certs.ca) for _ in range(limit + 9)]
    try:
        with harness.client() as client:
            response = deliver(client, PROVIDER.request(process.url(PROVIDER.path)))
        assert response.status_code == 200, response.text
        when, _ = wait_all_closed([busy, *idle], 1.0)
    finally:
        for sock in [busy, *idle]:
            sock.close()
    shed = [index for index, closed in enumerate(when[1:]) if closed is not None]
    # 60 connections for 50 places: the ten that have been idle longest, and the busy one
    # kept; one more if the genuine sender's connection came in beyond them too.
    assert when[0] is None, "a connection with a request in progress was shed"
    assert shed in (list(range(10)), list(range(11))), f"shed idle connections {shed}"
    stop_cleanly(process)
    log = process.log
    assert log.count(f"at the connection limit ({limit}): closed the longest idle") == 1, log
    assert f"{len(shed)} idle ones shed, 0 refused" in log, log


@pytest.mark.parametrize("engine", ENGINES)
def test_past_max_connections_with_none_idle_a_new_connection_is_refused(
    harness: Harness, engine: str
) -> None:
    limit = 5
    process = receiver(harness, engine, "--max-connections", str(limit))
    time.sleep(0.2)  # the readiness check's connection is released
    head, body = request_bytes(PROVIDER.request(process.url(PROVIDER.path)))
    busy = [open_tls(process.port, harness.certs.ca) for _ in range(limit)]
    for sock in busy:
        sock.sendall(head + body[: len(body) // 2])
    try:
        refused = []
        for _ in range(3):
            try:
                late = open_tls(process.port, harness.certs.ca)
            except (OSError, ssl.SSLError):
                refused.append(0.0)  # closed before the client's handshake even ended
                continue
            with late:
                closed, _ = closed_within(late, 1.0)
            if closed is not None:
                refused.append(closed)
        still, _ = wait_all_closed(busy, 0.2)
    finally:
        for sock in busy:
            sock.close()
    assert len(refused) == 3, "a connection beyond the limit was kept while all were busy"
    assert still == [None] * limit, "a busy connection was closed to admit a new one"
    stop_cleanly(process)
    log = process.log
    assert log.count(f"at the connection limit ({limit}), all busy: refused") == 1, log
    assert "0 idle ones shed, 3 refused" in log, log


class _Connection:
    """A connection as the limit sees it: it can be shed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.was_shed = False

    def shed(self) -> None:
        self.was_shed = True


def test_the_limit_sheds_in_the_order_connections_became_idle() -> None:
    limit = ConnectionLimit(3)
    first, second, third, fourth, fifth = (_Connection(n) for n in "abcde")
    for connection in (first, second, third):
        assert limit.admit(connection)
    limit.busy(first)
    limit.idle(first)  # answered: now the most recently idle
    limit.busy(second)  # a request in progress: never shed
    assert limit.admit(fourth)
    assert [c.was_shed for c in (first, second, third)] == [False, False, True]
    limit.release(third)  # its connection_lost arrives later: nothing changes
    assert limit.admit(fifth)
    assert first.was_shed and not second.was_shed
    limit.busy(fourth)
    limit.busy(fifth)
    assert not limit.admit(_Connection("f"))  # all busy: the new one is refused
    assert limit.counters.as_dict() == {"admitted": 5, "shed": 2, "refused": 1, "peak": 3}


def test_the_default_limit_leaves_descriptors_for_everything_else() -> None:
    assert default_max_connections(1024) == 1024 - FILES_RESERVE
    assert default_max_connections(300) == 150
    assert default_max_connections(1 << 20) == MAX_CONNECTIONS_CAP


def test_the_uvicorn_engine_refuses_to_serve_if_what_it_relies_on_moved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`GuardedServer` repeats a part of `uvicorn.Server.startup`; a uvicorn whose server
    starts differently must not be served with it (nor silently without its deadlines)."""
    check_uvicorn()  # the installed uvicorn is the one it was written for

    async def startup(self: uvicorn.Server, sockets: list[socket.socket], backlog: int) -> None:
        """A uvicorn whose start-up takes something more."""

    monkeypatch.setattr(uvicorn.Server, "startup", startup)
    with pytest.raises(RuntimeError, match=r"Server\.startup no longer takes"):
        GuardedServer(uvicorn.Config(app="module:app"), tls_handshake_timeout=1.0)


@pytest.mark.parametrize("engine", ENGINES)
def test_connections_closed_at_their_deadline_cannot_flood_the_log(
    harness: Harness, engine: str
) -> None:
    """The guards log each expired connection; past 10 lines in 10 s they are counted, not
    written, so idle sockets cannot fill the disk."""
    process = receiver(harness, engine, "--request-timeout", "0.5", "--log-level", "info")
    sockets = [open_tls(process.port, harness.certs.ca) for _ in range(30)]
    try:
        time.sleep(2.5)  # every one has passed its deadline and been closed
    finally:
        for sock in sockets:
            sock.close()
    stop_cleanly(process)
    expired = [line for line in process.log.splitlines() if "no complete request" in line]
    assert 1 <= len(expired) <= 10, "\n".join(expired)

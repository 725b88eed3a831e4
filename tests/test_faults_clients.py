"""Slow and broken clients: the server keeps serving others and cuts them off after timeouts.

Every case runs on both engines (one provider each, in turn). The receiver runs with
one-second limits, set through the environment (every setting is also a `RECEIVER_<NAME>`
variable):

- RECEIVER_REQUEST_TIMEOUT: a client must deliver a complete request (head and body) within
  this many seconds of connecting or of starting the request (slowloris, idle fresh
  connections, a stalled or trickled body);
- RECEIVER_KEEP_ALIVE_TIMEOUT: idle time allowed between requests on a kept-alive connection.

A client cut off part-way through a request gets a 408 and a closed connection (an
oversized head: a 431, 400 or 413); one that never sent anything is just closed. Nothing it
half-sent is stored, and nobody else waits for it.
"""

from __future__ import annotations

import re
import socket
import struct
import time
from collections.abc import Iterator, Mapping

import httpx
import pytest

from receiver.testing import ReceiverProcess
from tests.conftest import Harness
from tests.support.faults import (
    closed_within,
    deliver,
    inbox_states,
    open_tls,
    provider_receiver,
    read_responses,
    request_bytes,
    settled_states,
    statuses_in,
    stop_cleanly,
    trickle,
    wait_all_closed,
)
from tests.support.provider_cases import (
    ENGINES,
    PROVIDER_CASES,
    PROVIDERS_ON_ENGINES,
    ProviderCase,
)

LIMIT = 1.0
"""Both timeouts, in seconds."""
SLACK = 2.5
"""How much later than its limit a connection may be closed (scheduling, a loaded CI box)."""
SHORT_TIMEOUTS = {"RECEIVER_REQUEST_TIMEOUT": str(LIMIT), "RECEIVER_KEEP_ALIVE_TIMEOUT": str(LIMIT)}
ONLY_THE_REQUEST_TIMEOUT = {**SHORT_TIMEOUTS, "RECEIVER_KEEP_ALIVE_TIMEOUT": "60"}
"""For cases the request deadline alone must cut off (an engine's idle timer may not)."""


def start(
    harness: Harness, provider: ProviderCase, engine: str, env: Mapping[str, str] = SHORT_TIMEOUTS
) -> ReceiverProcess:
    """A receiver for `provider` on `engine` with the short client timeouts, and `/healthz`
    on its webhook port (`--public-healthz`): a cheap GET answered 200 on a kept-alive
    connection, as a load balancer's probe of that port is."""
    return provider_receiver(
        harness, provider, "--engine", engine, "--public-healthz", env=dict(env)
    )


def serve_others(harness: Harness, receiver: ReceiverProcess, provider: ProviderCase) -> list[str]:
    """Send five genuine events on a fresh connection; each must be acknowledged promptly."""
    sent = []
    with harness.client() as client:
        for _ in range(5):
            request = provider.request(receiver.url(provider.path))
            started = time.monotonic()
            response = deliver(client, request)
            assert response.status_code == 200, response.text
            assert time.monotonic() - started < 2.0, "a slow client held up a genuine sender"
            sent.append(provider.dedup_key(request))
    return sent


def check_cut_off(closed: float | None, received: bytes, limit: float, what: str) -> None:
    """The server answered 408 and closed the connection in time."""
    assert closed is not None, (
        f"{what}: the server still holds the connection after {limit + SLACK:g}s "
        f"(limit {limit:g}s); received {received[:200]!r}"
    )
    assert closed <= limit + SLACK
    assert statuses_in(received) == [408], received[:200]


@pytest.mark.parametrize(("provider", "engine"), PROVIDERS_ON_ENGINES)
def test_a_request_head_sent_slowly_is_cut_off_while_others_are_served(
    harness: Harness, provider: ProviderCase, engine: str
) -> None:
    receiver = start(harness, provider, engine, ONLY_THE_REQUEST_TIMEOUT)
    head, _ = request_bytes(provider.request(receiver.url(provider.path)))
    lines = head.split(b"\r\n")
    # One header line every 0.2 s, then padding headers: a slowloris that never finishes.
    pieces = [line + b"\r\n" for line in lines[:-2]] + [b"X-Padding: x\r\n"] * 200
    slow = open_tls(receiver.port, harness.certs.ca)
    with slow:
        slow.send(pieces.pop(0))
        others = serve_others(harness, receiver, provider)
        closed, received = trickle(slow, pieces, interval=0.2, timeout=LIMIT + SLACK + 1)
    check_cut_off(closed, received, LIMIT, "slow request head")
    assert set(inbox_states(receiver.inbox)) == set(others)
    stop_cleanly(receiver)


@pytest.mark.parametrize(("provider", "engine"), PROVIDERS_ON_ENGINES)
@pytest.mark.parametrize("how", ["stalled", "trickled"])
def test_a_body_that_stops_or_trickles_is_cut_off_and_not_stored(
    harness: Harness, provider: ProviderCase, engine: str, how: str
) -> None:
    receiver = start(harness, provider, engine, ONLY_THE_REQUEST_TIMEOUT)
    request = provider.request(receiver.url(provider.path))
    head, body = request_bytes(request)
    half = len(body) // 2
    slow = open_tls(receiver.port, harness.certs.ca)
    with slow:
        slow.sendall(head + body[:half])
        others = serve_others(harness, receiver, provider)
        # "stalled": nothing more; "trickled": one byte every 0.3 s, never finishing in time.
        pieces = [] if how == "stalled" else [bytes([b]) for b in body[half:]]
        closed, received = trickle(slow, pieces, interval=0.3, timeout=LIMIT + SLACK + 1)
    check_cut_off(closed, received, LIMIT, f"{how} body")
    assert set(inbox_states(receiver.inbox)) == set(others)
    stop_cleanly(receiver)


@pytest.mark.parametrize(("provider", "engine"), PROVIDERS_ON_ENGINES)
def test_many_idle_connections_do_not_starve_others_and_are_closed(
    harness: Harness, provider: ProviderCase, engine: str
) -> None:
    receiver = start(harness, provider, engine)
    # Connections that never start TLS, TLS connections that never send a request, and
    # kept-alive connections that went quiet after one request.
    no_tls = [socket.create_connection(("127.0.0.1", receiver.port)) for _ in range(50)]
    fresh = [open_tls(receiver.port, harness.certs.ca) for _ in range(150)]
    kept = []
    for _ in range(50):
        conn = open_tls(receiver.port, harness.certs.ca)
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data, gone = read_responses(conn)
        assert statuses_in(data) == [200] and not gone
        kept.append(conn)
    opened = time.monotonic()
    try:
        others = serve_others(harness, receiver, provider)
        waited = time.monotonic() - opened
        when, _ = wait_all_closed([*fresh, *kept], LIMIT + SLACK - waited)
        still_fresh = sum(c is None for c in when[: len(fresh)])
        still_kept = sum(c is None for c in when[len(fresh) :])
        assert (still_fresh, still_kept) == (0, 0), (
            f"after {LIMIT + SLACK:g}s the server still holds {still_fresh} of {len(fresh)} "
            f"connections that never sent a request and {still_kept} of {len(kept)} idle "
            "kept-alive connections"
        )
    finally:
        for sock in [*no_tls, *fresh, *kept]:
            sock.close()
    assert set(inbox_states(receiver.inbox)) == set(others)
    with harness.client() as client:
        assert client.get(receiver.url("/healthz")).status_code == 200
    stop_cleanly(receiver)


@pytest.mark.parametrize(("provider", "engine"), PROVIDERS_ON_ENGINES)
def test_an_endless_request_head_is_refused_without_buffering_it(
    harness: Harness, provider: ProviderCase, engine: str
) -> None:
    receiver = start(harness, provider, engine)
    head, _ = request_bytes(provider.request(receiver.url(provider.path)))
    big = open_tls(receiver.port, harness.certs.ca, timeout=10)
    with big:
        big.sendall(head[:-2] + b"X-Huge: ")
        sent = 0
        refused = False
        try:
            for _ in range(16):  # up to 16 MiB of one header value
                big.sendall(b"a" * (1 << 20))
                sent += 1
        except (OSError, TimeoutError):
            refused = True  # the server stopped reading or closed: the point of the test
        data, closed = read_responses(big, timeout=LIMIT + SLACK)
    statuses = statuses_in(data)
    assert statuses in ([431], [400], [413]) or (refused and closed and not data), (
        f"a {sent} MiB request head got {statuses or 'no answer'}"
        f"{'' if closed else ' and the connection is still open'}: the server buffers "
        "request heads without a limit"
    )
    others = serve_others(harness, receiver, provider)
    assert set(inbox_states(receiver.inbox)) == set(others)
    stop_cleanly(receiver)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_complete_request_head_over_64_kib_is_refused_however_it_arrives(
    harness: Harness, engine: str
) -> None:
    """A head that arrives whole in one read is held to the same 64 KiB as one that trickles
    in: before, 92-172 KB heads passed whenever a read happened to hold all of them."""
    provider = PROVIDER_CASES[0]
    receiver = start(harness, provider, engine)
    head, body = request_bytes(provider.request(receiver.url(provider.path)))
    for size in (70_000, 100_000, 150_000, 200_000):
        padded = head[:-2] + b"X-Pad: " + b"a" * size + b"\r\n\r\n"
        sock = open_tls(receiver.port, harness.certs.ca, timeout=10)
        with sock:
            sock.sendall(padded + body)
            data, _ = read_responses(sock, timeout=LIMIT + SLACK)
        assert statuses_in(data) == [431], f"a {size:,}-byte head got {statuses_in(data)}"
    assert inbox_states(receiver.inbox) == {}
    stop_cleanly(receiver)


@pytest.mark.parametrize(("provider", "engine"), PROVIDERS_ON_ENGINES)
@pytest.mark.parametrize("status", [401, 404, 405])
def test_a_connection_answered_before_its_body_stays_usable_or_is_announced_closed(
    harness: Harness, provider: ProviderCase, engine: str, status: int
) -> None:
    """A wrong credential (401), an unknown path (404) or a wrong method (405) is answered
    before the body is read. A sender that keeps the connection alive must then either be
    told `Connection: close` or be able to send its next request on it; a connection closed
    silently makes its next request fail."""
    receiver = start(harness, provider, engine)
    url = receiver.url(provider.path)
    if status == 401:
        head, body = request_bytes(provider.request(url, token="wrong-token"))
    elif status == 404:
        head, body = request_bytes(provider.request(receiver.url("/no-such-endpoint")))
    else:
        head, body = request_bytes(provider.request(url))
        head = b"PUT" + head[head.index(b" ") :]
    with open_tls(receiver.port, harness.certs.ca) as conn:
        conn.sendall(head)  # the body follows once the answer is in, as on a slow link
        data, closed = read_responses(conn)
        assert statuses_in(data) == [status]
        announced = re.search(rb"(?im)^connection:\s*close\s*$", data) is not None
        if not announced:
            head, next_body = request_bytes(provider.request(url))
            try:
                conn.sendall(body + head + next_body)
                data, closed = read_responses(conn)
            except OSError:
                data, closed = b"", True
            assert statuses_in(data) == [200], (
                f"after a {status} without 'Connection: close' the server "
                f"{'closed the connection' if closed else 'did not answer'}: {data[:200]!r}"
            )
    stop_cleanly(receiver)


@pytest.mark.parametrize(("provider", "engine"), PROVIDERS_ON_ENGINES)
@pytest.mark.parametrize("how", ["fin", "reset"])
def test_a_client_gone_mid_body_leaves_nothing_stored_and_no_error(
    harness: Harness, provider: ProviderCase, engine: str, how: str
) -> None:
    receiver = start(harness, provider, engine)
    for _ in range(10):
        head, body = request_bytes(provider.request(receiver.url(provider.path)))
        conn = open_tls(receiver.port, harness.certs.ca)
        conn.sendall(head + body[: len(body) // 2])
        time.sleep(0.05)
        if how == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    # The same, through an ordinary client whose body generator fails half-way.
    request = provider.request(receiver.url(provider.path))

    def broken_body() -> Iterator[bytes]:
        yield request.body[:10]
        raise ConnectionAbortedError("sender crashed mid-body")

    with pytest.raises((httpx.HTTPError, ConnectionAbortedError)), harness.client() as client:
        client.request(
            request.method, request.url, headers=list(request.headers), content=broken_body()
        )
    others = serve_others(harness, receiver, provider)
    assert set(inbox_states(receiver.inbox)) == set(others)
    with open_tls(receiver.port, harness.certs.ca) as idle:
        closed, _ = closed_within(idle, 0.2)
    assert closed is None  # still accepting and keeping connections
    stop_cleanly(receiver)


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")  # + SETTINGS
H2C_UPGRADE = (
    b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\n"
    b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
)


@pytest.mark.parametrize("engine", ENGINES)
def test_no_connection_leaves_http_1_1_and_its_deadline(harness: Harness, engine: str) -> None:
    """ALPN offers only http/1.1, and no request may switch a connection to HTTP/2 either
    (hypercorn would, and its HTTP/2 reads are bounded one at a time, not per request): the
    HTTP/2 preface gets `400` and a closed connection, an `Upgrade: h2c` is ignored."""
    provider = PROVIDER_CASES[0]
    receiver = start(harness, provider, engine, ONLY_THE_REQUEST_TIMEOUT)
    with open_tls(receiver.port, harness.certs.ca) as conn:
        conn.sendall(H2_PREFACE)
        data, closed = read_responses(conn)
    assert statuses_in(data) == [400], data[:200]
    assert closed
    with open_tls(receiver.port, harness.certs.ca) as conn:
        conn.sendall(H2C_UPGRADE)
        data, closed = read_responses(conn)
        assert statuses_in(data) == [200], data[:200]
        assert data.startswith(b"HTTP/1.1 200")
        assert not closed
        # Still HTTP/1.1 with its deadline: a genuine event is stored, a stalled one cut off.
        request = provider.request(receiver.url(provider.path))
        head, body = request_bytes(request)
        conn.sendall(head + body)
        data, _ = read_responses(conn)
        assert statuses_in(data) == [200], data[:200]
        conn.sendall(head[: len(head) // 2])
        closed_at, received = closed_within(conn, LIMIT + SLACK)
    check_cut_off(closed_at, received, LIMIT, "a request after an h2c upgrade")
    stored = {provider.dedup_key(request): 2}
    assert settled_states(receiver.inbox, stored) == stored
    stop_cleanly(receiver)


@pytest.mark.parametrize("engine", ENGINES)
def test_bad_requests_cannot_flood_the_log(harness: Harness, engine: str) -> None:
    """uvicorn logs a warning for every malformed request; anyone who can reach the port
    could fill the disk with them. Each such message is logged at most 10 times in 10 s."""
    provider = PROVIDER_CASES[0]
    receiver = start(harness, provider, engine)
    for _ in range(40):
        with open_tls(receiver.port, harness.certs.ca) as conn:
            conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            data, _ = read_responses(conn, timeout=2.0)
        assert statuses_in(data) in ([400], []), data[:200]
    serve_others(harness, receiver, provider)
    stop_cleanly(receiver)
    lines = [line for line in receiver.log.splitlines() if "WARNING" in line]
    counts: dict[str, int] = {}
    for line in lines:
        message = line.split(": ", 1)[-1]
        counts[message] = counts.get(message, 0) + 1
    assert all(n <= 10 for n in counts.values()), counts

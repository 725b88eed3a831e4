"""Graceful shutdown under load: within its bound, with many requests in flight, losing nothing.

The bound: open connections get up to --shutdown-timeout to finish their requests, then
running handlers get up to --shutdown-timeout more (the dispatcher stops after the server),
so SIGTERM to exit takes at most twice the timeout, plus start-up-sized slack.
"""

from __future__ import annotations

import threading
from collections import Counter

import httpx
import pytest

from tests.conftest import Harness
from tests.support.faults import (
    assert_no_unhandled_errors,
    deliver,
    inbox_states,
    open_tls,
    provider_receiver,
    request_bytes,
    stop_within,
)
from tests.support.provider_cases import PROVIDERS_ON_ENGINES, ProviderCase

SHUTDOWN = 2.0
BOUND = 2 * SHUTDOWN + 3.0


@pytest.mark.parametrize(("provider", "engine"), PROVIDERS_ON_ENGINES)
def test_sigterm_with_many_requests_in_flight_is_bounded_and_loses_nothing(
    harness: Harness, provider: ProviderCase, engine: str
) -> None:
    # --public-healthz: the idle connections below each had a GET /healthz answered 200.
    receiver = provider_receiver(
        harness, provider,
        "--engine", engine, "--workers", "16", "--shutdown-timeout", str(SHUTDOWN),
        "--public-healthz",
        env={"RECORD_SLEEP": "0.02"},
    )  # fmt: skip
    url = receiver.url(provider.path)
    acknowledged: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with harness.client() as client:
            while not stop.is_set():
                request = provider.request(url)
                try:
                    response = deliver(client, request)
                except httpx.HTTPError:
                    return  # the server went away: what was acknowledged counts
                if response.status_code == 200:
                    acknowledged.append(provider.dedup_key(request))

    senders = [threading.Thread(target=load) for _ in range(8)]
    for thread in senders:
        thread.start()
    # Requests that never finish their body, and kept-alive connections gone quiet.
    stalled = []
    for _ in range(40):
        head, body = request_bytes(provider.request(url))
        conn = open_tls(receiver.port, harness.certs.ca)
        conn.sendall(head + body[:5])
        stalled.append(conn)
    idle = []
    for _ in range(40):
        conn = open_tls(receiver.port, harness.certs.ca)
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert conn.recv(4096).startswith(b"HTTP/1.1 200")
        idle.append(conn)
    try:
        harness.wait_for(lambda: len(acknowledged) >= 200, what="200 acknowledged events")
        code, took = stop_within(receiver, BOUND)
    finally:
        stop.set()
        for thread in senders:
            thread.join(10)
        for conn in stalled + idle:
            conn.close()
    assert took <= BOUND and code == 0, (
        f"SIGTERM to exit took {took:.1f}s (bound {BOUND:g}s), exit status {code}:\n"
        + receiver.log[-3000:]
    )
    assert set(inbox_states(receiver.inbox)) >= set(acknowledged)

    receiver.start()
    harness.wait_for(
        lambda: set(harness.handled_keys()) >= set(acknowledged), timeout=60, what="all handled"
    )
    assert receiver.stop() == 0
    repeated = {k: n for k, n in Counter(harness.handled_keys()).items() if n > 1}
    assert not repeated, f"handled twice after a graceful stop: {repeated}"
    assert_no_unhandled_errors(receiver.log)


@pytest.mark.parametrize(("provider", "engine"), PROVIDERS_ON_ENGINES)
def test_sigterm_is_bounded_even_when_a_handler_ignores_cancellation(
    harness: Harness, provider: ProviderCase, engine: str
) -> None:
    receiver = provider_receiver(
        harness, provider,
        "--engine", engine, "--shutdown-timeout", "1", "--handler-timeout", "30",
        env={"RECORD_STUBBORN_MARK": "Stubborn"},
        handler="tests.support.stubborn:Stubborn",  # events marked "Stubborn" swallow cancels
    )  # fmt: skip
    assert receiver.proc is not None
    stubborn = provider.marked(receiver.url(provider.path), "Stubborn")
    fine = provider.request(receiver.url(provider.path))
    with harness.client() as client:
        assert deliver(client, stubborn).status_code == 200
        assert deliver(client, fine).status_code == 200
    fine_key, stubborn_key = provider.dedup_key(fine), provider.dedup_key(stubborn)
    harness.wait_for(lambda: fine_key in harness.handled_keys(), what="the other event handled")
    bound = 2 * 1 + 3.0
    code, took = stop_within(receiver, bound)
    assert took <= bound and code == 0, (
        f"SIGTERM to exit took {took:.1f}s (bound {bound:g}s), exit status {code}, with a "
        f"handler that ignores cancellation:\n{receiver.log[-3000:]}"
    )
    # The stubborn event was not finished: it is handed out again at the next start.
    assert inbox_states(receiver.inbox)[stubborn_key] in (0, 1)

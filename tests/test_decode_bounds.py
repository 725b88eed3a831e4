"""One authenticated request cannot stall or exhaust the receiver through decoding.

Every provider on both engines, over TLS, with the default 1 MiB body limit: a body built to
grow when flattened into fields (a long key over a long array) gets 413 at once; bodies just
under the limit built to be slow to parse or walk are answered while genuine webhooks sent
meanwhile are answered 200 promptly, and the server's peak memory stays bounded; JSON nested
past the limit gets 400 with the reason, never a 500 or a traceback.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator

import pytest

from receiver.certs import DevCertificates
from receiver.sources.fields import MAX_DEPTH, decoded_limit
from tests.support.faults import assert_no_unhandled_errors
from tests.support.provider_cases import ProviderCase
from tests.support.served import PROVIDERS_ON_ENGINES, Served, serving

MiB = 1024 * 1024

GROWS = b'{"' + b"k" * 65536 + b'":[' + b"0," * 33_000 + b"0]}"
"""132 KB that flattening once made 2 GB of fields: the 64 KB key named every element."""


def _filling(unit: bytes, last: bytes) -> bytes:
    """A JSON object whose one array of `unit`s makes the body just under 1 MiB."""
    return b'{"a":[' + unit * ((MiB - 16 - len(last)) // len(unit)) + last + b"]}"


SLOW = {
    "empty arrays": _filling(b"[],", b"[]"),
    "small objects": _filling(b'{"b":{}},', b"{}"),
    "nested chains": _filling(b"[" * 62 + b"0" + b"]" * 62 + b",", b"0"),
    "numbers": _filling(b"0,", b"0"),
    "distinct keys": b"{" + b",".join(b'"k%d":0' % i for i in range(90_000)) + b"}",
    "grows": GROWS,
}
"""Bodies under the limit that cost the most to parse, walk or flatten (see bench-like figures
in receiver/endpoint.py's docstring)."""

GENUINE_LATENCY_LIMIT = 1.0
"""Seconds a genuine webhook may take while the attack runs (measured: tens of ms; decoding
on the event loop made it seconds, and the growing body minutes)."""

ATTACK_MEMORY_LIMIT = 128 * MiB
"""How far the server's peak memory may grow while refusing or storing the attack bodies:
parsing a 1 MiB body takes some tens of MB at worst; the growing body took 2 GB, then 4."""


@pytest.fixture(scope="module", params=PROVIDERS_ON_ENGINES)
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    tls_ca: DevCertificates,
) -> Iterator[Served]:
    """A receiver serving one provider on one engine with the default 1 MiB limit."""
    with serving(request.param, tmp_path_factory, tls_ca) as served:
        yield served
        assert "RecursionError" not in served.receiver.log


def flattens(provider: ProviderCase) -> bool:
    """Whether the provider stores fields flattened from the body (else the body as sent)."""
    return provider.name.startswith("engage_")


def test_a_body_built_to_grow_when_flattened_gets_413_at_once(served: Served) -> None:
    baseline = served.reset_peak_memory()
    before = served.count()
    with served.harness.client() as client:
        started = time.monotonic()
        response = served.post(served.genuine(), GROWS, client=client)
        took = time.monotonic() - started
        stored = served.count() - before
        after = served.post(served.genuine(), served.genuine().body, client=client)

    growth = served.peak_memory() - baseline
    if flattens(served.provider):
        assert response.status_code == 413, response.text
        limit = decoded_limit(len(GROWS))  # 8 times the body
        assert response.text == f"request larger than {limit:,} bytes once decoded into fields\n"
        assert stored == 0
    else:  # stored as sent, which is no larger than the body
        assert response.status_code == 200, response.text
    assert took < GENUINE_LATENCY_LIMIT, f"answered in {took:.2f} s"
    assert growth < 32 * MiB, f"peak memory grew by {growth:,} bytes"
    assert after.status_code == 200, after.text


def test_bodies_slow_to_decode_do_not_hold_up_genuine_webhooks(served: Served) -> None:
    baseline = served.reset_peak_memory()
    stop = threading.Event()
    answers: list[tuple[str, int, str]] = []

    def attack(names: list[str]) -> None:
        with served.harness.client() as client:
            while not stop.is_set():
                for name in names:
                    response = served.post(served.genuine(), SLOW[name], client=client)
                    answers.append((name, response.status_code, response.text))

    names = list(SLOW)
    attackers = [
        threading.Thread(target=attack, args=(names[n::2],), daemon=True) for n in range(2)
    ]
    for thread in attackers:
        thread.start()
    latencies = []
    try:
        time.sleep(0.3)
        with served.harness.client() as client:
            for _ in range(25):
                started = time.monotonic()
                response = served.post(served.genuine(), served.genuine().body, client=client)
                latencies.append(time.monotonic() - started)
                assert response.status_code == 200, response.text
                time.sleep(0.05)
    finally:
        stop.set()
        for thread in attackers:
            thread.join(60)

    growth = served.peak_memory() - baseline
    assert {name for name, _, _ in answers} == set(SLOW), answers
    for name, status, text in answers:
        assert status in (200, 400, 413), (name, status, text)
        if name in ("empty arrays", "small objects", "nested chains"):
            assert (status, text) == (413, "body has more than 10,000 objects and arrays\n")
    worst = max(latencies)
    assert worst < GENUINE_LATENCY_LIMIT, (
        f"genuine webhooks took up to {worst:.3f} s (median "
        f"{statistics.median(latencies):.3f} s) while {len(answers)} slow bodies were sent"
    )
    assert growth < ATTACK_MEMORY_LIMIT, f"peak memory grew by {growth:,} bytes"
    assert_no_unhandled_errors(served.receiver.log)


def nested(body: bytes, depth: int) -> bytes:
    """`body` (a JSON object) with a property that makes it nest `depth` levels deep."""
    assert body.startswith(b"{")
    arrays = depth - 1
    return b'{"deep":' + b"[" * arrays + b"]" * arrays + b"," + body[1:]


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 5000])
def test_json_nested_past_the_limit_gets_400_with_the_reason(served: Served, depth: int) -> None:
    before = served.count()
    with served.harness.client() as client:
        response = served.post(
            served.genuine(), nested(served.genuine().body, depth), client=client
        )
    assert (response.status_code, response.text) == (
        400,
        f"body is nested deeper than {MAX_DEPTH} levels\n",
    )
    assert served.count() == before


def test_json_nested_as_deep_as_the_limit_is_stored(served: Served) -> None:
    with served.harness.client() as client:
        response = served.post(
            served.genuine(), nested(served.genuine().body, MAX_DEPTH), client=client
        )
    assert response.status_code == 200, response.text

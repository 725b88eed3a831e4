"""Bodies as real senders send them: a byte order mark before JSON, gzip or deflate.

Every provider on both engines, over TLS: a body with a UTF-8 byte order mark is the same
event as without; a compressed body is stored decoded; a compression bomb gets 413 without
the server's memory growing; a coding the receiver does not decode gets 415, and a body that
is not what its coding says gets 400. Nothing undecoded is ever stored.
"""

from __future__ import annotations

import contextlib
import gzip
import sqlite3
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from receiver.certs import DevCertificates
from receiver.sender import WireRequest, basic_authorization
from receiver.testing import ReceiverProcess
from tests.conftest import Harness
from tests.support.e2e import start_configured
from tests.support.faults import provider_receiver, stop_cleanly
from tests.support.provider_cases import ENGINES, PROVIDER_CASES, ProviderCase

BOM = b"\xef\xbb\xbf"
BOMB_SIZE = 10_000_000
"""Bytes of zeros in the bomb: about 10 KB of gzip, ten times the default limit."""
PEAK_GROWTH_LIMIT = 6 * 1024 * 1024
"""How far the server's peak memory may grow while refusing the bomb: the 1 MiB limit, once
as decoded output and once joined, plus slack; decoding the whole bomb would take 10 MB."""


def raw_deflate(data: bytes) -> bytes:
    """`data` as raw deflate, without the zlib wrapper (some senders write it so)."""
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


ENCODERS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "gzip": ("gzip", gzip.compress),
    "x-gzip": ("x-gzip", gzip.compress),
    "gzip-two-members": ("gzip", lambda data: gzip.compress(data[:9]) + gzip.compress(data[9:])),
    "deflate": ("deflate", zlib.compress),
    "deflate-raw": ("deflate", raw_deflate),
    "identity": ("identity", lambda data: data),
    "identity-uppercase-gzip": ("identity, GZIP", gzip.compress),
}


@dataclass
class Served:
    """One provider's endpoint on a running receiver, and what it stored."""

    harness: Harness
    provider: ProviderCase
    receiver: ReceiverProcess

    def genuine(self) -> WireRequest:
        """A fresh genuine request to the provider's endpoint."""
        return self.provider.request(self.receiver.url(self.provider.path))

    def post(self, request: WireRequest, body: bytes, coding: str | None = None) -> httpx.Response:
        """`request` with `body` in place of its own, under `Content-Encoding: coding`."""
        headers = list(request.headers)
        if coding is not None:
            headers.append(("Content-Encoding", coding))
        with self.harness.client() as client:
            return client.request(request.method, request.url, headers=headers, content=body)

    def expected_payload(self, request: WireRequest) -> bytes:
        """What the receiver stores for `request` sent as built (no BOM, no coding)."""
        url = httpx.URL(request.url)
        headers = {name.lower().encode(): value.encode() for name, value in request.headers}
        source = self.provider.source(self.provider.path)
        return source.decode(request.method, headers, url.query, request.body).payload

    def stored(self, key: str) -> list[bytes]:
        """The payloads stored under dedup key `key` (one, or none)."""
        with contextlib.closing(sqlite3.connect(self.receiver.inbox, timeout=10)) as conn:
            rows = conn.execute("SELECT payload FROM events WHERE dedup_key = ?", (key,))
            return [bytes(row[0]) for row in rows]

    def count(self) -> int:
        """How many events the inbox holds."""
        with contextlib.closing(sqlite3.connect(self.receiver.inbox, timeout=10)) as conn:
            (count,) = conn.execute("SELECT count(*) FROM events").fetchone()
            return int(count)

    def peak_memory(self) -> int:
        """The server's peak resident memory (VmHWM) in bytes since `reset_peak_memory`."""
        assert self.receiver.proc is not None
        status = Path(f"/proc/{self.receiver.proc.pid}/status").read_text()
        [line] = [line for line in status.splitlines() if line.startswith("VmHWM:")]
        return int(line.split()[1]) * 1024

    def reset_peak_memory(self) -> int:
        """Make the peak the current resident memory (Linux ≥ 4.0); returns it."""
        assert self.receiver.proc is not None
        Path(f"/proc/{self.receiver.proc.pid}/clear_refs").write_text("5")
        return self.peak_memory()


@pytest.fixture(
    scope="module",
    params=[
        pytest.param((case, engine), id=f"{case.name}-{engine}")
        for case in PROVIDER_CASES
        for engine in ENGINES
    ],
)
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    tls_ca: DevCertificates,
) -> Iterator[Served]:
    """A receiver serving one provider on one engine with the default 1 MiB limit."""
    provider, engine = request.param
    harness = Harness(tmp_path_factory.mktemp(f"{provider.name}-{engine}"), tls_ca)
    try:
        receiver = provider_receiver(harness, provider, "--engine", engine)
        yield Served(harness, provider, receiver)
        stop_cleanly(receiver)
    finally:
        harness.close()


def test_a_byte_order_mark_is_ignored_and_the_event_is_the_same(served: Served) -> None:
    request = served.genuine()
    key = served.provider.dedup_key(request)

    response = served.post(request, BOM + request.body)
    assert response.status_code == 200, response.text
    assert served.stored(key) == [served.expected_payload(request)]

    again = served.post(request, request.body)  # the same event without the mark
    assert again.status_code == 200, again.text
    assert served.stored(key) == [served.expected_payload(request)]


@pytest.mark.parametrize("encoding", list(ENCODERS))
def test_a_compressed_body_is_stored_decoded(served: Served, encoding: str) -> None:
    coding, encode = ENCODERS[encoding]
    request = served.genuine()
    key = served.provider.dedup_key(request)

    response = served.post(request, encode(request.body), coding)
    assert response.status_code == 200, response.text
    assert served.stored(key) == [served.expected_payload(request)]
    assert served.post(request, request.body).status_code == 200  # a duplicate of it
    assert served.stored(key) == [served.expected_payload(request)]


def test_a_byte_order_mark_inside_gzip_is_ignored_too(served: Served) -> None:
    request = served.genuine()
    response = served.post(request, gzip.compress(BOM + request.body), "gzip")
    assert response.status_code == 200, response.text
    assert served.stored(served.provider.dedup_key(request)) == [served.expected_payload(request)]


def test_a_compression_bomb_gets_413_without_the_memory_to_decode_it(served: Served) -> None:
    bomb = gzip.compress(b"\0" * BOMB_SIZE, compresslevel=9)
    assert len(bomb) < 20_000
    before = served.count()
    baseline = served.reset_peak_memory()

    response = served.post(served.genuine(), bomb, "gzip")

    growth = served.peak_memory() - baseline
    assert response.status_code == 413
    assert response.text == "body larger than 1,048,576 bytes once decoded\n"
    assert response.headers["connection"] == "close"
    assert growth < PEAK_GROWTH_LIMIT, f"peak memory grew by {growth:,} bytes"
    assert served.count() == before
    assert served.post(served.genuine(), served.genuine().body).status_code == 200


@pytest.mark.parametrize(
    ("coding", "reason"),
    [
        ("br", "Content-Encoding br is not supported (gzip and deflate are)"),
        ("zstd", "Content-Encoding zstd is not supported (gzip and deflate are)"),
        ("compress", "Content-Encoding compress is not supported (gzip and deflate are)"),
        ("gzip, gzip", "Content-Encoding gzip, gzip: more than one coding is not supported"),
        ("deflate, br", "Content-Encoding deflate, br: more than one coding is not supported"),
    ],
)
def test_a_coding_the_receiver_does_not_decode_gets_415(
    served: Served, coding: str, reason: str
) -> None:
    request = served.genuine()
    before = served.count()
    response = served.post(request, gzip.compress(request.body), coding)
    assert (response.status_code, response.text) == (415, reason + "\n")
    assert served.count() == before


@pytest.mark.parametrize(
    ("coding", "body", "reason"),
    [
        ("gzip", lambda body: body, "body is not valid gzip"),
        ("gzip", lambda body: gzip.compress(body)[:-12], "gzip body ends before its stream does"),
        ("gzip", lambda body: gzip.compress(body) + b"trailing", "body is not valid gzip"),
        ("deflate", lambda body: b"\x00" + body, "body is not valid deflate"),
        ("deflate", lambda body: zlib.compress(body) + b"x", "data after the end of the deflate"),
    ],
    ids=["plain", "truncated", "trailing-garbage", "deflate-garbage", "deflate-trailing"],
)
def test_a_body_that_is_not_what_its_coding_says_gets_400(
    served: Served, coding: str, body: Callable[[bytes], bytes], reason: str
) -> None:
    request = served.genuine()
    before = served.count()
    response = served.post(request, body(request.body), coding)
    assert response.status_code == 400
    assert response.text.startswith(reason), response.text
    assert served.count() == before


WEB_SERVICE_TEXT = """
[[endpoints]]
name = "engage-text"
kind = "engage_web_services"
path = "/engage/text"
body = "text"
basic_users_env = ["TEXT_WS_USER"]
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_a_text_body_is_stored_decoded_not_as_compressed_bytes(
    harness: Harness, engine: str
) -> None:
    """A `text` web service stores any bytes as text: it would have taken gzip for text."""
    user = "ws:Tx7-text-pw"
    served = start_configured(harness, WEB_SERVICE_TEXT, {"TEXT_WS_USER": user}, "--engine", engine)
    text = "agent 1001 ended call 42 " * 20
    headers = {"Authorization": basic_authorization(user), "Content-Encoding": "gzip"}
    with harness.client() as client:
        response = client.post(
            served.url("/engage/text"), content=gzip.compress(text.encode()), headers=headers
        )
    assert response.status_code == 200, response.text
    with contextlib.closing(sqlite3.connect(served.process.inbox, timeout=10)) as conn:
        [(payload,)] = conn.execute("SELECT payload FROM events").fetchall()
    assert orjson.loads(payload)["fields"] == {"text": text}
    stop_cleanly(served.process)

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

import orjson
import pytest

from receiver.certs import DevCertificates
from receiver.sender import basic_authorization
from tests.conftest import Harness
from tests.support.e2e import start_configured
from tests.support.faults import stop_cleanly
from tests.support.provider_cases import ENGINES
from tests.support.served import PROVIDERS_ON_ENGINES, Served, serving

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


@pytest.fixture(scope="module", params=PROVIDERS_ON_ENGINES)
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    tls_ca: DevCertificates,
) -> Iterator[Served]:
    """A receiver serving one provider on one engine with the default 1 MiB limit."""
    with serving(request.param, tmp_path_factory, tls_ca) as served:
        yield served


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

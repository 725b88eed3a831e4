"""Fuzzing every source's `authenticate` and `decode`: pure functions that must only ever
accept, or refuse with their one error type, whatever arrives.

hypothesis drives random and near-valid requests (a bounded number of examples); atheris,
coverage-guided, runs in a child process for a bounded number of runs.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receiver.exceptions import DecodeError, VerificationError
from receiver.inbox.models import NewEvent
from receiver.sources import Source
from tests.conftest import ROOT
from tests.support.provider_cases import PROVIDERS, ProviderCase

FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)


def asgi_headers(request_headers: tuple[tuple[str, str], ...]) -> dict[bytes, bytes]:
    """Headers as the endpoint hands them to a source: lower-case names, last one wins."""
    return {
        name.lower().encode("latin-1"): value.encode("latin-1") for name, value in request_headers
    }


def decode_or_refuse(
    source: Source, method: str, headers: dict[bytes, bytes], query: bytes, body: bytes
) -> NewEvent | None:
    """`decode`, allowed to fail only with DecodeError; a result must be storable as is."""
    try:
        event = source.decode(method, headers, query, body)
    except DecodeError:
        return None
    assert isinstance(event, NewEvent)
    assert isinstance(event.dedup_key, str) and event.dedup_key
    assert isinstance(event.event_type, str)
    assert event.order_key is None or (isinstance(event.order_key, str) and event.order_key)
    assert isinstance(event.payload, bytes)
    for text in (event.dedup_key, event.event_type, event.order_key or ""):
        text.encode("utf-8")  # SQLite TEXT: a lone surrogate would fail the insert (a 503)
    # Pure: the same request decodes to the same event.
    assert source.decode(method, headers, query, body) == event
    return event


@pytest.fixture
def source(provider: ProviderCase) -> Source:
    """The source the receiver builds for `provider`'s endpoint."""
    return provider.source()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_genuine_requests_are_accepted(provider: ProviderCase, source: Source) -> None:
    for _ in range(20):
        request = provider.request("https://localhost" + provider.path)
        headers = asgi_headers(request.headers)
        source.authenticate(headers, b"")
        query = httpx.URL(request.url).query
        event = decode_or_refuse(source, request.method, headers, query, request.body)
        assert event is not None, request


@pytest.mark.parametrize("provider", PROVIDERS)
def test_only_an_accepted_secret_authenticates(provider: ProviderCase, source: Source) -> None:
    genuine = asgi_headers(provider.request("https://localhost/").headers)
    credential = sorted(provider.credential_headers())

    @FUZZ
    @given(
        token=st.binary(max_size=300) | st.text(max_size=60).map(str.encode),
        name=st.sampled_from(credential),
        around=st.sampled_from(["alone", "prefix", "suffix", "spaces"]),
    )
    def check(token: bytes, name: str, around: str) -> None:
        secret = provider.credential(provider.secret).encode()
        presented = {
            "alone": token,
            "prefix": secret + token,
            "suffix": token + secret,
            "spaces": b" " + secret + b" ",
        }[around]
        headers = {**genuine, name.encode(): presented}
        try:
            source.authenticate(headers, b"")
        except VerificationError:
            return
        # Surrounding whitespace is not part of a header value (HTTP servers strip it too).
        accepted = {provider.credential(s).encode() for s in provider.secrets}
        assert presented.strip(b" \t") in accepted, f"{presented!r} in {name} was accepted"

    check()
    without = {k: v for k, v in genuine.items() if k.decode() not in credential}
    with pytest.raises(VerificationError):
        source.authenticate(without, b"")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_random_bytes_headers_and_queries_decode_or_are_refused(
    provider: ProviderCase, source: Source
) -> None:
    genuine = provider.request("https://localhost/")
    names = [name.lower().encode() for name, _ in genuine.headers]

    @FUZZ
    @given(
        body=st.binary(max_size=2000),
        query=st.binary(max_size=200),
        headers=st.dictionaries(
            st.sampled_from(names) | st.binary(min_size=1, max_size=20), st.binary(max_size=200)
        ),
        method=st.sampled_from(sorted(source.methods)),
    )
    def check(body: bytes, query: bytes, headers: dict[bytes, bytes], method: str) -> None:
        with contextlib.suppress(VerificationError):
            source.authenticate(headers, query)
        decode_or_refuse(source, method, headers, query, body)

    check()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_json_of_any_shape_decodes_or_is_refused(provider: ProviderCase, source: Source) -> None:
    genuine = provider.request("https://localhost/")
    headers = asgi_headers(genuine.headers)
    fields = list(provider.event())

    @FUZZ
    @given(
        shape=st.sampled_from(["any", "object", "fields"]),
        value=json_values,
        changes=st.dictionaries(st.sampled_from(fields) | st.text(max_size=10), json_values),
        seed=st.integers(0, 2**48),
    )
    def check(shape: str, value: Any, changes: dict[str, Any], seed: int) -> None:
        if shape == "any":
            document = value
        elif shape == "object":
            document = {"value": value, **changes}
        else:  # a genuine event with some fields replaced by values of any type
            document = {**provider.event(seed=seed), **changes}
        try:
            body = orjson.dumps(document)
        except (TypeError, orjson.JSONEncodeError):
            return  # an integer beyond 64 bits: orjson will not write it
        decode_or_refuse(source, genuine.method, headers, b"", body)

    check()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_near_valid_bodies_decode_or_are_refused(provider: ProviderCase, source: Source) -> None:
    genuine = provider.request("https://localhost/")
    headers = asgi_headers(genuine.headers)

    @FUZZ
    @given(data=st.data(), seed=st.integers(0, 2**48))
    def check(data: st.DataObject, seed: int) -> None:
        body = bytearray(provider.request("https://localhost/", seed=seed).body)
        for _ in range(data.draw(st.integers(1, 4), label="mutations")):
            at = data.draw(st.integers(0, len(body)), label="at")
            how = data.draw(st.sampled_from(["cut", "flip", "insert", "delete", "repeat"]))
            if how == "cut":
                del body[at:]
            elif how == "flip" and at < len(body):
                body[at] ^= data.draw(st.integers(1, 255))
            elif how == "insert":
                body[at:at] = data.draw(
                    st.sampled_from(
                        [b"\x00", b"\xff", b"\\ud800", b'"', b"{", b"]", b",", b"1e999"]
                    )
                    | st.binary(min_size=1, max_size=8)
                )
            elif how == "delete":
                del body[at : at + data.draw(st.integers(1, 10))]
            else:
                body[at:at] = body[at : at + data.draw(st.integers(1, 40))]
        decode_or_refuse(source, genuine.method, headers, b"", bytes(body))

    check()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_atheris_finds_no_crash_in_authenticate_and_decode(
    provider: ProviderCase, tmp_path: Path
) -> None:
    pytest.importorskip("atheris", reason="atheris installs from PyPI only for some Pythons")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for n in range(5):
        body = provider.request("https://localhost" + provider.path).body
        (corpus / f"genuine-{n}").write_bytes(b"\0\0\0" + body)  # see fuzz_decode's layout
    # Coverage's subprocess hook would trace the fuzzer's child; atheris instruments itself.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE")}
    result = subprocess.run(
        [
            sys.executable, "-m", "tests.support.fuzz_decode",
            "-runs=2000000", "-max_total_time=3", "-max_len=4096",
            f"-artifact_prefix={tmp_path}/", str(corpus),
        ],
        cwd=ROOT,
        env={**env, "FUZZ_PROVIDER": provider.name, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Done" in result.stderr, result.stderr[-4000:]
    assert not list(tmp_path.glob("crash-*"))

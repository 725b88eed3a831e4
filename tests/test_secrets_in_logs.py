"""Secrets never reach the log; phone numbers reach it only when asked for.

The receiver runs at debug level with a handler that logs every payload in full and fails on
purpose; it gets right tokens (current and previous secret), many kinds of wrong ones, bad
bodies, wrong methods and paths, broken HTTP, handler failures and dead letters. Then the whole
log is searched for every secret and every wrong token, and for the phone numbers sent.
"""

from __future__ import annotations

import base64
import urllib.parse
from typing import Any

import pytest

from receiver.sender import WireRequest
from receiver.testing import ReceiverProcess
from tests.conftest import Harness
from tests.support.faults import (
    deliver,
    open_tls,
    provider_receiver,
    read_responses,
    request_bytes,
)
from tests.support.provider_cases import PROVIDERS, ProviderCase

ENGINES = ["uvicorn", "hypercorn"]
PHONE_NUMBERS = ["+358501231234", "+358 40 765 4321", "0451237788", "+1-202-555-0187"]


def forms(value: str) -> set[str]:
    """`value` as it could be written to a log: raw, repr-escaped, URL-encoded, base64."""
    return {
        value,
        repr(value)[1:-1],
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value),
        base64.b64encode(value.encode()).decode(),
    }


def wrong_tokens(provider: ProviderCase) -> list[str]:
    """Wrong credentials a sender might present, some close to the real secret."""
    secret = provider.secret
    return [
        "wrong-7c1d9e4b-token",
        secret[:-1],
        secret + "-old",
        secret.upper(),
        "Bearer " + secret,
        "Basic " + base64.b64encode(f"user:{secret}".encode()).decode(),
        "ZmFrZS10b2tlbi0xMjM0NQ",
    ]


def exercise(harness: Harness, receiver: ReceiverProcess, provider: ProviderCase) -> None:
    """Everything that makes the receiver log: good, forged and broken requests, failures."""
    url = receiver.url(provider.path)
    requests: list[tuple[WireRequest, set[int]]] = []
    markers = ["fine", "FailMe", "FailHook", "fine"]
    for marker, number in zip(markers, PHONE_NUMBERS, strict=True):
        fields: dict[str, Any] = {
            provider.note_field: f"note {marker}",
            provider.phone_field: number,
        }
        requests.append((provider.request(url, **fields), {200}))
    for secret in provider.secrets[1:]:
        requests.append((provider.request(url, token=secret), {200}))
    for token in wrong_tokens(provider):
        requests.append((provider.request(url, token=token), {401}))
    requests.append((provider.request(url, token=None), {401}))
    for request, expected in requests:
        # A connection each: reusing one after an early 401 is another test's subject.
        with harness.client() as client:
            response = deliver(client, request)
        assert response.status_code in expected, (request, response)
    with harness.client() as client:
        genuine = provider.request(url)
        headers = list(genuine.headers)
        for method, target, body in [
            (genuine.method, url, b"{not json"),
            (genuine.method, url, b"[1, 2]"),
            (genuine.method, url, b"x" * 5000),
            ("DELETE", url, b""),
            (genuine.method, receiver.url("/nowhere"), genuine.body),
        ]:
            response = client.request(method, target, headers=headers, content=body)
            assert 400 <= response.status_code < 500, (method, target, response)
    # Broken HTTP that still carries the credential: an invalid header, a bad length.
    head, body = request_bytes(genuine)
    for broken in [
        head[:-2] + b"Bad Header: x\r\n\r\n" + body,
        head.replace(b"Content-Length: ", b"Content-Length: -") + body,
        head[:-2] + b"Transfer-Encoding: gzip\r\n\r\n" + body,
    ]:
        with open_tls(receiver.port, harness.certs.ca) as conn:
            conn.sendall(broken)
            read_responses(conn, timeout=2.0)
    harness.wait_for(lambda: receiver.log.count("is a dead letter") >= 2, what="dead letters")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("phone_numbers", ["redacted", "shown"])
def test_no_secret_or_token_in_the_log_and_phone_numbers_only_when_asked(
    harness: Harness, provider: ProviderCase, engine: str, phone_numbers: str
) -> None:
    options = ["--engine", engine, "--log-level", "debug", "--max-attempts", "2",
               "--max-body", "4096"]  # fmt: skip
    if phone_numbers == "shown":
        options.append("--log-phone-numbers")
    receiver = provider_receiver(harness, provider, *options, handler="tests.support.chatty:Chatty")
    exercise(harness, receiver, provider)
    assert receiver.stop() == 0
    log = receiver.log
    assert "wrong" in log.lower() or "missing" in log.lower()  # the refusals were logged
    for secret in provider.secrets:
        leaked = sorted(form for form in forms(secret) if form in log)
        assert not leaked, f"the secret appears in the log as {leaked}"
    for token in wrong_tokens(provider):
        leaked = sorted(form for form in forms(token) if form in log)
        assert not leaked, f"a wrong token appears in the log as {leaked}"

    assert "CRM refused" in log and "hook broke" in log  # the handler logged the payloads
    shown = [number for number in PHONE_NUMBERS if number in log]
    if phone_numbers == "redacted":
        assert not shown, f"phone numbers in the log by default: {shown}"
        assert "**********34" in log  # redacted, not dropped: the last two digits stay
    else:
        assert shown == PHONE_NUMBERS, f"--log-phone-numbers, yet only {shown} in the log"

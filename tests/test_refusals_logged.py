"""Refused requests are visible: in the receiver's log, and in what `receiver send` prints.

Each refusal is one warning line naming the endpoint (or the path, for a 404), the client's
address, the status and the reason; never a secret, and with what the client chose (a path)
escaped so it cannot forge lines.
"""

from __future__ import annotations

import gzip

import pytest

from receiver.logs import printable
from tests.conftest import Harness, run_cli
from tests.support.faults import provider_receiver, stop_cleanly
from tests.support.log_lines import log_messages
from tests.support.provider_cases import ENGAGE_WEB_SERVICES, ENGINES, ENREACH
from tests.test_secrets_in_logs import forms

CLIENT = "127.0.0.1"


def refusals(log: str, status: int) -> list[str]:
    """The messages of the refusals answered `status` (whichever the log format)."""
    return [
        line
        for line in log_messages(log)
        if f"refused a request from {CLIENT} with {status}:" in line
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_every_refusal_is_logged_with_endpoint_client_status_and_reason(
    harness: Harness, engine: str
) -> None:
    provider = ENREACH
    receiver = provider_receiver(harness, provider, "--engine", engine, "--max-body", "4096")
    url = receiver.url(provider.path)
    genuine = provider.request(url)
    headers = list(genuine.headers)
    cases = [
        ("POST", url, headers, b"{not json", 400, "enreach", "body is not valid JSON: "),
        ("POST", url, [*headers, ("Content-Encoding", "gzip")], b"{}", 400, "enreach",
         "body is not valid gzip: "),
        ("POST", receiver.url("/nowhere"), headers, genuine.body, 404, "/nowhere",
         "no endpoint at this path"),
        ("DELETE", url, headers, b"", 405, "enreach", "method DELETE not allowed"),
        ("POST", url, headers, b"x" * 5000, 413, "enreach", "body larger than 4,096 bytes"),
        ("POST", url, [*headers, ("Content-Encoding", "gzip")],
         gzip.compress(b" " * 5000), 413, "enreach", "body larger than 4,096 bytes once decoded"),
        ("POST", url, [*headers, ("Content-Encoding", "br")], genuine.body, 415, "enreach",
         "Content-Encoding br is not supported"),
    ]  # fmt: skip
    with harness.client() as client:
        for method, target, sent_headers, body, status, _, _ in cases:
            response = client.request(method, target, headers=sent_headers, content=body)
            assert response.status_code == status, (method, target, response.text)
        # A path that tries to start a log line of its own.
        forged = client.post(
            receiver.url("/x%0A2024-01-01 WARNING receiver.endpoint: all good%1B[2J"),
            headers=headers,
            content=genuine.body,
        )
        assert forged.status_code == 404
    stop_cleanly(receiver)
    log = receiver.log

    for _, _, _, _, status, where, reason in cases:
        lines = refusals(log, status)
        expected = f"{where}: refused a request from {CLIENT} with {status}: {reason}"
        assert any(expected in line for line in lines), (expected, lines)
    assert "/x\\n2024-01-01 WARNING receiver.endpoint: all good\\x1b[2J" in "\n".join(
        log_messages(log)
    )
    assert not any(line.startswith("2024-01-01") for line in log.splitlines())
    assert "\x1b" not in log
    for secret in provider.secrets:
        leaked = sorted(form for form in forms(secret) if form in log)
        assert not leaked, f"the secret appears in the log as {leaked}"


def test_refusals_are_rate_limited_per_status(harness: Harness) -> None:
    provider = ENREACH
    receiver = provider_receiver(harness, provider)
    url = receiver.url(provider.path)
    headers = list(provider.request(url).headers)
    with harness.client() as client:
        for _ in range(25):
            assert client.post(url, headers=headers, content=b"[]").status_code == 400
        assert client.get(url, headers=headers).status_code == 405
    stop_cleanly(receiver)
    assert len(refusals(receiver.log, 400)) == 10
    assert len(refusals(receiver.log, 405)) == 1  # not hidden by the flood of 400s


def test_send_prints_the_reason_of_a_refusal(harness: Harness) -> None:
    """A web service configured for JSON bodies gets a form body: 400, and the sender says why."""
    provider = ENGAGE_WEB_SERVICES
    receiver = provider_receiver(harness, provider)
    result = run_cli(
        "send", receiver.url(provider.path), "CallDetails", "--provider", "engage_web_services",
        "--basic", "--body", "form", "--cacert", str(harness.certs.ca), "--retries", "1",
        "--retry-delay", "0", cwd=harness.tmp_path,
        env={"RECEIVER_ENGAGE_WEB_SERVICES_SECRET": provider.secret},
    )  # fmt: skip
    assert result.returncode == 1, result.stdout
    reason = "HTTP 400: body is not valid JSON: unexpected character"
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"attempt 1: {reason}"), result.stderr
    assert lines[1].startswith(f"attempt 2: {reason}"), result.stderr
    assert lines[-1].startswith("receiver send: error: CallDetails "), result.stderr
    assert f"discarded after 2 attempts: {reason}" in lines[-1], result.stderr
    stop_cleanly(receiver)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("body is not valid JSON", "body is not valid JSON"),
        ("two\nlines\r\tand \x1b[31mcolour\u202e", "two\\nlines\\r\\tand \\x1b[31mcolour\\u202e"),
        ("é" * 250, "é" * 200 + "..."),
    ],
    ids=["plain", "control-characters", "long"],
)
def test_client_text_is_shown_on_one_bounded_line(text: str, shown: str) -> None:
    assert printable(text) == shown

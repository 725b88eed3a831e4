"""Whitespace around a credential: one rule, on both engines and for every secret's source.

Spaces and tabs around a header's value are not part of it (RFC 9110 §5.5): a credential sent
with them is accepted by both engines alike (h11 strips them, httptools kept the trailing
ones). Secrets are trimmed the same way whether they come from a variable or a file, a file
may start with a byte order mark, and a secret that is empty or only whitespace is refused at
start with one line naming where it came from.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from receiver.sender import WireRequest
from tests.conftest import SECRET, Harness, enreach_event, post_event
from tests.support.faults import open_tls, provider_receiver, read_responses, request_bytes
from tests.support.provider_cases import ENGINES, PROVIDER_CASES, ProviderCase
from tests.support.startup import assert_refused, serve


def with_credential(request: WireRequest, provider: ProviderCase, form: str) -> WireRequest:
    """`request` with its credential header's value put in `form` (at `{value}`)."""
    names = provider.credential_headers()
    headers = tuple(
        (name, form.replace("{value}", old) if name.lower() in names else old)
        for name, old in request.headers
    )
    return dataclasses.replace(request, headers=headers)


def status_of(port: int, ca: Path, request: WireRequest) -> int:
    """The status the server answers `request` with, sent byte for byte as built."""
    head, body = request_bytes(request)
    with open_tls(port, ca) as sock:
        sock.sendall(head + body)
        data, _ = read_responses(sock)
    return int(data.split(b" ", 2)[1])


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("provider", PROVIDER_CASES, ids=[case.name for case in PROVIDER_CASES])
def test_spaces_and_tabs_around_a_credential_are_not_part_of_it(
    harness: Harness, provider: ProviderCase, engine: str
) -> None:
    receiver = provider_receiver(harness, provider, "--engine", engine)
    url = receiver.url(provider.path)
    accepted = ["{value}", " {value}", "{value} ", "\t{value}\t", "  \t{value} \t "]
    expected = {form: {200} for form in accepted}
    expected.update({form: {401} for form in ["{value} x", "x{value}", "{value}x"]})
    expected["{value}\x0b"] = {400, 401}  # not HTTP whitespace: the engine or the compare refuses
    for form, statuses in expected.items():
        request = with_credential(provider.request(url), provider, form)
        assert status_of(receiver.port, harness.certs.ca, request) in statuses, repr(form)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_secret_from_a_variable_is_trimmed(harness: Harness, engine: str) -> None:
    receiver = harness.receiver("--engine", engine, env={"RECEIVER_ENREACH_SECRET": f" {SECRET}\n"})
    with harness.client() as client:
        assert post_event(client, receiver.url(), enreach_event()).status_code == 200
        wrong = post_event(client, receiver.url(), enreach_event(), token=SECRET + "x")
        assert wrong.status_code == 401


@pytest.mark.parametrize("engine", ENGINES)
def test_a_secret_file_may_start_with_a_byte_order_mark(harness: Harness, engine: str) -> None:
    secret_file = harness.tmp_path / "secret"
    secret_file.write_bytes(b"\xef\xbb\xbf" + SECRET.encode() + b" \r\nPreviousSecret\r\n")
    env = {"RECEIVER_ENREACH_SECRET": "", "RECEIVER_ENREACH_SECRET_FILE": str(secret_file)}
    receiver = harness.receiver("--engine", engine, env=env)
    with harness.client() as client:
        assert post_event(client, receiver.url(), enreach_event()).status_code == 200
        previous = post_event(client, receiver.url(), enreach_event(), token="PreviousSecret")
        assert previous.status_code == 200


@pytest.mark.parametrize("blank", [" ", "\t \n"])
def test_a_secret_of_only_whitespace_is_refused_at_start(tmp_path: Path, blank: str) -> None:
    result = serve(tmp_path, env={"RECEIVER_ENREACH_SECRET": blank})
    assert_refused(result, "RECEIVER_ENREACH_SECRET is only whitespace")


def test_a_secret_file_of_only_whitespace_is_refused_at_start(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_bytes(b"\xef\xbb\xbf \n\t\n")
    result = serve(tmp_path, env={"RECEIVER_ENREACH_SECRET_FILE": str(secret_file)})
    assert_refused(result, f"secret file {secret_file} is empty")


def test_a_configured_variable_of_only_whitespace_is_refused_at_start(tmp_path: Path) -> None:
    config = tmp_path / "receiver.toml"
    config.write_text('[[endpoints]]\nname = "e"\nkind = "buzzeasy"\nevent_type = "X"\n'
                      'secret_env = "BLANK_KEY"\n')  # fmt: skip
    result = serve(tmp_path, "--config", str(config), env={"BLANK_KEY": " \t "})
    assert_refused(result, "BLANK_KEY is only whitespace (endpoint e)")

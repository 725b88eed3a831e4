"""End to end over real TLS against a receiver child process."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import warnings
from pathlib import Path

import httpx
import orjson
import pytest

from receiver.certs import DevCertificates
from tests.conftest import SECRET, Harness, enreach_event, post_event, run_cli


def raw_https(
    port: int, request: bytes, ca: Path, *, read_timeout: float = 5.0
) -> tuple[bytes, bytes]:
    """Send exact bytes over TLS; return (status line + headers, body)."""
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = tls.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


def test_spec_example_request_is_acknowledged_with_200_and_no_body(
    harness: Harness, spec_body: bytes
) -> None:
    receiver = harness.receiver()
    request = (
        b"POST /enreach HTTP/1.1\r\n"
        b"X-Benemen-Event: QueueCallInUserAllocated\r\n"
        b"X-Benemen-Token: MySecretString\r\n"
        b"Content-Type: application/json; charset=utf-8\r\n"
        b"Host: my.integration.com\r\n"
        b"Content-Length: " + str(len(spec_body)).encode() + b"\r\n"
        b"Connection: Keep-Alive\r\n\r\n" + spec_body
    )
    head, body = raw_https(receiver.port, request, harness.certs.ca)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"content-length: 0" in head.lower()
    assert body == b""
    harness.wait_for(lambda: harness.handled_keys() == ["85b214f2-1d27-4262-87b6-8f55b3199400"])


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("missing-token", 401),
        ("wrong-token", 401),
        ("get", 405),
        ("oversize", 413),
        ("not-json", 400),
        ("json-array", 400),
    ],
)
def test_bad_requests_get_their_documented_status_and_store_nothing(
    harness: Harness, case: str, status: int
) -> None:
    receiver = harness.receiver("--max-body", "2048")
    url = receiver.url()
    with harness.client() as client:
        if case == "missing-token":
            response = post_event(client, url, enreach_event(), token=None)
        elif case == "wrong-token":
            response = post_event(client, url, enreach_event(), token=SECRET + "x")
        elif case == "get":
            response = client.get(url, headers={"X-Benemen-Token": SECRET})
        elif case == "oversize":
            response = post_event(client, url, enreach_event(Note="x" * 4096))
        elif case == "not-json":
            response = post_event(client, url, b"Id=1&EventType=x", event_header="UserAvailability")
        else:
            response = post_event(client, url, b"[1, 2]", event_header="UserAvailability")
        assert response.status_code == status
        if status == 401:
            assert response.content == b""
        if status == 405:
            assert response.headers["allow"] == "POST"
        # The receiver still works, and nothing of the bad request was stored.
        assert post_event(client, url, enreach_event()).status_code == 200
    harness.wait_for(lambda: len(harness.handled_keys()) == 1)
    stats = run_cli(
        "inbox", "--inbox", str(receiver.inbox), "stats", "--json", cwd=harness.tmp_path
    )
    assert orjson.loads(stats.stdout)["by_source"] == {"enreach": 1}


def test_wrong_token_is_logged_without_its_value(harness: Harness) -> None:
    receiver = harness.receiver()
    with harness.client() as client:
        response = post_event(client, receiver.url(), enreach_event(), token="Sup3rSecretGuess")
    assert response.status_code == 401
    receiver.stop()
    assert "wrong token" in receiver.log
    assert "Sup3rSecretGuess" not in receiver.log
    assert SECRET not in receiver.log


def test_duplicates_are_acknowledged_and_dispatched_once(harness: Harness) -> None:
    receiver = harness.receiver()
    event = enreach_event()
    racing = enreach_event()
    statuses: list[int] = []

    def send(payload: dict[str, object]) -> None:
        with harness.client() as client:
            statuses.append(post_event(client, receiver.url(), payload).status_code)

    with harness.client() as client:
        for _ in range(3):
            assert post_event(client, receiver.url(), event).status_code == 200
    # Two copies at the same moment, on two connections.
    threads = [threading.Thread(target=send, args=(racing,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200, 200]
    harness.wait_for(lambda: len(harness.handled_keys()) >= 2)
    receiver.stop()
    assert sorted(harness.handled_keys()) == sorted([event["Id"], racing["Id"]])


def test_duplicates_are_recognised_across_restarts(harness: Harness) -> None:
    receiver = harness.receiver()
    event = enreach_event()
    with harness.client() as client:
        assert post_event(client, receiver.url(), event).status_code == 200
        harness.wait_for(lambda: len(harness.handled_keys()) == 1)
        receiver.stop()
        receiver.start()
        assert post_event(client, receiver.url(), event).status_code == 200
    receiver.stop()
    assert harness.handled_keys() == [event["Id"]]


def test_events_without_id_are_keyed_by_body_hash(harness: Harness) -> None:
    receiver = harness.receiver()
    first = enreach_event()
    del first["Id"]
    second = {**first, "CallerNumber": "+358409876543"}
    with harness.client() as client:
        for payload in (first, first, second):
            assert post_event(client, receiver.url(), payload).status_code == 200
    harness.wait_for(lambda: len(harness.handled_keys()) == 2)
    receiver.stop()
    keys = harness.handled_keys()
    assert len(set(keys)) == 2
    assert all(k.startswith("sha256:") for k in keys)


def test_event_type_falls_back_to_header_and_disagreement_is_logged(harness: Harness) -> None:
    receiver = harness.receiver()
    no_type = enreach_event()
    del no_type["EventType"]
    mismatch = enreach_event("UserAvailability")
    with harness.client() as client:
        assert (
            post_event(client, receiver.url(), no_type, event_header="UserCallInComing").status_code
            == 200
        )
        assert (
            post_event(client, receiver.url(), mismatch, event_header="QueueStatus").status_code
            == 200
        )
    harness.wait_for(lambda: len(harness.handled_keys()) == 2)
    receiver.stop()
    types = {r["key"]: r["type"] for r in harness.records() if r["phase"] == "end"}
    assert types[no_type["Id"]] == "UserCallInComing"
    assert types[mismatch["Id"]] == "UserAvailability"
    assert "disagrees with EventType" in receiver.log


def test_unknown_event_types_are_stored_and_dispatched(harness: Harness) -> None:
    receiver = harness.receiver()
    with harness.client() as client:
        event = enreach_event("QueueCallInConnected")  # named by the spec's sample config only
        assert post_event(client, receiver.url(), event).status_code == 200
    harness.wait_for(lambda: harness.handled_keys() == [event["Id"]])


def test_plain_http_to_the_tls_port_gets_no_http_response(harness: Harness) -> None:
    receiver = harness.receiver()
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=5) as sock:
        sock.sendall(b"POST /enreach HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        try:
            answer = sock.recv(4096)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    assert not answer.startswith(b"HTTP/")


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_tls_before_1_2_is_refused_by_the_server(harness: Harness, version: str) -> None:
    receiver = harness.receiver()

    def handshake(maximum: ssl.TLSVersion) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(str(harness.certs.ca))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # old versions on purpose
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = maximum
        context.set_ciphers("ALL:@SECLEVEL=0")  # let the client offer what it can
        with (
            socket.create_connection(("127.0.0.1", receiver.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.version() is not None

    handshake(ssl.TLSVersion.TLSv1_2)  # the same client gets in with TLS 1.2
    with pytest.raises(ssl.SSLError) as refused:
        handshake(ssl.TLSVersion[version])
    # Refused by the server (an alert or a closed connection), not by a client that
    # could not offer the old version in the first place.
    message = str(refused.value).upper()
    assert "PROTOCOL_VERSION" in message or "UNEXPECTED_EOF" in message, message


def test_first_run_creates_dev_certificates_and_curl_trusts_the_ca(
    harness: Harness, tmp_path: Path, spec_body: bytes
) -> None:
    workdir = tmp_path / "fresh"
    workdir.mkdir()
    dev = DevCertificates.in_dir(workdir / "certs")
    # Start with the project's own dev certificates: no --cert/--key given.
    from receiver.testing import ReceiverProcess

    class DevCertReceiver(ReceiverProcess):
        def command(self) -> list[str]:
            cmd = super().command()
            i = cmd.index("--cert")
            return cmd[:i] + cmd[i + 4 :]

    receiver = DevCertReceiver(
        workdir,
        certs=dev,
        secret=SECRET,
        handler="tests.support.recorder:Recorder",
        env={"RECORD_FILE": str(harness.record_file), "PYTHONPATH": str(Path.cwd())},
    )
    harness.processes.append(receiver)
    receiver.start()
    assert dev.ca.exists()
    assert (dev.key.stat().st_mode & 0o777) == 0o600
    assert f"CA file {dev.ca.resolve()}" in receiver.log
    result = subprocess.run(
        [
            "curl", "--silent", "--show-error", "--cacert", str(dev.ca),
            "--write-out", "%{http_code} %{size_download}",
            "-H", "X-Benemen-Event: QueueCallInUserAllocated",
            "-H", f"X-Benemen-Token: {SECRET}",
            "-H", "Content-Type: application/json; charset=utf-8",
            "--data-binary", "@-",
            receiver.url(),
        ],
        input=spec_body, capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.stdout == b"200 0", result.stderr
    harness.wait_for(lambda: harness.handled_keys() == ["85b214f2-1d27-4262-87b6-8f55b3199400"])


def test_hypercorn_engine_serves_the_same_endpoint(harness: Harness, spec_body: bytes) -> None:
    receiver = harness.receiver("--engine", "hypercorn")
    with harness.client() as client:
        response = post_event(
            client, receiver.url(), spec_body, event_header="QueueCallInUserAllocated"
        )
        assert response.status_code == 200
        assert response.content == b""
        assert post_event(client, receiver.url(), enreach_event(), token="nope").status_code == 401
    harness.wait_for(lambda: len(harness.handled_keys()) == 1)
    assert receiver.stop() == 0


def test_http_client_sees_keep_alive_reuse(harness: Harness) -> None:
    receiver = harness.receiver()
    with harness.client() as client:
        for _ in range(20):
            assert post_event(client, receiver.url(), enreach_event()).status_code == 200
    harness.wait_for(lambda: len(harness.handled_keys()) == 20)


def test_trailing_slash_path_is_the_same_endpoint(harness: Harness) -> None:
    receiver = harness.receiver()
    with harness.client() as client:
        assert post_event(client, receiver.url("/enreach/"), enreach_event()).status_code == 200
        assert post_event(client, receiver.url("/other"), enreach_event()).status_code == 404
    harness.wait_for(lambda: len(harness.handled_keys()) == 1)


def test_https_only_certificate_is_verified_by_clients(harness: Harness) -> None:
    receiver = harness.receiver()
    with httpx.Client() as client, pytest.raises(httpx.ConnectError):
        client.get(receiver.url("/healthz"))


def test_the_admin_listener_is_on_a_port_of_its_own_and_healthz_leaves_the_webhook_port(
    harness: Harness,
) -> None:
    receiver = harness.receiver()
    with harness.client() as client:
        assert client.get(receiver.admin_url("/healthz")).json()["status"] == "ok"
        assert client.get(receiver.admin_url("/readyz")).json()["status"] == "ready"
        assert client.get(receiver.url("/healthz")).status_code == 404
    assert f"admin: https://127.0.0.1:{receiver.admin_port}/ " in receiver.log


def test_a_receiver_process_started_with_any_free_admin_port_learns_it_from_its_output(
    harness: Harness,
) -> None:
    receiver = harness.receiver("--admin-port", "0")
    assert receiver.admin_port != 0
    with harness.client() as client:
        assert client.get(receiver.admin_url("/readyz")).status_code == 200


def test_a_receiver_process_without_its_admin_listener_starts_on_the_webhook_port(
    harness: Harness,
) -> None:
    receiver = harness.receiver("--no-admin", "--public-healthz")
    assert "admin: " not in receiver.log
    with pytest.raises(ValueError, match="--no-admin"):
        receiver.admin_url()
    with harness.client() as client:
        assert post_event(client, receiver.url(), enreach_event()).status_code == 200
        assert client.get(receiver.url("/healthz")).json()["status"] == "ok"
    harness.wait_for(lambda: len(harness.handled_keys()) == 1)

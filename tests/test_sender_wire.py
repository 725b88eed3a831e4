"""The sender on the wire: exact Enreach requests, retries, timeouts, redirects and TLS."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import orjson
import pytest
import trustme

from receiver.exceptions import ConfigError
from receiver.sender import Delivery, EnreachWire, Sender, SyncSender, Verify, WireFormat
from tests.test_sender_server import RecordingServer, Redirect, Stall, arrival_gaps, scripted

SECRET = "MySecretString"

# The spec's example request body.
PAYLOAD: dict[str, Any] = {
    "RootEntityType": "Organization",
    "RootEntityId": "fd434d24-f685-431d-8df5-386b5d5ffa73",
    "EventType": "QueueCallInUserAllocated",
    "EntityType": "Queue",
    "EntityId": "6cb31d7d-9cd9-41dc-a096-62cf31fd0281",
    "CallId": "9cae633f-68d0-4315-8b9a-b83c7673d8dc",
    "QueueId": "6cb31d7d-9cd9-41dc-a096-62cf31fd0281",
    "OrganizationId": "fd434d24-f685-431d-8df5-386b5d5ffa73",
    "QueueName": "Sample queue 1",
    "QueueNumber": "+358101231234",
    "UserId": "b4df099e-70dc-4ff5-b4ea-c2c3547d97fb",
    "Username": "sample.agent@customer.com",
    "CallerNumber": "+358501231234",
    "TargetNumber": "+35810123",
    "Id": "85b214f2-1d27-4262-87b6-8f55b3199400",
    "Timestamp": "2018-01-01T08:01:23.45",
}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("127.0.0.1", "localhost")


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def sync_sender(server: RecordingServer, verify: Verify, **options: Any) -> SyncSender:
    return SyncSender(server.url(), provider=EnreachWire(secret=SECRET), verify=verify, **options)


def test_request_is_exactly_what_enreach_sends(cert: trustme.LeafCert, ca_file: Path) -> None:
    with RecordingServer(cert) as server, sync_sender(server, ca_file) as sender:
        delivery = sender.send(PAYLOAD)

    assert delivery.acknowledged
    [request] = server.requests
    assert request.raw.startswith(b"POST /webhook/ HTTP/1.1\r\n")
    assert sorted(name for name, _ in request.headers) == [
        "Connection",
        "Content-Length",
        "Content-Type",
        "Host",
        "X-Benemen-Event",
        "X-Benemen-Token",
    ]
    assert request.header("X-Benemen-Event") == "QueueCallInUserAllocated"
    assert request.header("X-Benemen-Token") == SECRET
    assert request.header("Content-Type") == "application/json; charset=utf-8"
    assert request.header("Connection") == "Keep-Alive"
    assert request.header("Host") == f"127.0.0.1:{server.port}"
    assert request.header("Content-Length") == str(len(request.body))
    assert orjson.loads(request.body) == PAYLOAD
    assert list(orjson.loads(request.body)) == list(PAYLOAD)  # field order kept


def test_body_is_utf8_json(cert: trustme.LeafCert, ca_file: Path) -> None:
    payload = {**PAYLOAD, "QueueName": "Asiakaspalvelu, Äänekoski"}
    with RecordingServer(cert) as server, sync_sender(server, ca_file) as sender:
        sender.send(payload)

    body = server.requests[0].body
    assert "Äänekoski".encode() in body
    assert orjson.loads(body.decode("utf-8")) == payload


def test_no_token_header_without_a_secret(cert: trustme.LeafCert, ca_file: Path) -> None:
    with (
        RecordingServer(cert) as server,
        SyncSender(server.url(), provider=EnreachWire(), verify=ca_file) as sender,
    ):
        sender.send(PAYLOAD)

    assert server.requests[0].header("X-Benemen-Token") is None


def test_events_reuse_one_kept_alive_connection(cert: trustme.LeafCert, ca_file: Path) -> None:
    async def send_three(url: str) -> list[Delivery]:
        async with Sender(url, provider=EnreachWire(secret=SECRET), verify=ca_file) as sender:
            return [await sender.send({**PAYLOAD, "Id": str(n)}) for n in range(3)]

    with RecordingServer(cert) as server:
        deliveries = asyncio.run(send_three(server.url()))

    assert [d.acknowledged for d in deliveries] == [True, True, True]
    assert [r.connection for r in server.requests] == [1, 1, 1]
    assert [orjson.loads(r.body)["Id"] for r in server.requests] == ["0", "1", "2"]


def test_200_is_not_retried(cert: trustme.LeafCert, ca_file: Path) -> None:
    with RecordingServer(cert) as server, sync_sender(server, ca_file, retries=3) as sender:
        delivery = sender.send(PAYLOAD)

    assert len(server.requests) == 1
    assert (delivery.status, delivery.retried, delivery.error) == (200, 0, None)
    assert delivery.latencies[0] > 0


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (500, "HTTP 500"),
        (401, "HTTP 401"),
        (204, "HTTP 204"),
        (Redirect("https://127.0.0.1:1/elsewhere"), "HTTP 302 redirect to"),
    ],
    ids=["500", "401", "204", "302"],
)
def test_anything_but_200_is_retried_then_discarded(
    cert: trustme.LeafCert, ca_file: Path, answer: int | Redirect, error: str
) -> None:
    with (
        RecordingServer(cert, scripted(then=answer)) as server,
        sync_sender(server, ca_file, retries=3, retry_delay=0.2) as sender,
    ):
        delivery = sender.send(PAYLOAD)

    assert not delivery.acknowledged
    assert len(delivery.attempts) == 4
    assert delivery.error is not None and delivery.error.startswith(error)
    assert [r.target for r in server.requests] == ["/webhook/"] * 4  # a redirect is not followed
    assert len({r.body for r in server.requests}) == 1  # the same event, same Id, each time
    gaps = arrival_gaps(server.requests)
    assert min(gaps) >= 0.2


def test_retry_stops_at_the_first_200(cert: trustme.LeafCert, ca_file: Path) -> None:
    with (
        RecordingServer(cert, scripted(500, 503)) as server,
        sync_sender(server, ca_file, retries=5, retry_delay=0.01) as sender,
    ):
        delivery = sender.send(PAYLOAD)

    assert delivery.acknowledged
    assert [a.status for a in delivery.attempts] == [500, 503, 200]
    assert len(server.requests) == 3


def test_timeout_is_a_failure_and_is_retried(cert: trustme.LeafCert, ca_file: Path) -> None:
    with (
        RecordingServer(cert, scripted(Stall(5), Stall(5))) as server,
        sync_sender(server, ca_file, retries=3, retry_delay=0.1, timeout=0.3) as sender,
    ):
        delivery = sender.send(PAYLOAD)

    assert delivery.acknowledged
    assert [(a.status, a.timed_out) for a in delivery.attempts] == [
        (None, True),
        (None, True),
        (200, False),
    ]
    assert delivery.attempts[0].error == "timed out after 0.3 s"
    assert delivery.attempts[0].latency >= 0.3
    gaps = arrival_gaps(server.requests)
    assert min(gaps) >= 0.3 + 0.1 - 0.02  # the timeout starts once the request is written


def test_timeouts_exhaust_the_retries(cert: trustme.LeafCert, ca_file: Path) -> None:
    async def send(url: str) -> Delivery:
        async with Sender(
            url,
            provider=EnreachWire(secret=SECRET),
            verify=ca_file,
            retries=1,
            retry_delay=0,
            timeout=0.2,
        ) as sender:
            return await sender.send(PAYLOAD)

    with RecordingServer(cert, scripted(then=Stall(5))) as server:
        delivery = asyncio.run(send(server.url()))

    assert not delivery.acknowledged
    assert [a.timed_out for a in delivery.attempts] == [True, True]
    assert delivery.error == "timed out after 0.2 s"
    assert len(server.requests) == 2


@pytest.fixture(scope="module")
def untrusted_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("other") / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


@pytest.mark.parametrize("verify", ["system store", "another CA"])
def test_untrusted_certificate_is_refused(
    cert: trustme.LeafCert, untrusted_file: Path, verify: str
) -> None:
    with (
        RecordingServer(cert) as server,
        sync_sender(server, True if verify == "system store" else untrusted_file) as sender,
    ):
        delivery = sender.send(PAYLOAD, retries=0)

    assert not delivery.acknowledged
    assert delivery.error is not None
    assert delivery.error.startswith("TLS certificate verify failed")
    assert server.requests == []


def test_certificate_for_another_host_is_refused(ca: trustme.CA, ca_file: Path) -> None:
    with (
        RecordingServer(ca.issue_cert("receiver.example")) as server,
        sync_sender(server, ca_file) as sender,
    ):
        delivery = sender.send(PAYLOAD, retries=0)

    assert delivery.error is not None and "verify failed" in delivery.error
    assert server.requests == []


def test_insecure_accepts_any_certificate(ca: trustme.CA) -> None:
    leaf = trustme.CA().issue_cert("receiver.example")  # untrusted and for another name
    with RecordingServer(leaf) as server, sync_sender(server, False) as sender:
        delivery = sender.send(PAYLOAD)

    assert delivery.acknowledged
    assert len(server.requests) == 1


def test_unreachable_url_reports_the_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with SyncSender(
        f"https://127.0.0.1:{port}/", provider=EnreachWire(secret=SECRET), retry_delay=0
    ) as sender:
        delivery = sender.send(PAYLOAD, retries=1)

    assert len(delivery.attempts) == 2
    assert delivery.error is not None and delivery.error.startswith("cannot connect")


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "127.0.0.1:8443/x", "https:///x"])
def test_bad_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="invalid URL"):
        SyncSender(url, provider=EnreachWire())


def test_missing_ca_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load CA file"):
        SyncSender("https://127.0.0.1/", provider=EnreachWire(), verify=tmp_path / "nope.pem")


def test_token_is_hidden_from_reprs() -> None:
    wire = EnreachWire(secret=SECRET)
    request = wire.build("https://127.0.0.1/", PAYLOAD)

    assert SECRET not in repr(wire)
    assert SECRET not in repr(request)
    assert ("X-Benemen-Token", "***") in request.redacted_headers()


def test_forged_wire_carries_another_token() -> None:
    wire: WireFormat = EnreachWire(secret=SECRET)
    forged = wire.forged().build("https://127.0.0.1/", PAYLOAD)

    assert forged.header("X-Benemen-Token") not in (None, SECRET)
    assert forged.body == EnreachWire(secret=SECRET).build("https://127.0.0.1/", PAYLOAD).body


def test_payload_without_event_type_is_refused() -> None:
    with pytest.raises(ValueError, match="EventType"):
        EnreachWire().build("https://127.0.0.1/", {"Id": "x"})

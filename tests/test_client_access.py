"""Who may call an endpoint at all: `allow_networks` (with trusted proxies) and client
certificates (`client_ca`), on real receivers over loopback, both engines.

A refused client gets 403 with the reason, before its credentials are looked at or its body
read, and nothing is stored; the refusal is logged like every other.
"""

from __future__ import annotations

import signal
import socket
import ssl
from collections.abc import Sequence
from pathlib import Path

import httpx
import orjson
import pytest
import trustme

from receiver.access import ClientAccess, UnknownClient, client_address, parse_network
from receiver.testing import ReceiverProcess
from tests.conftest import SECRET, Harness, enreach_event, post_event
from tests.support.certs import copy_certificates, replace_file, write_certificates
from tests.support.faults import inbox_states, stop_cleanly
from tests.support.provider_cases import ENGINES
from tests.support.startup import assert_refused, serve

FORBIDDEN = "refused a request from {client} with 403: {reason}"


def endpoint(name: str, **keys: str | list[str]) -> str:
    """An Enreach `[[endpoints]]` table taking the harness's secret."""
    lines = [
        "[[endpoints]]",
        f'name = "{name}"',
        'kind = "enreach"',
        f'path = "/{name}"',
        'secret_env = "RECEIVER_ENREACH_SECRET"',
    ]
    lines += [f"{key} = {orjson.dumps(value).decode()}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


def write_config(directory: Path, *tables: str, server: str = "") -> Path:
    config = directory / "receiver.toml"
    config.write_text((f"[server]\n{server}\n" if server else "") + "\n".join(tables))
    return config


def send(client: httpx.Client, url: str, **headers: str) -> tuple[httpx.Response, str]:
    """POST a fresh Enreach event; the response and the event's Id (its dedup key)."""
    event = enreach_event()
    body = orjson.dumps(event)
    response = client.post(
        url,
        content=body,
        headers={"X-Benemen-Token": SECRET, "Content-Type": "application/json", **headers},
    )
    return response, str(event["Id"])


def assert_forbidden(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 403, response.text
    assert response.text == reason + "\n"
    assert response.headers["connection"] == "close"  # its body was not read


# -- allow_networks ------------------------------------------------------------------------


def dual_stack_receiver(harness: Harness, *args: str) -> ReceiverProcess:
    """A receiver on `::` that IPv4 clients reach too (as `::ffff:127.0.0.1`)."""
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", 0))
    except OSError as exc:
        pytest.skip(f"no dual-stack IPv6 here: {exc}")
    sock.listen(64)
    receiver = ReceiverProcess(
        harness.tmp_path,
        certs=harness.certs,
        secret=SECRET,
        args=list(args),
        host="::1",
    )
    receiver.sock.close()
    receiver.sock, receiver.port = sock, sock.getsockname()[1]
    harness.processes.append(receiver)
    receiver.start()
    return receiver


@pytest.mark.parametrize("engine", ENGINES)
def test_only_allowed_networks_reach_the_endpoint(harness: Harness, engine: str) -> None:
    config = write_config(
        harness.tmp_path,
        endpoint("outside", allow_networks=["192.0.2.0/24", "2001:db8::/32"]),
        endpoint("loopback4", allow_networks=["127.0.0.0/8"]),
        endpoint("loopback6", allow_networks="::1/128"),
        endpoint("anyone"),
    )
    receiver = dual_stack_receiver(harness, "--config", str(config), "--engine", engine)
    v4 = f"https://127.0.0.1:{receiver.port}"  # the peer is ::ffff:127.0.0.1
    v6 = f"https://[::1]:{receiver.port}"
    stored: list[str] = []
    with harness.client() as client:
        response, _ = send(client, v4 + "/outside")
        assert_forbidden(response, "client address 127.0.0.1 is not allowed")
        response, _ = send(client, v6 + "/outside")
        assert_forbidden(response, "client address ::1 is not allowed")
        # Checked before the credentials: no token, still 403 (not 401).
        no_token = post_event(client, v4 + "/outside", enreach_event(), token=None)
        assert_forbidden(no_token, "client address 127.0.0.1 is not allowed")
        response, _ = send(client, v6 + "/loopback4")
        assert_forbidden(response, "client address ::1 is not allowed")
        response, _ = send(client, v4 + "/loopback6")
        assert_forbidden(response, "client address 127.0.0.1 is not allowed")
        for url in (v4 + "/loopback4", v6 + "/loopback6", v4 + "/anyone", v6 + "/anyone"):
            response, key = send(client, url)
            assert response.status_code == 200, (url, response.text)
            stored.append(key)
    stop_cleanly(receiver)
    assert sorted(inbox_states(receiver.inbox)) == sorted(stored)
    reason = "client address 127.0.0.1 is not allowed"
    assert f"outside: {FORBIDDEN.format(client='::ffff:127.0.0.1', reason=reason)}" in (
        receiver.log
    )
    assert "outside: bad_request 0, duplicate 0, forbidden 3, method_not_allowed 0, stored 0" in (
        receiver.log
    )


PROXY = 'trusted_proxies = ["127.0.0.1/32"]\nclient_address_header = "X-Forwarded-For"\n'


@pytest.mark.parametrize("engine", ENGINES)
def test_a_trusted_proxy_names_the_client(harness: Harness, engine: str) -> None:
    config = write_config(
        harness.tmp_path, endpoint("hooks", allow_networks=["198.51.100.0/24"]), server=PROXY
    )
    receiver = harness.receiver("--config", str(config), "--engine", engine)
    url = receiver.url("/hooks")
    allowed = [
        "198.51.100.7",
        "198.51.100.7:50123",  # some balancers add the client's port
        "203.0.113.9, 198.51.100.7",  # left of the client: what the client wrote, ignored
        "198.51.100.7, 127.0.0.1",  # a second trusted proxy behind the first
    ]
    refused = {
        "203.0.113.9": "client address 203.0.113.9 is not allowed",
        "198.51.100.7, 203.0.113.9": "client address 203.0.113.9 is not allowed",
        "unknown": "x-forwarded-for names 'unknown', not an address",
    }
    stored: list[str] = []
    with harness.client() as client:
        for value in allowed:
            response, key = send(client, url, **{"X-Forwarded-For": value})
            assert response.status_code == 200, (value, response.text)
            stored.append(key)
        for value, reason in refused.items():
            response, _ = send(client, url, **{"X-Forwarded-For": value})
            assert_forbidden(response, reason)
        # Without the header the client is the proxy itself.
        response, _ = send(client, url)
        assert_forbidden(response, "client address 127.0.0.1 is not allowed")
        # Two header lines are one list: the last line's last address is the client.
        two_lines = client.post(
            url,
            content=orjson.dumps(enreach_event()),
            headers=[
                ("X-Benemen-Token", SECRET),
                ("X-Forwarded-For", "198.51.100.7"),
                ("X-Forwarded-For", "203.0.113.9"),
            ],
        )
        assert_forbidden(two_lines, "client address 203.0.113.9 is not allowed")
    stop_cleanly(receiver)
    assert sorted(inbox_states(receiver.inbox)) == sorted(stored)
    reason = "client address 203.0.113.9 is not allowed"
    assert f"hooks: {FORBIDDEN.format(client='127.0.0.1', reason=reason)}" in receiver.log


@pytest.mark.parametrize(
    "server",
    [
        "",  # no proxy configured
        'trusted_proxies = ["10.0.0.5/32"]\nclient_address_header = "X-Forwarded-For"\n',
    ],
    ids=["no-proxy", "peer-not-a-proxy"],
)
def test_the_header_of_a_peer_that_is_no_trusted_proxy_is_ignored(
    harness: Harness, server: str
) -> None:
    config = write_config(
        harness.tmp_path, endpoint("hooks", allow_networks=["198.51.100.0/24"]), server=server
    )
    receiver = harness.receiver("--config", str(config))
    with harness.client() as client:
        response, _ = send(client, receiver.url("/hooks"), **{"X-Forwarded-For": "198.51.100.7"})
    assert_forbidden(response, "client address 127.0.0.1 is not allowed")
    stop_cleanly(receiver)
    assert inbox_states(receiver.inbox) == {}


@pytest.mark.parametrize(
    ("toml", "reason"),
    [
        (
            endpoint("hooks", allow_networks=["300.1.2.0/24"]),
            "endpoint 'hooks': allow_networks: '300.1.2.0/24' is not a network in CIDR notation",
        ),
        (
            endpoint("hooks", allow_networks=["10.0.0.5/24"]),
            "'10.0.0.5/24' is not a network in CIDR notation (10.0.0.5/24 has host bits set)",
        ),
        (
            endpoint("hooks", allow_networks=[]),
            "endpoint 'hooks': allow_networks is empty: it would refuse every client",
        ),
        (
            '[server]\ntrusted_proxies = ["10.0.0.0/33"]\nclient_address_header = "X-F"\n'
            + endpoint("hooks"),
            "receiver.toml: trusted_proxies: '10.0.0.0/33' is not a network in CIDR notation",
        ),
        (
            '[server]\ntrusted_proxies = ["10.0.0.5"]\n' + endpoint("hooks"),
            "trusted_proxies needs client_address_header",
        ),
        (
            '[server]\nclient_address_header = "X-Forwarded-For"\n' + endpoint("hooks"),
            "client_address_header needs trusted_proxies",
        ),
        (
            '[server]\ntrusted_proxies = ["10.0.0.5"]\nclient_address_header = "Forwarded"\n'
            + endpoint("hooks"),
            "client_address_header 'Forwarded' (RFC 7239) is not supported",
        ),
        (
            endpoint("hooks", client_ca="missing-ca.pem"),
            "endpoint 'hooks': cannot read client_ca missing-ca.pem: No such file",
        ),
        (
            endpoint("hooks", client_ca="receiver.toml"),
            "endpoint 'hooks': client_ca receiver.toml holds no PEM certificate",
        ),
        (
            endpoint("hooks", client_subjects=["CN=sender"]),
            "endpoint 'hooks': client_subjects needs client_ca",
        ),
        (
            endpoint("hooks", client_ca="ca.pem", client_subjects=["CN=sender", "XX=1"]),
            "endpoint 'hooks': client_subjects: 'XX=1' is not a distinguished name (RFC 4514",
        ),
    ],
)
def test_bad_client_access_settings_refuse_to_start(tmp_path: Path, toml: str, reason: str) -> None:
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    (tmp_path / "receiver.toml").write_text(toml)
    assert_refused(serve(tmp_path, env={"RECEIVER_ENREACH_SECRET": SECRET}), reason)


def test_a_bad_network_in_a_variable_refuses_to_start(tmp_path: Path) -> None:
    environment = {
        "RECEIVER_ENREACH_SECRET": SECRET,
        "RECEIVER_TRUSTED_PROXIES": "10.0.0.5/32,10.0.0.x/32",
        "RECEIVER_CLIENT_ADDRESS_HEADER": "X-Forwarded-For",
    }
    assert_refused(
        serve(tmp_path, env=environment),
        "$RECEIVER_TRUSTED_PROXIES: trusted_proxies: '10.0.0.x/32' is not a network",
    )


@pytest.mark.parametrize(
    ("peer", "header_values", "expected"),
    [
        ("10.0.0.5", [b"198.51.100.7"], "198.51.100.7"),
        ("10.0.0.5", [b" 198.51.100.7 , 10.0.0.6 "], "198.51.100.7"),
        ("10.0.0.5", [b"[2001:db8::1]:443"], "2001:db8::1"),
        ("10.0.0.5", [b"2001:db8::1"], "2001:db8::1"),
        ("10.0.0.5", [b"::ffff:198.51.100.7"], "198.51.100.7"),
        ("10.0.0.5", [b"198.51.100.7,,"], "198.51.100.7"),  # empty list elements
        ("10.0.0.5", [b"10.0.0.7, 10.0.0.6"], "10.0.0.7"),  # all trusted: the left-most
        ("10.0.0.5", [], "10.0.0.5"),  # no header: the proxy itself
        ("::ffff:10.0.0.5", [b"198.51.100.7"], "198.51.100.7"),  # a mapped proxy address
        ("203.0.113.1", [b"198.51.100.7"], "203.0.113.1"),  # not a proxy: header ignored
    ],
)
def test_client_address_from_a_trusted_proxy(
    peer: str, header_values: Sequence[bytes], expected: str
) -> None:
    scope = {
        "client": (peer, 50000),
        "headers": [(b"x-forwarded-for", value) for value in header_values],
    }
    proxies = [parse_network("10.0.0.0/24")]
    assert str(client_address(scope, proxies, b"x-forwarded-for")) == expected


def test_an_unreadable_client_address_is_refused() -> None:
    proxies = [parse_network("10.0.0.0/24")]
    with pytest.raises(UnknownClient, match="the client's address is unknown"):
        client_address({"client": None, "headers": []}, proxies, b"x-forwarded-for")
    forged = {"client": ("10.0.0.5", 1), "headers": [(b"x-forwarded-for", b"1.2.3.4\n")]}
    assert str(client_address(forged, proxies, b"x-forwarded-for")) == "1.2.3.4"
    garbage = {"client": ("10.0.0.5", 1), "headers": [(b"x-forwarded-for", b"\x1b[2J")]}
    access = ClientAccess([parse_network("0.0.0.0/0")], proxies=proxies, header="X-Forwarded-For")
    assert access.refusal(garbage) == "x-forwarded-for names '\\x1b[2J', not an address"
    # An IPv4-mapped network matches the IPv4 addresses a dual-stack listener sees.
    assert parse_network("::ffff:192.0.2.0/120") == parse_network("192.0.2.0/24")


# -- client certificates -------------------------------------------------------------------


class ClientCerts:
    """Three client CAs: the endpoint's (A), another endpoint's (B) and one the receiver does
    not know (C), and an intermediate CA under A (D), each with a sender certificate, written
    as PEM files."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir()
        self.directory = directory
        self.cas = {name: trustme.CA() for name in "ABC"}
        self.cas["D"] = self.cas["A"].create_child_ca()
        for name, ca in self.cas.items():
            ca.cert_pem.write_to_path(str(self.ca(name)))
            self.issue(name, f"sender-{name}", common_name="enreach-sender")
        self.issue("A", "other-A", "other-sender.example", common_name="someone-else")
        self.issue("A", "dns-A", "backup-sender.example")

    def ca(self, name: str) -> Path:
        return self.directory / f"client-ca-{name}.pem"

    def issue(self, ca: str, file: str, *names: str, common_name: str | None = None) -> None:
        leaf = self.cas[ca].issue_cert(*names, common_name=common_name)
        leaf.private_key_and_cert_chain_pem.write_to_path(str(self.directory / f"{file}.pem"))

    def client(self, server_ca: Path, cert: str | None = None, **options: object) -> httpx.Client:
        """A client trusting `server_ca`, presenting the sender certificate `cert`."""
        context = ssl.create_default_context(cafile=str(server_ca))
        if cert is not None:
            context.load_cert_chain(str(self.directory / f"{cert}.pem"))
        if options.get("tls12"):
            context.maximum_version = ssl.TLSVersion.TLSv1_2
        return httpx.Client(verify=context, timeout=5.0)


def check_client_certificates(
    certs: ClientCerts, receiver: ReceiverProcess, server_ca: Path
) -> list[str]:
    """Every client-certificate case against the receiver; the keys it stored."""
    stored: list[str] = []

    def accepted(cert: str | None, path: str) -> None:
        with certs.client(server_ca, cert) as client:
            response, key = send(client, receiver.url(path))
        assert response.status_code == 200, (cert, path, response.text)
        stored.append(key)

    def forbidden(cert: str | None, path: str, reason: str) -> None:
        with certs.client(server_ca, cert) as client:
            assert_forbidden(send(client, receiver.url(path))[0], reason)

    not_issued = "the client certificate is not issued by this endpoint's client_ca"
    forbidden(None, "/mtls", "a client certificate is required")
    forbidden("sender-B", "/mtls", not_issued)
    forbidden("sender-A", "/mtls-b", not_issued)
    # The issuer itself must be in the endpoint's file: the root above it is not enough...
    forbidden("sender-D", "/mtls", not_issued)
    # ... and an intermediate CA alone is (the sender sends it along with its certificate).
    accepted("sender-D", "/mtls-d")
    forbidden("sender-A", "/mtls-d", not_issued)
    with certs.client(server_ca, "other-A") as client:
        response, _ = send(client, receiver.url("/pinned"))
    assert response.status_code == 403
    assert response.text.startswith("the client certificate (CN=someone-else,")  # OU random
    assert response.text.endswith(") is not one of client_subjects\n")
    accepted("sender-A", "/mtls")
    accepted("sender-B", "/mtls-b")
    accepted("sender-A", "/pinned")  # CN=enreach-sender
    accepted("dns-A", "/pinned")  # DNS backup-sender.example
    # The endpoint without client_ca: with or without a certificate.
    accepted(None, "/plain")
    accepted("sender-A", "/plain")
    # A certificate no client_ca issued fails the TLS handshake, whatever the path: TLS 1.3
    # clients find the connection closed once they have sent the request, TLS 1.2 ones
    # during the handshake; no HTTP answer either way.
    for path in ("/mtls", "/plain"):
        for tls12 in (False, True):
            with (
                certs.client(server_ca, "sender-C", tls12=tls12) as client,
                pytest.raises(httpx.TransportError),
            ):
                send(client, receiver.url(path))
    return stored


@pytest.mark.parametrize("engine", ENGINES)
def test_client_certificates_per_endpoint(harness: Harness, tmp_path: Path, engine: str) -> None:
    certs = ClientCerts(tmp_path / "clients")
    live = copy_certificates(harness.certs, tmp_path / "live")
    harness.certs = live
    config = write_config(
        tmp_path,
        endpoint("mtls", client_ca=str(certs.ca("A"))),
        endpoint("mtls-b", client_ca=str(certs.ca("B"))),
        endpoint("mtls-d", client_ca=str(certs.ca("D"))),
        endpoint(
            "pinned",
            client_ca=str(certs.ca("A")),
            client_subjects=["CN=enreach-sender", "DNS:backup-sender.example"],
        ),
        endpoint("plain"),
    )
    receiver = harness.receiver(
        "--config", str(config), "--engine", engine, "--cert-watch-interval", "0"
    )
    stored = check_client_certificates(certs, receiver, live.ca)

    # A new server certificate, loaded on SIGHUP: clients are still asked for theirs and
    # verified against the same CAs.
    new = write_certificates(tmp_path / "new")
    replace_file(live.key, new.key.read_bytes())
    replace_file(live.cert, new.cert.read_bytes())
    assert receiver.proc is not None
    receiver.proc.send_signal(signal.SIGHUP)
    harness.wait_for(
        lambda: "certificate reloaded from" in receiver.log, timeout=10, what="the reload"
    )
    stored += check_client_certificates(certs, receiver, new.ca)
    stop_cleanly(receiver)
    assert sorted(inbox_states(receiver.inbox)) == sorted(stored)
    reason = "the client certificate is not issued by this endpoint's client_ca"
    assert f"mtls: {FORBIDDEN.format(client='127.0.0.1', reason=reason)}" in receiver.log


def test_an_intermediate_ca_alone_is_a_client_ca(harness: Harness, tmp_path: Path) -> None:
    certs = ClientCerts(tmp_path / "clients")
    config = write_config(tmp_path, endpoint("mtls-d", client_ca=str(certs.ca("D"))))
    receiver = harness.receiver("--config", str(config))
    with certs.client(harness.certs.ca, "sender-D") as client:
        response, key = send(client, receiver.url("/mtls-d"))
    assert response.status_code == 200, response.text
    with certs.client(harness.certs.ca, "sender-A") as client, pytest.raises(httpx.TransportError):
        send(client, receiver.url("/mtls-d"))  # its root is in no client_ca: no handshake
    stop_cleanly(receiver)
    assert list(inbox_states(receiver.inbox)) == [key]

"""Who may call an endpoint at all: client networks and client certificates.

Both are checked before credentials and before the body is read, and only on endpoints that
configure them (`client_access` gives None otherwise, and the endpoint skips the check).

The client's address is the connection's peer, unless the peer is one of the server's
`trusted_proxies` and `client_address_header` is set: then it is the right-most address in
that header (all its lines, in order) that is not itself a trusted proxy, as a chain of
proxies each appending the address it was called from writes it. Addresses further left are
written by the client and prove nothing. An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what
a dual-stack listener sees) is taken as the IPv4 address.

A client certificate is verified by OpenSSL during the handshake against every endpoint's
`client_ca` at once (one TLS context serves every path); the endpoint then requires that its
own CA issued it. On Python 3.11 the server does not see the chain the client sent, only its
certificate, so "issued by" means directly: the certificate's signature is checked against
each certificate in the endpoint's `client_ca` file (an intermediate CA there is enough; the
TLS context accepts it as a trust anchor).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult

from receiver.exceptions import ConfigError
from receiver.logs import printable

if TYPE_CHECKING:
    from cryptography import x509

    from receiver.config import EndpointConfig, Settings

__all__ = [
    "ClientAccess",
    "ClientCertificates",
    "IPAddress",
    "Network",
    "UnknownClient",
    "client_access",
    "client_address",
    "is_loopback",
    "outbound_url",
    "parse_client_subjects",
    "parse_network",
    "read_client_ca",
]


def outbound_url(url: str, where: str, what: str) -> SplitResult:
    """`url`, split, for a request this receiver sends (`what`: e.g. "the forward URL");
    ConfigError in one line unless it is https:// (http:// only to a loopback host) with a
    host and no user or password (which would end up in logs)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (parses the port: ValueError when it is not a number)
    except ValueError as exc:
        raise ConfigError(f"{where}: {what} cannot be parsed ({exc})") from None
    if "@" in parts.netloc:
        raise ConfigError(
            f"{where}: {what} must not hold a user or password (it would end up in logs)"
        )
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and host and is_loopback(host)):
        got = f"{scheme}://" if scheme else "no scheme"
        raise ConfigError(
            f"{where}: {what} must start with https:// (http:// only to a loopback host such "
            f"as 127.0.0.1), got {printable(got, 40)}"
        )
    if not host:
        raise ConfigError(f"{where}: {what} has no host")
    return parts


def is_loopback(host: str) -> bool:
    """Whether `host` (an address, `[::1]`, or `localhost`) names this machine only: where
    plain HTTP or a tokenless admin listener stays on the machine."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SEEN_LIMIT = 1024
"""Client certificates, and client addresses (with what trusted proxies said of them), whose
verdict an endpoint remembers; it forgets them all when full."""


class UnknownClient(Exception):
    """The client's address cannot be told; the message says why."""


def parse_network(text: str) -> Network:
    """A network in CIDR notation (a bare address is a /32 or /128); ValueError if it is not
    one, or has bits set past its prefix (`10.0.0.5/24`: meant `10.0.0.0/24`?)."""
    network = ipaddress.ip_network(text.strip(), strict=True)
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:  # ::ffff:a.b.c.d/n, as addresses are unmapped before matching
            return ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}")
    return network


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(address: IPAddress, networks: Iterable[Network]) -> bool:
    return any(address in network for network in networks)


def _hop(text: bytes) -> IPAddress | None:
    """One address of a proxy header (`192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:443`,
    `2001:db8::1`); None if it is none (`unknown`, `_hidden`, garbage)."""
    text = text.strip()
    if text.startswith(b"["):
        text = text[1 : text.find(b"]")] if b"]" in text else b""
    elif text.count(b":") == 1:
        text = text.partition(b":")[0]
    try:
        return _unmapped(ipaddress.ip_address(text.decode("latin-1")))
    except ValueError:
        return None


def client_address(
    scope: Mapping[str, Any], proxies: Sequence[Network] = (), header: bytes | None = None
) -> IPAddress:
    """The address of the client that sent the request in `scope` (ASGI), taken from
    `header` (lower case) only when the peer is in `proxies`; UnknownClient if it cannot be
    told (no peer address, or a header naming something that is not an address)."""
    client = scope.get("client")
    try:
        peer = _unmapped(ipaddress.ip_address(client[0])) if client else None
    except ValueError:
        peer = None
    if peer is None:
        raise UnknownClient("the client's address is unknown")
    if header is None or not _within(peer, proxies):
        return peer
    lines = [value for name, value in scope["headers"] if name == header]
    address = peer
    for raw in reversed(b",".join(lines).split(b",")):
        if not raw.strip():
            continue  # an empty list element, which HTTP allows
        hop = _hop(raw)
        if hop is None:
            shown = printable(raw.strip().decode("latin-1"), 60)
            raise UnknownClient(f"{header.decode()} names '{shown}', not an address")
        address = hop
        if not _within(hop, proxies):
            return hop
    return address  # every hop a trusted proxy (or none): the left-most one, else the peer


def read_client_ca(path: Path) -> bytes:
    """The PEM certificates in the file at `path`; ValueError if it holds none (OSError if it
    cannot be read)."""
    from cryptography import x509

    data = path.read_bytes()
    x509.load_pem_x509_certificates(data)  # ValueError when there is no certificate
    return data


def parse_client_subjects(names: Iterable[str]) -> tuple[list[x509.Name], set[str]]:
    """`client_subjects` as distinguished names (entries with `=`) and DNS names (the rest,
    `DNS:` optional); ValueError for an entry that is neither."""
    from cryptography import x509

    subjects: list[x509.Name] = []
    dns_names: set[str] = set()
    for name in names:
        text = name.strip()
        if "=" in text:
            try:
                subjects.append(x509.Name.from_rfc4514_string(text))
            except ValueError:
                raise ValueError(
                    f"{name!r} is not a distinguished name (RFC 4514: CN=...,O=...)"
                ) from None
        elif text.removeprefix("DNS:").strip():
            dns_names.add(text.removeprefix("DNS:").strip().lower())
        else:
            raise ValueError(f"{name!r} is neither a distinguished name nor a DNS name")
    return subjects, dns_names


class ClientCertificates:
    """An endpoint's client-certificate requirement: issued by one of the certificates in
    `ca_pem`, and, when `names` pins any, with one of those subjects or DNS names."""

    def __init__(self, ca_pem: bytes, names: Sequence[str] = ()) -> None:
        from cryptography import x509

        self.issuers = x509.load_pem_x509_certificates(ca_pem)
        self.subjects, self.dns_names = parse_client_subjects(names)
        self._seen: dict[str, str | None] = {}

    def refusal(self, scope: Mapping[str, Any]) -> str | None:
        """Why the request in `scope` may not pass (None: it may)."""
        tls = scope.get("extensions", {}).get("tls")
        chain = tls.get("client_cert_chain") if tls else None
        if not chain:
            return "a client certificate is required"
        pem: str = chain[0]
        try:
            return self._seen[pem]  # a connection's requests, and a sender's connections
        except KeyError:
            pass
        verdict = self._judge(pem)
        if len(self._seen) >= _SEEN_LIMIT:
            self._seen.clear()
        self._seen[pem] = verdict
        return verdict

    def _judge(self, pem: str) -> str | None:
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature

        try:
            cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
        except ValueError:
            return "the client certificate cannot be read"
        for issuer in self.issuers:
            try:
                cert.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature):
                continue
            break
        else:
            return "the client certificate is not issued by this endpoint's client_ca"
        if not self.subjects and not self.dns_names:
            return None
        attributes = set(cert.subject)
        if any(set(subject) <= attributes for subject in self.subjects):
            return None
        if self.dns_names and self.dns_names & _dns_names(cert):
            return None
        shown = printable(cert.subject.rfc4514_string(), 120)
        return f"the client certificate ({shown}) is not one of client_subjects"


def _dns_names(cert: x509.Certificate) -> set[str]:
    from cryptography import x509

    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {name.lower() for name in names.get_values_for_type(x509.DNSName)}


class ClientAccess:
    """An endpoint's allowed client networks and client-certificate requirement."""

    __slots__ = ("_verdicts", "certificates", "header", "networks", "proxies")

    def __init__(
        self,
        networks: Sequence[Network] = (),
        *,
        proxies: Sequence[Network] = (),
        header: str | None = None,
        certificates: ClientCertificates | None = None,
    ) -> None:
        self.networks = tuple(networks)
        self.proxies = tuple(proxies)
        self.header = header.lower().encode("latin-1") if header else None
        self.certificates = certificates
        # Parsing an address and matching it costs more than the rest of the request path
        # checks, and a sender calls from few addresses: remember the verdicts.
        self._verdicts: dict[object, str | None] = {}

    def refusal(self, scope: MutableMapping[str, Any]) -> str | None:
        """Why the request in `scope` (ASGI) may not reach the endpoint (None: it may)."""
        if self.networks:
            client = scope.get("client")
            key: object = client[0] if client else None
            if self.header is not None:
                key = (key, *(value for name, value in scope["headers"] if name == self.header))
            try:
                verdict = self._verdicts[key]
            except KeyError:
                verdict = self._address_refusal(scope)
                if len(self._verdicts) >= _SEEN_LIMIT:
                    self._verdicts.clear()
                self._verdicts[key] = verdict
            if verdict is not None:
                return verdict
        if self.certificates is not None:
            return self.certificates.refusal(scope)
        return None

    def _address_refusal(self, scope: Mapping[str, Any]) -> str | None:
        try:
            address = client_address(scope, self.proxies, self.header)
        except UnknownClient as exc:
            return str(exc)
        if not _within(address, self.networks):
            return f"client address {address} is not allowed"
        return None


def client_access(endpoint: EndpointConfig, settings: Settings) -> ClientAccess | None:
    """What `endpoint` requires of its clients, or None when it allows any client."""
    if not endpoint.allow_networks and endpoint.client_ca is None:
        return None
    certificates = (
        ClientCertificates(endpoint.client_ca_pem, endpoint.client_subjects)
        if endpoint.client_ca is not None
        else None
    )
    return ClientAccess(
        endpoint.allow_networks,
        proxies=settings.trusted_proxies,
        header=settings.client_address_header,
        certificates=certificates,
    )

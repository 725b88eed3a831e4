"""Certificates that tests replace under a running receiver, and what its clients then see."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from receiver.certs import DevCertificates
from receiver.testing import ReceiverProcess

__all__ = [
    "LISTENERS",
    "copy_certificates",
    "fingerprint",
    "key_lines",
    "mount_certificates",
    "replace_file",
    "swap_mount",
    "trusted_by",
    "write_certificates",
]


def write_certificates(
    directory: Path, key_type: trustme.KeyType = trustme.KeyType.ECDSA
) -> DevCertificates:
    """A fresh CA and a localhost certificate with a key of `key_type`, as PEM files."""
    paths = DevCertificates.in_dir(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(key_type=key_type)
    issued = ca.issue_cert("localhost", "127.0.0.1", key_type=key_type)
    ca.cert_pem.write_to_path(str(paths.ca))
    paths.cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(paths.key))
    return paths


def copy_certificates(certs: DevCertificates, directory: Path) -> DevCertificates:
    """A copy of `certs` in `directory`, for a test to replace under a running receiver."""
    copy = DevCertificates.in_dir(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("ca", "cert", "key"):
        shutil.copy(getattr(certs, name), getattr(copy, name))
    return copy


def mount_certificates(certs: DevCertificates, directory: Path) -> DevCertificates:
    """`certs` laid out like a Kubernetes secret volume: cert and key link through `..data`."""
    mounted = DevCertificates.in_dir(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(certs.ca, mounted.ca)
    swap_mount(mounted, certs, "..v1")
    for path in (mounted.cert, mounted.key):
        path.symlink_to(Path("..data") / path.name)
    return mounted


def swap_mount(mounted: DevCertificates, certs: DevCertificates, version: str) -> None:
    """Point `..data` at a new `version` directory holding the pair of `certs`, in one rename
    (how the kubelet updates a secret volume)."""
    directory = mounted.cert.parent
    (directory / version).mkdir()
    shutil.copy(certs.cert, directory / version / mounted.cert.name)
    shutil.copy(certs.key, directory / version / mounted.key.name)
    link = directory / "..data_tmp"
    link.symlink_to(version)
    os.replace(link, directory / "..data")


def replace_file(path: Path, data: bytes) -> None:
    """Write `path` the way careful tools do: a temporary file, then one atomic rename."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


LISTENERS = frozenset({"webhooks", "admin"})
"""A receiver's TLS listeners: the webhook port and the admin listener, one certificate."""


def trusted_by(receiver: ReceiverProcess, ca: Path) -> frozenset[str]:
    """Which of `receiver`'s listeners (`LISTENERS`) give a new connection a certificate
    that `ca` vouches for (a TLS handshake each, no request)."""
    context = ssl.create_default_context(cafile=str(ca))
    ports = {"webhooks": receiver.port, "admin": receiver.admin_port}
    trusted = set()
    for name, port in ports.items():
        try:
            with (
                socket.create_connection((receiver.host, port), timeout=5.0) as raw,
                context.wrap_socket(raw, server_hostname=receiver.host),
            ):
                trusted.add(name)
        except ssl.SSLCertVerificationError:
            pass
    return frozenset(trusted)


def fingerprint(certs: DevCertificates) -> str:
    """The SHA-256 fingerprint of the leaf certificate, as the receiver logs it."""
    cert = x509.load_pem_x509_certificate(certs.cert.read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex(":")


def key_lines(certs: DevCertificates) -> list[str]:
    """The base64 lines of the private key: none of them may ever appear in a log."""
    return [line for line in certs.key.read_text().splitlines() if not line.startswith("-----")]

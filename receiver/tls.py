"""The server's TLS context: TLS 1.2 or newer, strong ciphers, reloadable certificates.

Certificates reload on SIGHUP (`ServerTLS.reload`) and, with `watch_certificate_files`, when
the files change on disk (certbot, cert-manager, a Kubernetes secret's `..data` swap).

When endpoints require client certificates (`client_ca`), the context asks every client for
one (`CERT_OPTIONAL`: a client without one still connects, and the endpoints that require one
answer 403) and verifies a certificate sent against all those CAs; a certificate that does
not verify ends the handshake. Which endpoint accepts which CA is decided per request
(`receiver.access`). A reload swaps the server certificate in the same context, so the client
CAs, read once at start, stay.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from receiver.exceptions import ConfigError

__all__ = ["ServerTLS", "watch_certificate_files"]

log = logging.getLogger("receiver.tls")

FileStamp = tuple[int, int, int, int] | None
"""(st_ino, st_dev, st_mtime_ns, st_size) of a file, None when it cannot be stat'ed."""
FilesStamp = tuple[FileStamp, FileStamp]

# Forward-secret AEAD suites only, for TLS 1.2 (TLS 1.3 suites are always strong).
TLS12_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)


class ServerTLS:
    """One SSLContext shared by every connection; `reload` swaps the certificate in place."""

    def __init__(self, certfile: Path, keyfile: Path, *, client_cas: Sequence[bytes] = ()) -> None:
        self.certfile = certfile
        self.keyfile = keyfile
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
        ctx.set_ciphers(TLS12_CIPHERS)
        ctx.set_alpn_protocols(["http/1.1"])
        if client_cas:
            _verify_clients(ctx, client_cas)
        self.context = ctx
        self.key_type: str | None = None
        self.loaded_stamp: FilesStamp = (None, None)
        """`stamp()` as it was just before the certificate in use was loaded."""
        self.description = ""
        """Subject, expiry and fingerprint of the certificate in use."""
        self.not_after: float | None = None
        """When the certificate in use expires (unix time), if it could be read."""
        self.load()

    def stamp(self) -> FilesStamp:
        """Identity and version of the certificate and key files, symlinks followed."""
        return (_file_stamp(self.certfile), _file_stamp(self.keyfile))

    def load(self) -> None:
        """Load the certificate files into the context; ConfigError (context unchanged) if not."""
        # Stamped before reading: a change made while loading is seen as one at the next look.
        stamp = self.stamp()
        cert_pem = _read(self.certfile, "certificate")
        key_pem = _read(self.keyfile, "key")
        with _pinned(cert_pem, self.certfile) as cert, _pinned(key_pem, self.keyfile) as key:
            try:
                # A failed load_cert_chain can leave a context holding the new certificate
                # and no key (nothing served at all), so the pair is tried on a scratch
                # context first and the shared one only ever sees a pair that loads.
                ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
                key_type = _key_type(key_pem)
                if self.key_type is not None and key_type != self.key_type:
                    # OpenSSL keeps one certificate per key type in a context: the old one
                    # would go on being served to clients that prefer its suites.
                    raise ConfigError(
                        f"the new key is {key_type}, the running one {self.key_type}: "
                        "changing the key type needs a restart"
                    )
                self.context.load_cert_chain(cert, key)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"cannot load TLS certificate {self.certfile} with key {self.keyfile}: {exc}"
                ) from exc
        self.key_type = key_type
        self.loaded_stamp = stamp
        self.description, self.not_after = _describe_certificate(cert_pem)

    def reload(self) -> bool:
        """Load the certificate files again; new connections use them. False if that failed."""
        try:
            self.load()
        except ConfigError as exc:
            log.error("certificate reload failed, keeping the current one: %s", exc)
            return False
        log.info("certificate reloaded from %s: %s", self.certfile, self.description)
        return True


async def watch_certificate_files(tls: ServerTLS, interval: float) -> None:
    """Reload `tls` whenever its files change, looking every `interval` seconds; runs until
    cancelled.

    A rotation is rarely atomic for both files: the certificate may be replaced before its
    key, or a file may be missing for a moment. Such a reload fails and the current
    certificate stays; it is tried again at every look until it succeeds, and each failure is
    logged once per change of the files or of its reason, not at every look.
    """
    log.info(
        "reloading the certificate when %s or %s changes (checked every %gs)",
        tls.certfile,
        tls.keyfile,
        interval,
    )
    logged: tuple[FilesStamp, str] | None = None  # the failure last logged, and when
    while True:
        await asyncio.sleep(interval)
        stamp = tls.stamp()
        if stamp == tls.loaded_stamp:
            logged = None  # in step (unchanged, reloaded by SIGHUP, or the old files back)
            continue
        try:
            tls.load()
        except ConfigError as exc:
            reason = str(exc)
        except Exception as exc:
            # Not expected; but a watcher that dies would leave an expiring certificate.
            reason = f"{type(exc).__name__}: {exc}"
        else:
            logged = None
            log.info("certificate files changed, reloaded %s: %s", tls.certfile, tls.description)
            continue
        if logged != (stamp, reason):
            logged = (stamp, reason)
            log.error(
                "certificate files changed but cannot be loaded, keeping the current "
                "certificate (retrying every %gs): %s",
                interval,
                reason,
            )


def _verify_clients(ctx: ssl.SSLContext, client_cas: Sequence[bytes]) -> None:
    """Ask clients for a certificate and verify one sent against `client_cas` (PEM)."""
    ctx.verify_mode = ssl.CERT_OPTIONAL
    # An endpoint's client_ca may be the intermediate CA that issues its senders'
    # certificates, without its root: it is then the trust anchor.
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    for pem in client_cas:
        try:
            ctx.load_verify_locations(cadata=pem.decode("ascii"))
        except (ssl.SSLError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(f"cannot use a client_ca file as a CA: {exc}") from exc


def _file_stamp(path: Path) -> FileStamp:
    try:
        st = os.stat(path)  # follows symlinks, so a swapped `..data` link is a change
    except OSError:
        return None  # missing mid-rotation: a change, which the load then reports
    return (st.st_ino, st.st_dev, st.st_mtime_ns, st.st_size)


def _describe_certificate(cert_pem: bytes) -> tuple[str, float | None]:
    """Subject, expiry and SHA-256 fingerprint of the first certificate in a PEM chain; and
    its expiry (unix time)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        return f"(cannot describe it: {exc})", None
    subject = cert.subject.rfc4514_string() or "(empty subject)"
    not_after = cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    fingerprint = cert.fingerprint(hashes.SHA256()).hex(":")
    described = f"subject {subject}, not after {not_after}, SHA-256 {fingerprint}"
    return described, cert.not_valid_after_utc.timestamp()


def _read(path: Path, what: str) -> bytes:
    if not path.is_file():
        raise ConfigError(f"TLS {what} file not found: {path}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read TLS {what} file {path}: {exc.strerror}") from exc


@contextmanager
def _pinned(data: bytes, path: Path) -> Iterator[str]:
    """A path that reads exactly `data`: an in-memory file on Linux, so the trial load and
    the real one see the same bytes however the file changes meanwhile; elsewhere `path`."""
    if not hasattr(os, "memfd_create") or not os.path.isdir("/proc/self/fd"):
        yield str(path)
        return
    with os.fdopen(os.memfd_create("receiver-tls", os.MFD_CLOEXEC), "w+b") as memory:
        memory.write(data)
        memory.flush()
        yield f"/proc/self/fd/{memory.fileno()}"


def _key_type(key_pem: bytes) -> str:
    """ "EC", "RSA", ... for a PEM private key; "unknown" when it cannot be read here."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return "unknown"
    return type(key).__name__.removeprefix("_").replace("PrivateKey", "") or "unknown"

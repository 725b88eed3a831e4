"""The server's TLS context: TLS 1.2 or newer, strong ciphers, reloadable certificates."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

from receiver.exceptions import ConfigError

__all__ = ["ServerTLS"]

log = logging.getLogger("receiver.tls")

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

    def __init__(self, certfile: Path, keyfile: Path) -> None:
        self.certfile = certfile
        self.keyfile = keyfile
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
        ctx.set_ciphers(TLS12_CIPHERS)
        ctx.set_alpn_protocols(["http/1.1"])
        self.context = ctx
        self.key_type: str | None = None
        self._load()

    def _load(self) -> None:
        for what, path in (("certificate", self.certfile), ("key", self.keyfile)):
            if not path.is_file():
                raise ConfigError(f"TLS {what} file not found: {path}")
        key_type = _key_type(self.keyfile)
        if self.key_type is not None and key_type != self.key_type:
            # OpenSSL keeps one certificate per key type in a context: the old one would
            # go on being served to clients that prefer its suites.
            raise ConfigError(
                f"the new key is {key_type}, the running one {self.key_type}: "
                "changing the key type needs a restart"
            )
        try:
            self.context.load_cert_chain(str(self.certfile), str(self.keyfile))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot load TLS certificate {self.certfile} with key {self.keyfile}: {exc}"
            ) from exc
        self.key_type = key_type

    def reload(self) -> bool:
        """Load the certificate files again; new connections use them. False if that failed."""
        try:
            self._load()
        except ConfigError as exc:
            log.error("certificate reload failed, keeping the current one: %s", exc)
            return False
        log.info("certificate reloaded from %s", self.certfile)
        return True


def _key_type(keyfile: Path) -> str:
    """ "EC", "RSA", ... for a PEM private key; "unknown" when it cannot be read here."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(keyfile.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return "unknown"  # load_cert_chain reports the real problem
    return type(key).__name__.removeprefix("_").replace("PrivateKey", "") or "unknown"

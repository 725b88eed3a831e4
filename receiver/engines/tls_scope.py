"""The ASGI TLS extension (`scope["extensions"]["tls"]`) for connections asked for a client
certificate.

Neither uvicorn nor hypercorn puts a client certificate in the request's scope; both engines
take it from the connection's SSL object once, after the handshake, and add this extension to
each of its requests. Only when the TLS context asks clients for a certificate (an endpoint has
`client_ca`): otherwise nothing is added and the request path is as it was.
"""

from __future__ import annotations

import ssl
from typing import Any

__all__ = ["tls_extension"]

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> dict[str, Any] | None:
    """The TLS extension for the connection of `ssl_object` (handshake done): the client's
    certificate as `client_cert_chain` (PEM, just that certificate: Python 3.11 does not give
    the chain the client sent), empty when it sent none; None if clients are not asked for a
    certificate."""
    if ssl_object is None or ssl_object.context.verify_mode == ssl.CERT_NONE:
        return None
    chain: list[str] = []
    name = None
    # With verification on, a certificate that did not verify ends the handshake; the
    # dict form is empty for one that was not verified, so this is only ever a verified one.
    if ssl_object.getpeercert():
        der = ssl_object.getpeercert(binary_form=True)
        if der:
            chain.append(ssl.DER_cert_to_PEM_cert(der))
            name = _subject(der)
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


def _subject(der: bytes) -> str | None:
    """The certificate's subject as RFC 4514 text."""
    from cryptography import x509

    try:
        return x509.load_der_x509_certificate(der).subject.rfc4514_string()
    except ValueError:
        return None

"""Pure request verification: no I/O, constant-time, a list of secrets so they can rotate."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping

from receiver.exceptions import ConfigError, VerificationError

__all__ = ["HTTP_WHITESPACE", "BasicCredentials", "HeaderAuth", "SecretSet"]


HTTP_WHITESPACE = b" \t"
"""What may surround a header value (RFC 9110 §5.5): not part of it, so never of a credential.
h11 (hypercorn) strips it and httptools (uvicorn) keeps trailing whitespace, so the compare
strips it itself and both engines accept the same requests."""


def _digest(value: bytes) -> bytes:
    # Comparing fixed-length digests keeps the compare time independent of the
    # presented token's length as well as its content.
    return hashlib.sha256(value).digest()


class SecretSet:
    """The accepted secrets of one endpoint; `verify` checks a presented token against all."""

    __slots__ = ("_digests",)

    def __init__(self, secrets: Iterable[str | bytes]) -> None:
        encoded = [s.encode() if isinstance(s, str) else bytes(s) for s in secrets]
        encoded = [s for s in encoded if s]
        if not encoded:
            raise ConfigError("no secret configured: refusing to accept unauthenticated requests")
        self._digests = tuple(_digest(s) for s in encoded)

    def __len__(self) -> int:
        return len(self._digests)

    def __repr__(self) -> str:
        return f"SecretSet(<{len(self._digests)} secret(s)>)"

    def matches(self, presented: bytes | None) -> bool:
        """True when `presented` equals one of the secrets; every secret is compared."""
        if not presented:
            return False
        candidate = _digest(presented)
        ok = False
        for digest in self._digests:
            ok |= hmac.compare_digest(candidate, digest)
        return ok

    def verify(self, presented: bytes | None) -> None:
        """Raise `VerificationError` unless `presented`, a header's value (less the spaces and
        tabs around it), is an accepted secret."""
        presented = (presented or b"").strip(HTTP_WHITESPACE)
        if not presented:
            raise VerificationError("missing token")
        if not self.matches(presented):
            raise VerificationError("wrong token")


class BasicCredentials:
    """Accepted `user:password` pairs for HTTP Basic authentication."""

    __slots__ = ("_secrets",)

    def __init__(self, users: Mapping[str, str]) -> None:
        self._secrets = SecretSet(f"{user}:{password}" for user, password in users.items())

    def verify(self, authorization: bytes | None) -> None:
        """Raise `VerificationError` unless `authorization` holds accepted Basic credentials."""
        authorization = (authorization or b"").strip(HTTP_WHITESPACE)
        if not authorization:
            raise VerificationError("missing Authorization header")
        scheme, _, encoded = authorization.partition(b" ")
        if scheme.lower() != b"basic":
            raise VerificationError("Authorization scheme is not Basic")
        try:
            decoded = base64.b64decode(encoded.strip(HTTP_WHITESPACE), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise VerificationError("malformed Basic credentials") from exc
        if not self._secrets.matches(decoded):
            raise VerificationError("wrong Basic credentials")


class HeaderAuth:
    """Credentials in a request header: accepted values of one header, and/or Basic users.

    A request passes when `header` holds one of `secrets`, or when `basic` is set and
    `Authorization` holds the Basic credentials of one of its users. Both checks are
    constant-time; messages never contain the presented value.
    """

    __slots__ = ("_basic", "_header", "_label", "_secrets")

    def __init__(
        self, header: str, secrets: SecretSet | None, basic: BasicCredentials | None = None
    ) -> None:
        if secrets is None and basic is None:
            raise ConfigError("no secret configured: refusing to accept unauthenticated requests")
        self._header = header.lower().encode("latin-1")
        self._label = header
        self._secrets = secrets
        self._basic = basic

    @property
    def header(self) -> bytes:
        """The lower-case name of the header whose value is compared with the secrets."""
        return self._header

    def verify(self, headers: Mapping[bytes, bytes]) -> None:
        """Raise `VerificationError` unless `headers` carry accepted credentials."""
        secrets, basic = self._secrets, self._basic
        presented = headers.get(self._header, b"").strip(HTTP_WHITESPACE)
        if secrets is not None and secrets.matches(presented):
            return
        if basic is not None:
            authorization = headers.get(b"authorization")
            if authorization or secrets is None:
                basic.verify(authorization)
                return
        if not presented:
            raise VerificationError(f"missing {self._label} header")
        raise VerificationError(f"wrong {self._label} value")

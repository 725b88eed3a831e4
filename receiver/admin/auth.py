"""Who may use the admin listener: bearer tokens, browser sessions and CSRF tokens.

With no token configured the listener serves loopback only (`check_admin_binding`), and every
local user may use it. With tokens (RECEIVER_ADMIN_TOKEN, or one per line in the file
RECEIVER_ADMIN_TOKEN_FILE, so that a rotation accepts both), a request needs
`Authorization: Bearer <token>` or the session cookie the console's sign-in sets, which holds
its time of issue and a digest of it keyed with the token, never the token: it is good for
`SESSION_SECONDS` on every process that has the token, and rotating the token ends it at once.
Comparisons take constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence

from receiver.access import is_loopback
from receiver.exceptions import ConfigError

__all__ = ["SESSION_COOKIE", "SESSION_SECONDS", "AdminAuth", "check_admin_binding"]

SESSION_COOKIE = "receiver_admin"
SESSION_SECONDS = 12 * 3600
"""How long a console session lasts after sign-in (the server refuses it after that)."""


def check_admin_binding(host: str, tokens: Sequence[str]) -> None:
    """Refuse an admin listener anyone on the network could use: one off loopback needs a
    token."""
    if not tokens and not is_loopback(host):
        raise ConfigError(
            f"the admin listener on {host} would be reachable from the network without a token: "
            "set RECEIVER_ADMIN_TOKEN or RECEIVER_ADMIN_TOKEN_FILE (e.g. from `openssl rand -hex "
            "32`), or keep --admin-host on 127.0.0.1"
        )


def _digest(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class AdminAuth:
    """The tokens in force, and the keys this process signs sessions and forms with."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self._tokens = [t.encode() for t in tokens]
        self._key = secrets.token_bytes(32)
        """Signs the CSRF tokens; new at each start, so a restart asks forms to be reloaded."""

    @property
    def required(self) -> bool:
        """Whether requests must show a token (one is configured)."""
        return bool(self._tokens)

    def token_matches(self, offered: str) -> bool:
        """Whether `offered` is one of the tokens (constant time for each)."""
        given = offered.encode()
        found = False
        for token in self._tokens:
            found |= hmac.compare_digest(token, given)
        return found

    def bearer_matches(self, authorization: str | None) -> bool:
        """Whether an `Authorization` header carries a valid bearer token."""
        if not authorization:
            return False
        scheme, _, value = authorization.partition(" ")
        return scheme.lower() == "bearer" and self.token_matches(value.strip())

    def session_for(self, token: str, *, now: float | None = None) -> str:
        """The session cookie's value for `token` signed in at `now`: the time, and a digest
        of it keyed with the token."""
        issued = int(time.time() if now is None else now)
        return f"{issued}.{_digest(token.encode(), b'receiver admin session:%d' % issued)}"

    def session_matches(self, cookie: str | None, *, now: float | None = None) -> bool:
        """Whether a session cookie was made from one of the tokens less than
        `SESSION_SECONDS` ago."""
        issued_text, _, digest = (cookie or "").partition(".")
        if not issued_text.isdigit() or not digest:
            return False
        issued = int(issued_text)
        age = (time.time() if now is None else now) - issued
        if not -60 <= age <= SESSION_SECONDS:  # a minute's grace for clocks apart
            return False
        message = b"receiver admin session:%d" % issued
        found = False
        for token in self._tokens:
            found |= hmac.compare_digest(_digest(token, message), digest)
        return found

    def allows(self, authorization: str | None, cookie: str | None) -> bool:
        """Whether a request with these credentials may use the listener."""
        return (
            not self.required
            or self.bearer_matches(authorization)
            or (self.session_matches(cookie))
        )

    def csrf_token(self, session: str | None) -> str:
        """The token a form of `session` (None: no sign-in) must send back."""
        return _digest(self._key, b"csrf:" + (session or "").encode())

    def csrf_matches(self, session: str | None, offered: str | None) -> bool:
        """Whether a form's CSRF token is the one made for its session."""
        return bool(offered) and hmac.compare_digest(self.csrf_token(session), offered or "")

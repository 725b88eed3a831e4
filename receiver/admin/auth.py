"""Who may use the admin listener: bearer tokens, browser sessions and CSRF tokens.

With no token configured the listener serves loopback only (`check_admin_binding`), and every
local user may use it. With tokens (RECEIVER_ADMIN_TOKEN, or one per line in the file
RECEIVER_ADMIN_TOKEN_FILE, so that a rotation accepts both), a request needs
`Authorization: Bearer <token>` or the session cookie the console's sign-in sets, which holds
a keyed digest of the token, never the token. Comparisons take constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from receiver.access import is_loopback
from receiver.exceptions import ConfigError

__all__ = ["SESSION_COOKIE", "AdminAuth", "check_admin_binding"]

SESSION_COOKIE = "receiver_admin"


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

    def session_for(self, token: str) -> str:
        """The session cookie's value for a signed-in `token`: a keyed digest of it."""
        return _digest(token.encode(), b"receiver admin session")

    def session_matches(self, cookie: str | None) -> bool:
        """Whether a session cookie was made from one of the tokens."""
        if not cookie:
            return False
        found = False
        for token in self._tokens:
            found |= hmac.compare_digest(self.session_for(token.decode()), cookie)
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

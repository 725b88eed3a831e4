"""Console sessions: a cookie holds its time of issue and a digest keyed with the token; the
server refuses it once `SESSION_SECONDS` have passed, or once the token is rotated away."""

from __future__ import annotations

from receiver.admin.auth import SESSION_SECONDS, AdminAuth

TOKEN = "0123456789abcdef0123456789abcdef"
NOW = 1_800_000_000.0


def test_a_session_is_good_until_it_expires() -> None:
    auth = AdminAuth([TOKEN])
    cookie = auth.session_for(TOKEN, now=NOW)
    assert TOKEN not in cookie
    assert auth.session_matches(cookie, now=NOW)
    assert auth.session_matches(cookie, now=NOW + SESSION_SECONDS)
    assert not auth.session_matches(cookie, now=NOW + SESSION_SECONDS + 1)
    assert not auth.session_matches(cookie, now=NOW - 3600)  # issued in the future


def test_any_process_with_the_token_accepts_it_and_a_rotation_ends_it() -> None:
    cookie = AdminAuth([TOKEN]).session_for(TOKEN, now=NOW)
    assert AdminAuth(["x" * 16, TOKEN]).session_matches(cookie, now=NOW)
    assert not AdminAuth(["x" * 16]).session_matches(cookie, now=NOW)


def test_a_forged_or_malformed_cookie_is_refused() -> None:
    auth = AdminAuth([TOKEN])
    issued, _, digest = auth.session_for(TOKEN, now=NOW).partition(".")
    later = int(issued) + SESSION_SECONDS  # moving the time forward breaks the digest
    for cookie in (f"{later}.{digest}", f"{issued}.{digest[:-1]}0", digest, "", None, "1.", ".x"):
        assert not auth.session_matches(cookie, now=NOW), cookie

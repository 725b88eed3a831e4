"""Pure pieces: verification, configuration, redaction, backoff, the SQLite inbox itself."""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import time
from pathlib import Path

import pytest

from receiver.auth import BasicCredentials, SecretSet
from receiver.config import check_secrets, load_settings
from receiver.dispatcher import backoff_delay
from receiver.exceptions import ConfigError, StorageError, VerificationError
from receiver.inbox.models import Attempt, Completion, NewEvent, State
from receiver.inbox.sqlite import SqliteInbox, inbox_path
from receiver.logs import (
    PeerNoiseFilter,
    RateLimitedLog,
    RedactingFilter,
    redact_phone_numbers,
)


class TestSecretSet:
    def test_every_rotated_secret_is_accepted(self) -> None:
        secrets = SecretSet(["old", "new"])
        secrets.verify(b"old")
        secrets.verify(b"new")
        assert len(secrets) == 2

    @pytest.mark.parametrize(
        ("token", "message"),
        [
            (None, "missing token"),
            (b"", "missing token"),
            (b"ol", "wrong token"),
            (b"OLD", "wrong token"),
        ],
    )
    def test_rejections_say_why(self, token: bytes | None, message: str) -> None:
        with pytest.raises(VerificationError, match=message):
            SecretSet(["old"]).verify(token)

    def test_no_secret_never_fails_open(self) -> None:
        with pytest.raises(ConfigError, match="no secret configured"):
            SecretSet(["", ""])

    def test_repr_hides_the_secrets(self) -> None:
        assert "hunter2" not in repr(SecretSet(["hunter2"]))


class TestBasicCredentials:
    def header(self, pair: str) -> bytes:
        return b"Basic " + base64.b64encode(pair.encode())

    def test_accepts_configured_users(self) -> None:
        basic = BasicCredentials({"aladdin": "opensesame", "wfm": "s3cret"})
        basic.verify(self.header("aladdin:opensesame"))
        basic.verify(self.header("wfm:s3cret"))

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (None, "missing Authorization"),
            (b"Bearer abc", "not Basic"),
            (b"Basic !!!", "malformed"),
            (b"Basic " + base64.b64encode(b"aladdin:wrong"), "wrong Basic"),
        ],
    )
    def test_rejections(self, value: bytes | None, message: str) -> None:
        with pytest.raises(VerificationError, match=message):
            BasicCredentials({"aladdin": "opensesame"}).verify(value)


class TestSettings:
    def test_precedence_is_defaults_file_environment_options(self, tmp_path: Path) -> None:
        config = tmp_path / "receiver.toml"
        config.write_text('[server]\nport = 8443\nengine = "hypercorn"\nhost = "::"\n')
        env = {"RECEIVER_PORT": "9443", "RECEIVER_ENREACH_SECRET": "s"}
        settings = load_settings(config_file=config, env=env, overrides={"host": "127.0.0.1"})
        assert (settings.port, settings.engine, settings.host) == (9443, "hypercorn", "127.0.0.1")
        assert settings.workers == 16  # default untouched
        assert [e.path for e in settings.endpoints] == ["/enreach"]

    def test_cert_watch_interval_comes_from_each_source_in_turn(self, tmp_path: Path) -> None:
        config = tmp_path / "receiver.toml"
        config.write_text("[server]\ncert_watch_interval = 2\n")
        env = {"RECEIVER_CERT_WATCH_INTERVAL": "0.5"}
        assert load_settings(env={}).cert_watch_interval == 5.0
        assert load_settings(config_file=config, env={}).cert_watch_interval == 2.0
        assert load_settings(config_file=config, env=env).cert_watch_interval == 0.5
        off = load_settings(config_file=config, env=env, overrides={"cert_watch_interval": "0"})
        assert off.cert_watch_interval == 0.0

    def test_default_endpoint_reads_its_secret_from_a_file(self, tmp_path: Path) -> None:
        secret = tmp_path / "secret"
        secret.write_text("one\ntwo\n")
        settings = load_settings(env={"RECEIVER_ENREACH_SECRET_FILE": str(secret)})
        endpoint = settings.endpoints[0]
        assert endpoint.secrets is not None and len(endpoint.secrets) == 2

    def test_unreadable_secret_file_is_a_config_error(self, tmp_path: Path) -> None:
        settings = load_settings(env={"RECEIVER_ENREACH_SECRET_FILE": str(tmp_path / "missing")})
        with pytest.raises(ConfigError, match="cannot read secret file"):
            check_secrets(settings)  # at start-up; `receiver inbox` needs no secret

    @pytest.mark.parametrize(
        ("env", "message"),
        [
            ({"RECEIVER_ENGINE": "gunicorn"}, "unknown engine"),
            ({"RECEIVER_PORT": "70000"}, "out of range"),
            ({"RECEIVER_MAX_ATTEMPTS": "0"}, "at least 1"),
            ({"RECEIVER_DISPATCH": "maybe"}, "not a valid bool"),
            ({"RECEIVER_CERT_WATCH_INTERVAL": "-1"}, r"cert_watch_interval must be 0 .* not -1"),
            ({"RECEIVER_CERT_WATCH_INTERVAL": "nan"}, "cert_watch_interval must be 0"),
            ({"RECEIVER_CERT_WATCH_INTERVAL": "inf"}, "cert_watch_interval must be 0"),
            ({"RECEIVER_CERT_WATCH_INTERVAL": "5s"}, "cert_watch_interval = '5s' is not a valid"),
        ],
    )
    def test_invalid_values_are_named(self, env: dict[str, str], message: str) -> None:
        with pytest.raises(ConfigError, match=message):
            load_settings(env=env)

    def test_two_endpoints_on_one_path_are_refused(self, tmp_path: Path) -> None:
        config = tmp_path / "receiver.toml"
        config.write_text(
            '[[endpoints]]\nname = "a"\npath = "/x"\nsecret_env = "S"\n'
            '[[endpoints]]\nname = "b"\npath = "/x"\nsecret_env = "S"\n'
        )
        with pytest.raises(ConfigError, match="share a path"):
            load_settings(config_file=config, env={"S": "v"})


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("inbox.db", "inbox.db"),
        ("sqlite:///data/inbox.db", "data/inbox.db"),
        ("sqlite:////var/lib/receiver/inbox.db", "/var/lib/receiver/inbox.db"),
    ],
)
def test_inbox_urls(url: str, path: str) -> None:
    assert inbox_path(url) == Path(path)


@pytest.mark.parametrize("url", ["redis://localhost/0", "sqlite://host/x.db", "sqlite:///"])
def test_unsupported_inbox_urls(url: str) -> None:
    with pytest.raises(ConfigError):
        inbox_path(url)


class TestRedaction:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("caller +358501231234", "caller +**********34"),
            ("called 040 123 4567", "called *** *** **67"),
            (
                "call 9cae633f-68d0-4315-8b9a-b83c7673d8dc",
                "call 9cae633f-68d0-4315-8b9a-b83c7673d8dc",
            ),
            ("at 2018-01-01T08:01:23.45", "at 2018-01-01T08:01:23.45"),
            ("queue 12345", "queue 12345"),
        ],
    )
    def test_phone_numbers(self, text: str, expected: str) -> None:
        assert redact_phone_numbers(text) == expected

    def test_filter_masks_secrets_and_numbers_in_args_and_tracebacks(self) -> None:
        record = logging.LogRecord(
            "x", logging.INFO, __file__, 1, "token %s from %s", ("hunter2", "+358501231234"), None
        )
        try:
            raise ValueError("hunter2 +358401112223")
        except ValueError:
            import sys

            record.exc_info = sys.exc_info()
        RedactingFilter(secrets=["hunter2"]).filter(record)
        assert record.getMessage() == "token [secret] from +**********34"
        assert record.exc_text is not None
        assert "hunter2" not in record.exc_text and "358401112223" not in record.exc_text

    def test_numbers_can_be_kept_when_asked(self) -> None:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "from +358501231234", None, None)
        RedactingFilter(phone_numbers=False).filter(record)
        assert record.getMessage() == "from +358501231234"


def test_rate_limited_log_says_how_much_it_dropped(caplog: pytest.LogCaptureFixture) -> None:
    limited = RateLimitedLog(logging.getLogger("t"), burst=2, interval=0.2)
    with caplog.at_level(logging.WARNING):
        for i in range(5):
            limited.warning("attempt %d", i)
        time.sleep(0.25)
        limited.warning("later")
    assert [r.getMessage() for r in caplog.records] == [
        "attempt 0", "attempt 1", "(3 similar messages suppressed)", "later",
    ]  # fmt: skip


def test_engine_warnings_are_limited_per_message_and_errors_always_pass() -> None:
    noise = PeerNoiseFilter(burst=2, interval=0.2)

    def record(msg: str, level: int = logging.WARNING) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.error", level, __file__, 1, msg, None, None)

    passed = [r.getMessage() for r in map(record, ["bad"] * 5 + ["other"]) if noise.filter(r)]
    assert passed == ["bad", "bad", "other"]
    assert noise.filter(record("bad", logging.ERROR))
    time.sleep(0.25)
    later = record("bad")
    assert noise.filter(later)
    assert later.getMessage() == "bad (3 similar messages suppressed)"


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(n, 1.0, 30.0, rng) for n in range(1, 9)]
    for n, delay in enumerate(delays, start=1):
        ceiling = min(30.0, 2.0 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(d, 6) for d in delays}) == len(delays)


def event(key: str, source: str = "enreach", order: str | None = None) -> NewEvent:
    return NewEvent(source, key, "UserAvailability", order, b'{"Id": "%s"}' % key.encode())


class TestSqliteInbox:
    def run(self, tmp_path: Path, body: object) -> None:
        async def main() -> None:
            inbox = SqliteInbox(tmp_path / "inbox.db", retention_days=1)
            await inbox.open()
            try:
                await body(inbox)  # type: ignore[operator]
            finally:
                await inbox.close()

        asyncio.run(main())

    def test_concurrent_duplicates_store_once(self, tmp_path: Path) -> None:
        async def body(inbox: SqliteInbox) -> None:
            results = await asyncio.gather(*(inbox.append(event("a")) for _ in range(10)))
            assert sorted(results) == [False] * 9 + [True]
            assert await inbox.append(event("a", source="other")) is True  # per source

        self.run(tmp_path, body)

    def test_claim_returns_arrival_order_and_marks_in_progress(self, tmp_path: Path) -> None:
        async def body(inbox: SqliteInbox) -> None:
            await asyncio.gather(*(inbox.append(event(f"k{i}")) for i in range(5)))
            claimed = await inbox.claim("default", 3)
            assert [e.dedup_key for e in claimed] == ["k0", "k1", "k2"]
            assert {e.state for e in claimed} == {State.IN_PROGRESS}
            assert [e.dedup_key for e in await inbox.claim("default", 10)] == ["k3", "k4"]
            assert await inbox.recover() == 0  # its own claims are not another process's
            assert await inbox.claim("default", 10) == []

        self.run(tmp_path, body)

    def test_purge_removes_only_done_events_past_retention(self, tmp_path: Path) -> None:
        async def body(inbox: SqliteInbox) -> None:
            for i in range(5):
                await inbox.append(event(f"k{i}"))
            claimed = await inbox.claim("default", 5)
            now = time.time()
            await inbox.complete([Completion(e.id, "default", now, 0.0) for e in claimed[:2]])
            await inbox.bury(claimed[2].key, Attempt(3, now, 0.0, "dead", "boom"))
            assert await inbox.purge() == 0  # nothing is old yet
            assert await inbox.purge(now=time.time() + 2 * 86400, chunk=2) == 2
            # A purged key is no longer a duplicate; a kept one still is.
            assert await inbox.append(event("k0")) is True
            assert await inbox.append(event("k2")) is False

        self.run(tmp_path, body)

    def test_writes_after_close_fail_cleanly(self, tmp_path: Path) -> None:
        async def main() -> None:
            inbox = SqliteInbox(tmp_path / "inbox.db")
            await inbox.open()
            await inbox.close()
            with pytest.raises(StorageError, match="not open"):
                inbox.append(event("x"))

        asyncio.run(main())

    def test_only_one_dispatcher_per_file(self, tmp_path: Path) -> None:
        first = SqliteInbox(tmp_path / "inbox.db")
        second = SqliteInbox(tmp_path / "inbox.db")
        assert first.try_lock_dispatch() is True
        assert second.try_lock_dispatch() is False

        async def close_first() -> None:
            await first.close()

        asyncio.run(close_first())
        assert second.try_lock_dispatch() is True  # closing releases the lock


def test_the_hypercorn_guard_refuses_to_serve_if_a_seam_moved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hypercorn.asyncio.run as hypercorn_run
    import hypercorn.protocol as hypercorn_protocol
    from hypercorn.asyncio.tcp_server import TCPServer
    from hypercorn.protocol.h11 import H11Protocol

    from receiver.engines.hypercorn_guard import HTTP11Only, guarded_server, installed

    def seams() -> tuple[object, object]:
        return getattr(hypercorn_run, "TCPServer"), getattr(hypercorn_protocol, "H11Protocol")  # noqa: B009 - not re-exported

    server = guarded_server(1.0)
    with installed(server):
        assert seams() == (server, HTTP11Only)
    assert seams() == (TCPServer, H11Protocol)
    monkeypatch.setattr(hypercorn_protocol, "H11Protocol", object)
    with pytest.raises(RuntimeError, match="H11Protocol"), installed(server):
        pass
    assert seams() == (TCPServer, object)  # nothing was swapped


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:s3cret@db:5432/inbox", "postgresql://u:***@db:5432/inbox"),
        (
            "postgresql://u@db/inbox?sslmode=require&password=s3cret",
            "postgresql://u@db/inbox?sslmode=require&password=***",
        ),
        ("postgresql://u@db/inbox?sslmode=require", "postgresql://u@db/inbox?sslmode=require"),
    ],
)
def test_a_postgresql_url_is_shown_without_its_password_and_refused_with_one(
    url: str, shown: str
) -> None:
    from receiver.inbox.postgres_schema import check_url, describe_url

    assert describe_url(url) == shown
    if "s3cret" in url:
        with pytest.raises(ConfigError, match="PGPASSWORD") as refused:
            check_url(url)
        assert "s3cret" not in str(refused.value)
    else:
        check_url(url)

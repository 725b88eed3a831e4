"""Several subscribers per event, in one process: each has its own deliveries, retries, dead
letters and per-call order; the subscriber config is checked with one-line errors."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from handlers import EnreachHandler
from handlers.enreach import EnreachEvent
from receiver.auth import SecretSet
from receiver.catalogs.samples import enreach_sample
from receiver.config import EndpointConfig, Settings, load_settings
from receiver.dispatcher import Dispatcher, DispatchPolicy, Subscription
from receiver.exceptions import ConfigError, PermanentError, RetryLater, StorageError
from receiver.inbox.base import InboxOptions, open_inbox
from receiver.inbox.models import NewEvent, State, StoredEvent
from receiver.inbox.sqlite import SqliteInbox
from receiver.inbox.sqlite_admin import SqliteAdmin
from receiver.runtime import Routing, Runtime, load_subscriptions
from tests.support.inbox import run

FAST = DispatchPolicy(backoff_base=0.01, backoff_max=0.05, poll_interval=0.05, max_attempts=50)


def call_event(key: str, call: str, event_type: str = "QueueCallInArrived") -> NewEvent:
    body = b'{"Id": "%s", "CallId": "%s"}' % (key.encode(), call.encode())
    return NewEvent("enreach", key, event_type, call, body)


class Recording:
    """Keeps the dedup keys it handled, in order; fails while `failing` is set."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.handled: list[str] = []
        self.attempts: list[tuple[str, float]] = []
        self.finals: list[tuple[str, bool]] = []
        self.error = error

    async def handle(self, event: StoredEvent) -> None:
        self.attempts.append((event.dedup_key, time.monotonic()))
        if self.error is not None:
            raise self.error
        self.handled.append(event.dedup_key)

    async def failed(self, event: StoredEvent, error: BaseException, *, final: bool) -> None:
        self.finals.append((event.dedup_key, final))


async def until(condition: Any, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def dispatcher(inbox: SqliteInbox, handlers: Mapping[str, Any], policy: DispatchPolicy) -> Any:
    subscriptions = [Subscription(name, default=h) for name, h in handlers.items()]
    return Dispatcher(inbox, subscriptions, policy=policy)


def test_a_failing_subscriber_delays_repeats_and_buries_nothing_of_another(
    tmp_path: Path,
) -> None:
    crm = Recording(error=RuntimeError("CRM is down"))
    sms = Recording()
    keys = [f"e{i}" for i in range(60)]

    async def body(inbox: SqliteInbox) -> None:
        dispatch = dispatcher(inbox, {"crm": crm, "sms": sms}, FAST)
        await dispatch.start()
        for i, key in enumerate(keys):
            await inbox.append(call_event(key, f"call-{i % 3}"), ["crm", "sms"])
        await until(lambda: len(sms.handled) == len(keys))
        assert sms.handled == keys  # once each, in arrival order, while crm keeps failing
        assert len(crm.attempts) >= 3 and not crm.handled
        crm.error = None  # the CRM is back: it catches up, in per-call order
        await until(lambda: len(crm.handled) == len(keys))
        for call in ("call-0", "call-1", "call-2"):
            mine = [k for i, k in enumerate(keys) if f"call-{i % 3}" == call]
            assert [k for k in crm.handled if k in mine] == mine
        assert sorted(crm.handled) == sorted(keys)
        assert sms.handled == keys  # nothing repeated for sms
        await dispatch.stop(1.0)
        stats = {name: s.stats for name, s in dispatch.subscribers.items()}
        assert stats["sms"].failed_attempts == 0 and stats["crm"].failed_attempts >= 3

    run(tmp_path, body)
    admin = SqliteAdmin(tmp_path / "inbox.db")
    try:
        record = admin.get("1")
        assert record is not None
        by_subscriber = {d.subscriber: d for d in record.deliveries}
        assert {d.state for d in by_subscriber.values()} == {State.DONE}
        crm_history = [a for a in record.history if a.subscriber == "crm"]
        assert [a.outcome for a in crm_history][-1] == "done"
        assert {a.outcome for a in crm_history[:-1]} == {"retry"}
        assert all("RuntimeError: CRM is down" in (a.error or "") for a in crm_history[:-1])
        assert "Traceback (most recent call last)" in (crm_history[0].error or "")
        assert [a.outcome for a in record.history if a.subscriber == "sms"] == ["done"]
    finally:
        admin.close()


def test_retry_later_waits_at_least_its_retry_after(tmp_path: Path) -> None:
    handler = Recording(error=RetryLater("HTTP 429", retry_after=0.4))

    # Retry-After counts up to the longest backoff (a server asking for an hour gets backoff_max).
    policy = DispatchPolicy(backoff_base=0.01, backoff_max=1.0, poll_interval=0.05)

    async def body(inbox: SqliteInbox) -> None:
        dispatch = dispatcher(inbox, {"api": handler}, policy)
        await dispatch.start()
        await inbox.append(call_event("k", "c"), ["api"])
        await until(lambda: len(handler.attempts) == 1)
        await asyncio.sleep(0.3)
        assert len(handler.attempts) == 1  # backoff alone would have retried by now
        handler.error = None
        await until(lambda: handler.handled == ["k"])
        gap = handler.attempts[1][1] - handler.attempts[0][1]
        assert gap >= 0.39
        await dispatch.stop(1.0)

    run(tmp_path, body)


def test_a_permanent_error_is_a_dead_letter_at_once_without_a_traceback(tmp_path: Path) -> None:
    handler = Recording(error=PermanentError("HTTP 400 from https://crm.example/: bad field"))

    async def body(inbox: SqliteInbox) -> None:
        dispatch = dispatcher(inbox, {"crm": handler}, FAST)
        await dispatch.start()
        await inbox.append(call_event("k", "c"), ["crm"])
        await until(lambda: handler.finals == [("k", True)])
        await dispatch.stop(1.0)

    run(tmp_path, body)
    admin = SqliteAdmin(tmp_path / "inbox.db")
    try:
        record = admin.get("1")
        assert record is not None
        [attempt] = record.history
        assert (attempt.outcome, attempt.number) == ("dead", 1)
        assert attempt.error == "PermanentError: HTTP 400 from https://crm.example/: bad field"
    finally:
        admin.close()


class Noting(EnreachHandler):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[State] = []

    async def on_any(self, event: EnreachEvent) -> None:
        raise RuntimeError("not yet")

    async def on_error(
        self, event: EnreachEvent | None, stored: StoredEvent, error: BaseException
    ) -> None:
        self.seen.append(stored.state)


def test_on_error_is_told_which_failure_was_the_last(tmp_path: Path) -> None:
    handler = Noting()
    policy = DispatchPolicy(backoff_base=0.01, backoff_max=0.01, max_attempts=3)

    async def body(inbox: SqliteInbox) -> None:
        dispatch = dispatcher(inbox, {"default": handler}, policy)
        await dispatch.start()
        body = orjson.dumps(enreach_sample("QueueCallInArrived", seed=1))
        await inbox.append(NewEvent("enreach", "k", "QueueCallInArrived", "c", body))
        await until(lambda: len(handler.seen) == 3)
        await dispatch.stop(1.0)

    run(tmp_path, body)
    assert handler.seen == [State.IN_PROGRESS, State.IN_PROGRESS, State.DEAD]


def test_a_subscriber_without_a_handler_for_a_source_makes_dead_letters_that_say_so(
    tmp_path: Path,
) -> None:
    handler = Recording()

    async def body(inbox: SqliteInbox) -> None:
        subscription = Subscription("crm", {"buzzeasy": handler})
        dispatch = Dispatcher(inbox, [subscription], policy=FAST)
        await dispatch.start()
        await inbox.append(call_event("k", "c"), ["crm"])  # from enreach
        admin = SqliteAdmin(tmp_path / "inbox.db")
        try:
            for _ in range(500):
                record = admin.get("1")
                if record is not None and record.deliveries[0].state == State.DEAD:
                    break
                await asyncio.sleep(0.01)
            assert record is not None
            assert record.deliveries[0].last_error == (
                "PermanentError: subscriber 'crm' has no handler for events from 'enreach'"
            )
        finally:
            admin.close()
        await dispatch.stop(1.0)

    run(tmp_path, body)


CONFIG = """
[[endpoints]]
name = "enreach"
kind = "enreach"
secret_env = "RECEIVER_ENREACH_SECRET"
{subscribers}
"""

SECRETS = {
    "RECEIVER_ENREACH_SECRET": "token-0123456789",
    "FORWARD_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}


def settings_for(tmp_path: Path, subscribers: str, **overrides: Any) -> Any:
    path = tmp_path / "receiver.toml"
    path.write_text(CONFIG.format(subscribers=subscribers))
    return load_settings(config_file=path, env=SECRETS, overrides=overrides)


def test_subscribers_are_read_from_the_config_with_their_filters(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path,
        """
[[endpoints.subscribers]]
name = "crm"
handler = "handlers:EnreachHandler"
events = ["QueueCall*", "UserStatus"]
concurrency = 4

[[endpoints.subscribers]]
name = "wallboard"
forward = "https://127.0.0.1:9/events"
secret_env = "FORWARD_SECRET"
timeout = 5
""",
    )
    [endpoint] = settings.endpoints
    crm, wallboard = endpoint.subscribers
    assert (crm.name, crm.events, crm.concurrency) == ("crm", ("QueueCall*", "UserStatus"), 4)
    assert (wallboard.forward, wallboard.timeout) == ("https://127.0.0.1:9/events", 5.0)
    assert wallboard.secrets == (SECRETS["FORWARD_SECRET"],)
    routes = Routing(endpoint.subscribers)
    assert routes("QueueCallInArrived") == ("crm", "wallboard")
    assert routes("UserStatus") == ("crm", "wallboard")
    assert routes("CallbackChanged") == ("wallboard",)
    subscriptions = {s.name: s for s in load_subscriptions(settings)}
    assert subscriptions["crm"].workers == 4
    assert type(subscriptions["wallboard"].handlers["enreach"]).__name__ == "ForwardHandler"


@pytest.mark.parametrize(
    ("subscribers", "message"),
    [
        (
            '[[endpoints.subscribers]]\nname = "a"\nhandler = "x:y"\nforward = "https://h/"',
            "subscriber 'a': give either handler = 'module:object' or forward = 'https://...'",
        ),
        (
            '[[endpoints.subscribers]]\nname = "a"',
            "subscriber 'a': give either handler = 'module:object' or forward = 'https://...'",
        ),
        (
            '[[endpoints.subscribers]]\nname = "a"\nhandler = "x:y"\n'
            '[[endpoints.subscribers]]\nname = "a"\nhandler = "x:z"',
            "two subscribers are named 'a'",
        ),
        (
            '[[endpoints.subscribers]]\nname = "a"\nhandler = "x:y"\nretries = 3',
            "unknown key(s) retries",
        ),
        (
            '[[endpoints.subscribers]]\nname = "a"\nforward = "https://h/"\nsecret = "whsec_x"',
            "'secret' would put a secret in the config file",
        ),
        (
            '[[endpoints.subscribers]]\nname = "a"\nforward = "https://h/"',
            "a forwarding subscriber signs what it sends: give secret_env or secret_file",
        ),
        (
            '[[endpoints.subscribers]]\nname = "a"\nhandler = "x:y"\nevents = []',
            "events is empty",
        ),
        (
            '[[endpoints.subscribers]]\nname = "a b"\nhandler = "x:y"',
            "name must be 1 to 64 letters",
        ),
        (
            '[[endpoints.subscribers]]\nname = "a"\nhandler = "x:y"\nca_file = "ca.pem"',
            "ca_file is for a forwarding subscriber",
        ),
        (
            '[[endpoints.subscribers]]\nname = "a"\nhandler = "x:y"\nconcurrency = 0',
            "concurrency must be a positive integer",
        ),
    ],
)
def test_a_bad_subscriber_is_refused_with_one_line(
    tmp_path: Path, subscribers: str, message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        settings_for(tmp_path, subscribers)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_handler_option_and_subscribers_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="give either"):
        settings_for(
            tmp_path,
            '[[endpoints.subscribers]]\nname = "a"\nhandler = "x:y"',
            handler="examples.crm_bridge:EnreachCrmBridge",
        )


def test_without_subscribers_an_endpoint_has_one_named_default_with_its_handler(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, "", handler="handlers:EnreachHandler")
    [endpoint] = settings.endpoints
    [default] = endpoint.subscriber_configs
    assert default.name == "default"
    [subscription] = load_subscriptions(settings)
    assert subscription.name == "default"
    assert type(subscription.handlers["enreach"]) is EnreachHandler


def test_open_deliveries_to_a_subscriber_no_longer_configured_are_warned_of(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "inbox.db"

    async def earlier(inbox: SqliteInbox) -> None:  # as an upgraded inbox holds for `default`
        await inbox.append(call_event("k1", "c"), ["default"])
        await inbox.append(call_event("k2", "c"), ["crm"])

    run(tmp_path, earlier)
    endpoint = EndpointConfig("enreach", "enreach", "/enreach", secrets=SecretSet(["t" * 16]))
    settings = Settings(inbox=str(path), endpoints=(endpoint,))
    crm = Recording()

    async def main() -> None:
        runtime = Runtime(settings, [Subscription("crm", default=crm)])
        await runtime.start()
        await until(lambda: crm.handled == ["k2"])
        for _ in range(200):
            if "not configured" in caplog.text:
                break
            await asyncio.sleep(0.01)
        await runtime.stop()

    with caplog.at_level(logging.WARNING, "receiver.runtime"):
        asyncio.run(main())
    assert (
        "the inbox holds 1 pending and 0 dead delivery(ies) for subscriber 'default', which is "
        "not configured" in caplog.text
    )
    assert "'crm'" not in caplog.text


class Freezing:
    """Blocks the whole event loop once, as a process paused (SIGSTOP) would be."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.handled: list[str] = []

    async def handle(self, event: StoredEvent) -> None:
        if not self.handled:
            time.sleep(self.seconds)  # noqa: ASYNC251 - the point: nothing else runs
        self.handled.append(event.dedup_key)

    async def failed(self, event: StoredEvent, error: BaseException, *, final: bool) -> None:
        """Nothing to add."""


def test_a_process_whose_lease_ran_out_drops_what_others_took_and_goes_on() -> None:
    handler = Freezing(0.6)
    taken: list[str] = []

    async def main() -> None:
        url = "memory://lease-lapsed"
        inbox = open_inbox(url, InboxOptions(lease=0.3))
        other = open_inbox(url, InboxOptions(lease=0.3))
        await inbox.open()
        await other.open()
        policy = DispatchPolicy(lease=0.3, poll_interval=0.05, workers=1)
        dispatch = Dispatcher(inbox, [Subscription("a", default=handler)], policy=policy)
        await dispatch.start()
        for key, call in (("k1", "c1"), ("k2", "c2"), ("k3", "c3")):
            await inbox.append(call_event(key, call), ["a"])
        await until(lambda: bool(handler.handled))
        # k1 froze this "process" past its lease: another one takes k2 and k3 over.
        await other.heartbeat()
        await other.reclaim()
        taken.extend(d.dedup_key for d in await other.claim("a", 5))

        async def alive() -> None:  # the other process lives on, holding them
            while True:
                await other.heartbeat()
                await asyncio.sleep(0.05)

        keeping = asyncio.create_task(alive())
        await asyncio.sleep(0.5)  # the lapsed one renews, finds out, drops them
        assert dispatch.failure is None
        await inbox.append(call_event("k4", "c4"), ["a"])  # and goes on with new work
        await until(lambda: "k4" in handler.handled)
        keeping.cancel()
        await dispatch.stop(1.0)
        await inbox.close()
        await other.close()

    asyncio.run(main())
    assert {"k2", "k3"} <= set(taken)
    assert handler.handled == ["k1", "k4"]  # k2 and k3 never attempted twice


def test_a_claim_whose_answer_was_lost_is_given_back_once_the_inbox_is_reachable() -> None:
    handler = Recording()

    async def main() -> None:
        inbox = open_inbox("memory://orphans", InboxOptions(lease=0.3))
        await inbox.open()
        policy = DispatchPolicy(lease=0.3, poll_interval=0.05)
        dispatch = Dispatcher(inbox, [Subscription("a", default=handler)], policy=policy)
        renew = inbox.heartbeat
        failures: list[StorageError] = []

        async def heartbeat() -> bool:  # the inbox is unreachable once
            if failures:
                raise failures.pop()
            return await renew()

        inbox.heartbeat = heartbeat  # type: ignore[method-assign]
        await inbox.append(call_event("k1", "c"), ["a"])
        # A claim that committed, but whose answer never reached the dispatcher.
        assert len(await inbox.claim("a", 1)) == 1
        await dispatch.start()
        failures.append(StorageError("connection lost"))  # the keeper's next renewal fails
        await until(lambda: handler.handled == ["k1"], within=5.0)
        await dispatch.stop(1.0)
        await inbox.close()

    asyncio.run(main())

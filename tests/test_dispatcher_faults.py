"""The dispatcher under faults of the handler's making: whatever a handler raises is a failed
attempt (stored and logged with the configured secrets masked) and dispatching goes on; a
task of the dispatcher that ends all the same is reported, never a silent stop.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

from receiver.inbox.models import StoredEvent
from receiver.inbox.sqlite import SqliteInbox
from tests.support.inbox import dispatcher as make_dispatcher
from tests.support.inbox import event, run

SECRET = "Zt4-handler-leaked-secret-90ab"


class Unprintable(Exception):
    def __str__(self) -> str:
        raise ValueError("no message for you")


class NotAnException(BaseException):
    """Raised by some libraries (a cancellation scope, a test framework's failure)."""


FAILURES: dict[str, tuple[BaseException, str]] = {
    "unprintable-message": (Unprintable(), "Unprintable: (its message could not be printed)"),
    "base-exception": (NotAnException("aborted"), "NotAnException: aborted"),
    "its-own-cancellation": (asyncio.CancelledError("inner wait cancelled"), "CancelledError"),
    "text-not-utf8": (RuntimeError("CRM said \udcff\udcfe"), "RuntimeError: CRM said \\udcff"),
    "secret-in-message": (
        RuntimeError(f"401 from CRM with token {SECRET}"),
        "RuntimeError: 401 from CRM with token [secret]",
    ),
}


class Failing:
    """Fails the events whose key starts with `fail` with `error`; records the others."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.handled: list[str] = []
        self.reported: list[BaseException] = []

    async def handle(self, stored: StoredEvent) -> None:
        if stored.dedup_key.startswith("fail"):
            raise self.error
        self.handled.append(stored.dedup_key)

    async def failed(self, stored: StoredEvent, error: BaseException, *, final: bool) -> None:
        self.reported.append(error)


def last_errors(path: Path) -> dict[str, str | None]:
    with sqlite3.connect(path) as conn:
        return dict(
            conn.execute(
                "SELECT dedup_key, last_error FROM events JOIN deliveries ON event_id = id"
            ).fetchall()
        )


@pytest.mark.parametrize("case", list(FAILURES))
def test_whatever_a_handler_raises_is_a_failed_attempt_and_dispatching_goes_on(
    tmp_path: Path, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    error, stored_text = FAILURES[case]
    handler = Failing(error)
    told: list[BaseException] = []

    async def body(inbox: SqliteInbox) -> None:
        # One worker: a failure that ended it would stop all dispatching.
        dispatcher = make_dispatcher(
            inbox, handler, workers=1, max_attempts=1, poll_interval=0.05,
            secrets=[SECRET], on_failure=told.append,
        )  # fmt: skip
        await dispatcher.start()
        for key in ("fail-1", "ok-1", "fail-2", "ok-2"):
            await inbox.append(event(key, order="one-call"))
        for _ in range(200):
            if len(handler.handled) == 2 and len(handler.reported) == 2:
                break
            await asyncio.sleep(0.01)
        await dispatcher.stop(1.0)
        assert handler.handled == ["ok-1", "ok-2"]
        assert dispatcher.stats.dead == 2
        assert dispatcher.failure is None and told == []

    with caplog.at_level(logging.WARNING, logger="receiver.dispatcher"):
        run(tmp_path, body)
    errors = last_errors(tmp_path / "inbox.db")
    assert errors["fail-1"] is not None and errors["fail-1"].startswith(stored_text)
    assert SECRET not in caplog.text
    assert "dead letter" in caplog.text


class BrokenInbox(SqliteInbox):
    """An inbox whose `pull` fails with something no one expects (a bug)."""

    async def pull(self, subscriber: str, limit: int, room: int) -> int:
        raise RuntimeError("pull is broken")


def test_a_dispatcher_task_that_ends_before_stop_is_reported(tmp_path: Path) -> None:
    told: list[BaseException] = []

    async def main() -> None:
        inbox = BrokenInbox(tmp_path / "inbox.db")
        await inbox.open()
        try:
            dispatcher = make_dispatcher(
                inbox, Failing(RuntimeError()), poll_interval=0.05, on_failure=told.append
            )
            await dispatcher.start()
            for _ in range(100):
                if told:
                    break
                await asyncio.sleep(0.01)
            assert [str(e) for e in told] == ["pull is broken"]
            assert dispatcher.failure == (
                "dispatch-feeder (default) ended: RuntimeError: pull is broken"
            )
            await dispatcher.stop(0.5)
            assert len(told) == 1  # the tasks ended by stop are not failures
        finally:
            await inbox.close()

    asyncio.run(main())

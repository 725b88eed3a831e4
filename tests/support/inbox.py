"""Helpers for tests of the SQLite inbox used in-process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import pytest

import receiver.inbox.sqlite as sqlite_module
from receiver.dispatcher import Dispatcher, DispatchPolicy, Subscription
from receiver.handling import EventHandler
from receiver.inbox.models import NewEvent
from receiver.inbox.sqlite import SqliteInbox

T = TypeVar("T")


def event(key: str, order: str | None = None) -> NewEvent:
    return NewEvent("enreach", key, "UserAvailability", order, b'{"Id": "%s"}' % key.encode())


def dispatcher(
    inbox: SqliteInbox,
    handler: EventHandler,
    *,
    secrets: Iterable[str] = (),
    on_failure: Callable[[BaseException], None] | None = None,
    **policy: Any,
) -> Dispatcher:
    """A dispatcher with one subscriber, `default`, handling every source with `handler`;
    `policy` are `DispatchPolicy` fields."""
    subscription = Subscription("default", default=handler)
    return Dispatcher(
        inbox, [subscription], policy=DispatchPolicy(**policy), secrets=secrets,
        on_failure=on_failure,
    )  # fmt: skip


def run(tmp_path: Path, body: Callable[[SqliteInbox], Awaitable[T]]) -> T:
    """Open an inbox at `tmp_path / "inbox.db"`, run `body` with it, close it."""

    async def main() -> T:
        inbox = SqliteInbox(tmp_path / "inbox.db")
        await inbox.open()
        try:
            return await body(inbox)
        finally:
            await inbox.close()

    return asyncio.run(main())


def writer_that_dies(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Make every inbox writer's next batch fail outside any write (the thread dies) once
    the returned event is set."""
    dying = threading.Event()
    run_batch = sqlite_module._Writer._run_batch

    def crash(self: Any, batch: Any) -> Any:
        if dying.is_set():
            raise MemoryError("out of memory outside any write")
        return run_batch(self, batch)

    monkeypatch.setattr(sqlite_module._Writer, "_run_batch", crash)
    return dying

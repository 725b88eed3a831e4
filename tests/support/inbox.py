"""Helpers for tests of the SQLite inbox used in-process."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from receiver.inbox.models import NewEvent
from receiver.inbox.sqlite import SqliteInbox

T = TypeVar("T")


def event(key: str, order: str | None = None) -> NewEvent:
    return NewEvent("enreach", key, "UserAvailability", order, b'{"Id": "%s"}' % key.encode())


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

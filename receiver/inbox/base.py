"""The small interface every inbox backend implements, and how a URL picks one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from receiver.exceptions import ConfigError
from receiver.inbox.models import NewEvent, StoredEvent

__all__ = ["Inbox", "Intake", "inbox_path", "open_inbox"]


class Intake(Protocol):
    """Where an inbox delivers the events it hands to a dispatcher in its process."""

    def __call__(self, events: Sequence[StoredEvent], pending: bool) -> None:
        """After a commit, on the event loop.

        `events` are now in progress and the callee's to handle, in arrival order;
        `pending` says that new events were stored as pending, to be `pull`ed.
        """


class Inbox(Protocol):
    """Durable, deduplicating storage between the request path and the dispatcher."""

    async def open(self, on_failure: Callable[[BaseException], None] | None = None) -> None:
        """Prepare storage; called once before anything else.

        If the inbox stops being able to store anything before `close` (its writer died),
        `on_failure` is called with the cause on the event loop, and every write fails at once.
        """

    @property
    def failure(self) -> str | None:
        """Why the inbox can no longer store anything, or None while it can."""
        ...

    async def close(self) -> None:
        """Finish queued writes and release resources."""

    def attach(self, intake: Intake) -> None:
        """Deliver claimed (and, while there is room, newly stored) events to `intake`."""

    async def detach(self) -> None:
        """Stop delivering; everything already claimed has reached the intake."""

    async def pull(self, limit: int, room: int) -> int:
        """Claim up to `limit` pending events for the intake, oldest first; how many.

        When none is left pending, up to `room` minus that many newly stored events go
        to the intake directly, already in progress.
        """
        ...

    def append(self, event: NewEvent) -> asyncio.Future[bool]:
        """Store `event` durably; True if new, False if its dedup key was seen before."""
        ...

    async def claim(self, limit: int) -> list[StoredEvent]:
        """Take up to `limit` pending events, oldest first, marking them in progress."""
        ...

    def complete(self, event_ids: Sequence[int]) -> asyncio.Future[None]:
        """Mark events done."""
        ...

    def retry_later(
        self, event_id: int, attempts: int, next_attempt_at: float, error: str
    ) -> asyncio.Future[None]:
        """Record a failed attempt and when the next one is due."""
        ...

    def bury(self, event_id: int, attempts: int, error: str) -> asyncio.Future[None]:
        """Make an event a dead letter."""
        ...

    async def release(self, event_ids: Sequence[int]) -> None:
        """Return claimed events to pending."""

    async def recover(self) -> int:
        """Return every claimed event to pending after a crash; how many there were."""
        ...

    def try_lock_dispatch(self) -> bool:
        """Become this inbox's only dispatcher; False if another process already is."""
        ...

    async def purge(self, *, now: float | None = None, chunk: int = 2000) -> int:
        """Delete completed events older than the retention."""
        ...


def inbox_path(url: str) -> Path:
    """The SQLite file named by `url`: a plain path, or `sqlite:///relative` / `sqlite:////abs`."""
    if "://" not in url:
        return Path(url).expanduser()
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ConfigError(f"inbox {url!r}: only sqlite inboxes are supported (got {parts.scheme}:)")
    if parts.netloc:
        raise ConfigError(f"inbox {url!r}: write sqlite:///relative/path or sqlite:////absolute")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path:
        raise ConfigError(f"inbox {url!r} names no file")
    return Path(path).expanduser()


def open_inbox(url: str, *, retention_days: float = 7.0) -> Inbox:
    """The inbox backend for `url` (not yet opened)."""
    from receiver.inbox.sqlite import SqliteInbox

    return SqliteInbox(inbox_path(url), retention_days=retention_days)

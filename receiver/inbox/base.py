"""The inbox's interface, split by role, and the registry that picks a backend by URL.

Three roles, so that each user of an inbox sees only what it needs and a backend can be
checked against each (`tests/contract/`):

- `IntakeQueue`: the request path appends an event with dedup, once, with a delivery for each
  subscriber that wants it; acknowledged only once durable.
- `WorkQueue`: dispatchers claim deliveries (with a lease held by the claiming process's
  heartbeat), complete them, retry them later, bury them as dead letters, release them, and
  take back what a dead process had claimed.
- `InboxAdmin`: operators' queries and fixes, from any process: stats, list, get, replay,
  discard, purge.

A backend implements `Inbox` (intake and work queue, for a serving process) and `InboxAdmin`,
and registers itself in `BACKENDS` under its URL schemes, as engines do in
`receiver.engines`. Nothing outside a backend knows how it stores anything; event ids are
opaque to the CLI and the admin API (text that the backend parses).
"""

from __future__ import annotations

import asyncio
import builtins
import importlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, cast
from urllib.parse import urlsplit

from receiver.exceptions import ConfigError
from receiver.inbox.models import (
    Attempt,
    Completion,
    DeliveryKey,
    EventFilter,
    EventRecord,
    Expired,
    InboxStats,
    NewEvent,
    StoredEvent,
    StoredPayload,
)

if TYPE_CHECKING:
    from receiver.inbox.sealing import Keyring

__all__ = [
    "BACKENDS",
    "FOLLOW_GRACE",
    "Backend",
    "Inbox",
    "InboxAdmin",
    "InboxOptions",
    "Intake",
    "IntakeQueue",
    "WorkQueue",
    "attempt_key",
    "backend_for",
    "check_inbox",
    "describe_inbox",
    "open_admin",
    "open_inbox",
]


FOLLOW_GRACE = 5.0
"""Seconds a follower of `InboxAdmin.list` or `InboxAdmin.recent_attempts` looks back past
the newest time it has seen, for what was stamped earlier but committed later."""


def attempt_key(delivery: StoredEvent, attempt: Attempt) -> tuple[int, str, int, str, float]:
    """What tells one attempt from another in `InboxAdmin.recent_attempts`: its event id,
    subscriber, number, outcome and start (numbers start over after a replay)."""
    return (delivery.id, delivery.subscriber, attempt.number, attempt.outcome, attempt.started_at)


class Intake(Protocol):
    """Where an inbox hands the deliveries it gives a dispatcher in its own process."""

    def __call__(self, deliveries: Sequence[StoredEvent], pending: Collection[str]) -> None:
        """After a commit, on the event loop.

        `deliveries` are now in progress and the callee's to handle, in arrival order;
        `pending` names the subscribers that have new pending deliveries to `pull` (`*`:
        any subscriber may have).
        """


@dataclass(frozen=True, slots=True)
class InboxOptions:
    """What every backend is opened with (from `Settings`)."""

    retention_days: float = 7.0
    """Dedup retention: finished events are deleted (with their dedup keys) this long after
    they arrived (`purge`)."""
    payload_retention_days: float = 3.0
    """Finished events lose their payload, headers and error texts this long after they
    arrived (`expire`); at most `retention_days`."""
    dead_retention_days: float = 30.0
    """Dead letters are given up on (discarded, then expired like any finished event) this
    long after they became dead (`expire`)."""
    keyring: Keyring | None = field(default=None, repr=False)
    """The keys payloads are encrypted with at rest (`receiver.inbox.sealing`); None: stored
    in the clear."""
    lease: float = 15.0
    """Seconds a process's claims outlive its last heartbeat."""
    migrate: bool = True
    """Bring the schema up to date on open (else refuse an outdated one: `receiver inbox
    migrate` does it)."""


class IntakeQueue(Protocol):
    """The request path's side: durable, deduplicating append."""

    def append(
        self, event: NewEvent, subscribers: Sequence[str] = ("default",)
    ) -> asyncio.Future[bool]:
        """Store `event` durably with a pending delivery for each of `subscribers`.

        True if new; False if its (source, dedup key) was stored before, in which case
        nothing is added. The future resolves only once the event is durable.
        """
        ...


class WorkQueue(Protocol):
    """The dispatchers' side: deliveries claimed, completed, retried, buried, released."""

    owner: str
    """This process's name in the leases it holds."""

    exclusive: bool
    """True when only one process at a time may dispatch from this inbox (`try_lock_dispatch`);
    False when any number share the deliveries by leases."""

    def try_lock_dispatch(self) -> bool:
        """Become a dispatcher of this inbox; False while another process holds that right."""
        ...

    def attach(self, intake: Intake) -> None:
        """Deliver claimed (and, while there is room, newly stored) deliveries to `intake`."""

    async def detach(self) -> None:
        """Stop delivering; everything already claimed has reached the intake."""

    async def pull(self, subscriber: str, limit: int, room: int) -> int:
        """Claim up to `limit` of `subscriber`'s pending deliveries for the intake, oldest
        first; how many.

        When none is left pending, up to `room` minus that many of its newly stored
        deliveries go to the intake directly, already in progress.
        """
        ...

    async def claim(self, subscriber: str, limit: int) -> list[StoredEvent]:
        """Take up to `limit` pending deliveries of `subscriber`, oldest first, whenever their
        next attempt is due (the dispatcher waits for it, so that a call's later events stay
        behind the head of its lane)."""
        ...

    def complete(self, done: Sequence[Completion]) -> asyncio.Future[None]:
        """Mark deliveries done, with when and how long their successful attempt ran."""
        ...

    def retry_later(
        self, delivery: DeliveryKey, attempt: Attempt, next_attempt_at: float
    ) -> asyncio.Future[None]:
        """Record a failed attempt; the delivery stays claimed until its next attempt."""
        ...

    def bury(self, delivery: DeliveryKey, attempt: Attempt) -> asyncio.Future[None]:
        """Record the last failed attempt and make the delivery a dead letter."""
        ...

    async def release(self, deliveries: Sequence[DeliveryKey]) -> None:
        """Return claimed deliveries to pending (a dispatcher stopping)."""

    async def recover(self) -> int:
        """Return to pending every delivery another process had claimed; how many.

        Only for an exclusive inbox, by the process that just took the dispatch lock: the
        previous holder is gone.
        """
        ...

    async def heartbeat(self) -> bool:
        """Extend the lease of every delivery this process holds by `InboxOptions.lease`.

        False when the lease had run out before this renewal (the process was paused or cut
        off for longer than the lease): other processes may have taken its claims over.
        """
        ...

    async def owned(self) -> set[DeliveryKey]:
        """Every delivery this process holds in progress (to find claims whose answer was
        lost with a connection: held in the inbox, unknown to the dispatcher)."""
        ...

    async def held(self, deliveries: Sequence[DeliveryKey]) -> set[DeliveryKey]:
        """Those of `deliveries` this process still holds in progress (a process whose lease
        ran out keeps working on these and drops the others)."""
        ...

    async def reclaim(self) -> int:
        """Return to pending the deliveries whose holder's lease expired; how many. Never
        this process's own (its dispatcher still holds them, however late its heartbeat)."""
        ...

    async def purge(self, *, now: float | None = None, chunk: int = 2000) -> int:
        """Delete events past retention whose every delivery is finished; how many."""
        ...

    async def expire(self, *, now: float | None = None, chunk: int = 2000) -> Expired:
        """Discard dead letters past `dead_retention_days`, then remove the payload, headers
        and error texts of finished events past `payload_retention_days`."""
        ...


class Inbox(IntakeQueue, WorkQueue, Protocol):
    """What a serving or dispatching process opens."""

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

    async def probe(self) -> None:
        """Prove the inbox takes writes now (a small write that leaves nothing behind, or
        the server's word that it accepts writes); StorageError saying why not."""


class InboxAdmin(Protocol):
    """Operators' queries and fixes, from any process (synchronous: CLI and console)."""

    def close(self) -> None:
        """Release the connection."""

    def stats(self) -> InboxStats:
        """Counts by state, subscriber and source; the age of each subscriber's oldest open
        delivery."""
        ...

    def live_dispatchers(self) -> list[str]:
        """The owners (`host:pid:...`) whose dispatching lease is alive now."""
        ...

    def list(self, where: EventFilter, *, limit: int = 50) -> list[StoredEvent]:
        """The newest deliveries matching `where`, newest first (by event id, then
        subscriber).

        To follow new events, poll with `where.since` a few seconds (`FOLLOW_GRACE`) before
        the newest `received_at` seen, reverse what comes back, and skip the (id, subscriber)
        pairs already shown: an event is stamped on arrival, before its commit, so one
        stamped a little earlier can become visible after a later one. When `limit` rows come
        back there may be more in between: page back with `until` set to the oldest
        `received_at` returned.
        """
        ...

    def counts(self, where: EventFilter) -> dict[tuple[str, str], int]:
        """Deliveries matching `where` by (event type, state label); absent pairs are 0.

        The console's "last hour" is `where.since = now - 3600` (received within the hour).
        """
        ...

    def recent_attempts(
        self, since: float, where: EventFilter, limit: int = 200
    ) -> builtins.list[tuple[StoredEvent, Attempt]]:
        """Every delivery attempt that ended at or after `since` (unix time), oldest first,
        of the deliveries matching `where` (whose `states` are the deliveries' states now),
        with its delivery as it is now; at most `limit`.

        An attempt ended at `started_at + duration`. The failed ones are those kept as
        attempts (outcome `retry` or `dead`); the successful one of a delivery done is made
        from its `finished_at` and `duration` (outcome `done`), as in `get`'s history, and
        is gone once the delivery is replayed. Ties are in (event id, subscriber, number)
        order.

        To follow attempts (`receiver inbox tail`): while a poll returns `limit` attempts,
        poll again at once with `since` the end of the last one returned; then wait, and
        poll next with `since` `FOLLOW_GRACE` seconds before the end of the newest attempt
        seen. Skip the attempts already shown (by `attempt_key`; those that ended before
        `since` can be forgotten). The grace is needed because an attempt is recorded when
        it ends, a moment after its end time, so one that ended just before another may
        become visible after it (the more so across processes and their clocks).
        """
        ...

    def get(self, event_id: str) -> EventRecord | None:
        """One event with its deliveries and attempt history; None if there is none (or
        `event_id` is not an id of this inbox)."""
        ...

    def replay(
        self, where: EventFilter, *, ids: Sequence[str] | None = None, done_too: bool = False
    ) -> int:
        """Make matching dead (and, with `done_too`, done) deliveries pending again, keeping
        their history; how many. `ids` limits it to those events."""
        ...

    def discard(self, where: EventFilter, *, ids: Sequence[str] | None = None) -> int:
        """Give up on matching dead letters (state `discarded`); how many."""
        ...

    def purge(self, *, now: float | None = None) -> int:
        """Delete events past retention whose every delivery is finished; how many."""
        ...

    def expire(self, *, now: float | None = None) -> Expired:
        """`Inbox.expire`, from any process."""
        ...

    def payloads(self, after: int, limit: int = 1000) -> builtins.list[StoredPayload]:
        """The events after id `after` that still have their payload, by id: (id, order key,
        payload); at most `limit`. What `receiver inbox erase` searches."""
        ...

    def erase(self, ids: Sequence[int]) -> dict[str, int]:
        """Remove the payload, headers and error texts of events `ids` (ids from `payloads`)
        while keeping their dedup keys, so a provider's retry is still acknowledged and not
        delivered; their pending, in-progress and dead deliveries are discarded, as nothing is
        left to deliver. Returns their deliveries by state label as they were before."""
        ...


@dataclass(frozen=True, slots=True)
class Backend:
    """How to open one kind of inbox; registered in `BACKENDS` by URL scheme."""

    module: str
    """Imported on first use, so that serving SQLite never imports another backend's driver."""
    inbox: str
    """`module`'s callable `(url, options) -> Inbox`."""
    admin: str
    """`module`'s callable `(url, options) -> InboxAdmin`."""
    check: str
    """`module`'s callable `(url) -> None` raising `ConfigError` when the inbox cannot work
    (run before binding, so that a bad inbox is a one-line refusal)."""
    describe: str
    """`module`'s callable `(url) -> str`: where the inbox is, for messages (no password)."""

    def _get(self, role: str) -> Callable[..., object]:
        """The callable named by field `role` (`inbox`, `admin`, `check`, `describe`)."""
        module = importlib.import_module(self.module)
        function: Callable[..., object] = getattr(module, getattr(self, role))
        return function


BACKENDS: dict[str, Backend] = {
    "sqlite": Backend(
        "receiver.inbox.sqlite", "open_sqlite_inbox", "open_sqlite_admin", "check", "describe_url"
    ),
    "memory": Backend(
        "receiver.inbox.memory", "open_memory_inbox", "open_memory_admin", "check", "describe"
    ),
    "postgresql": Backend(
        "receiver.inbox.postgres",
        "open_postgres_inbox",
        "open_postgres_admin",
        "check",
        "describe",
    ),
}
BACKENDS["postgres"] = BACKENDS["postgresql"]
"""Inbox backends by URL scheme; a plain path is a SQLite file."""


def backend_for(url: str) -> Backend:
    """The backend of inbox `url`; ConfigError naming the schemes there are."""
    scheme = urlsplit(url).scheme if "://" in url else "sqlite"
    backend = BACKENDS.get(scheme)
    if backend is None:
        known = ", ".join(f"{s}://" for s in BACKENDS)
        raise ConfigError(f"inbox {url!r}: unknown kind {scheme}:// (known: {known})")
    return backend


def open_inbox(url: str, options: InboxOptions | None = None) -> Inbox:
    """The inbox at `url` (not yet opened), sealing payloads with `options.keyring`."""
    from receiver.inbox.sealed import SealedInbox

    options = options or InboxOptions()
    inbox: Inbox = backend_for(url)._get("inbox")(url, options)  # type: ignore[assignment]
    return cast(Inbox, SealedInbox(inbox, options.keyring))


def open_admin(url: str, options: InboxOptions | None = None) -> InboxAdmin:
    """The admin side of the inbox at `url`, opening sealed payloads with `options.keyring`
    (from `RECEIVER_INBOX_KEYS` when no options are given); StorageError if there is none."""
    from receiver.inbox.sealed import SealedAdmin
    from receiver.inbox.sealing import keyring_from_env

    if options is None:
        options = InboxOptions(keyring=keyring_from_env())
    admin: InboxAdmin = backend_for(url)._get("admin")(url, options)  # type: ignore[assignment]
    return cast(InboxAdmin, SealedAdmin(admin, options.keyring))


def check_inbox(url: str) -> None:
    """Refuse (ConfigError, one line) an inbox that cannot work, before serving."""
    backend_for(url)._get("check")(url)


def describe_inbox(url: str) -> str:
    """Where the inbox at `url` is, for messages (never a password)."""
    return str(backend_for(url)._get("describe")(url))

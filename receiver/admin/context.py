"""What the admin listener's pages read: the process's runtime, endpoints and certificate, and
the inbox's admin side on a thread of its own."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from receiver import __version__
from receiver.admin.auth import AdminAuth
from receiver.exceptions import StorageError
from receiver.inbox.base import InboxAdmin, describe_inbox, open_admin
from receiver.metrics import DeliveryMetrics, EndpointFigures, Snapshot

if TYPE_CHECKING:
    from receiver.endpoint import Endpoint
    from receiver.runtime import Runtime
    from receiver.tls import ServerTLS

__all__ = ["INBOX_WAIT", "AdminContext"]

T = TypeVar("T")

INBOX_WAIT = 5.0
"""Seconds an admin page waits for the inbox (a file another process holds locked, a
PostgreSQL server that does not answer) before it says so."""


class AdminContext:
    """One process's state as the admin pages see it."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        role: str,
        endpoints: Sequence[Endpoint] = (),
        tls: ServerTLS | None = None,
        engine: str = "",
    ) -> None:
        """`role`: `serve` or `worker`; `endpoints` and `engine` only where webhooks are
        served."""
        self.runtime = runtime
        self.settings = runtime.settings
        self.role = role
        self.endpoints = list(endpoints)
        self.tls = tls
        self.engine = engine
        self.auth = AdminAuth(self.settings.admin_tokens)
        self.started_at = time.time()
        self.inbox_location = describe_inbox(self.settings.inbox)
        # A daemon thread of its own, not an executor's: a query held up by a lock another
        # process keeps (or a server that never answers) must not keep a stopped process
        # alive, which an executor's thread would, being joined at exit.
        self._work: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._serve, name="receiver-admin", daemon=True)
        self._thread.start()
        self._admin: InboxAdmin | None = None

    def _serve(self) -> None:
        while (item := self._work.get()) is not None:
            call, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:
                future.set_exception(exc)

    async def inbox(self, work: Callable[[InboxAdmin], T], wait: float = INBOX_WAIT) -> T:
        """`work(admin)` on the admin thread; StorageError if the inbox fails or takes longer
        than `wait` seconds."""
        future: Future[T] = Future()
        self._work.put((lambda: self._call(work), future))
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), wait)
        except TimeoutError:
            raise StorageError(f"the inbox did not answer within {wait:g}s") from None

    def _call(self, work: Callable[[InboxAdmin], T]) -> T:
        if self._admin is None:
            options = self.settings.inbox_options
            self._admin = open_admin(self.settings.inbox, options)
        try:
            return work(self._admin)
        except StorageError:
            admin, self._admin = self._admin, None  # opened afresh next time
            admin.close()
            raise

    def close(self) -> None:
        """Close the inbox's admin side (on its thread) and let the thread go."""

        def close() -> None:
            if self._admin is not None:
                self._admin.close()
                self._admin = None

        self._work.put((close, Future()))
        self._work.put(None)  # then the thread ends (a stuck one is abandoned at exit)

    def delivery_metrics(self) -> dict[str, DeliveryMetrics]:
        """This process's figures per subscriber (copies)."""
        return {name: m.copy() for name, m in self.runtime.delivery_metrics.items()}

    def snapshot(self) -> Snapshot:
        """The process's own figures, copied now (on the event loop that updates them)."""
        expiry = self.tls.not_after if self.tls is not None else None
        snap = Snapshot(
            version=__version__,
            engine=self.engine or "none",
            inbox_kind=self.settings.inbox.split(":", 1)[0]
            if "://" in self.settings.inbox
            else "sqlite",
            dispatching=self.runtime.dispatcher is not None,
            certificate_expiry=expiry,
            deliveries=self.delivery_metrics(),
        )
        for endpoint in self.endpoints:
            requests = endpoint.counters.as_dict()
            snap.endpoints.append(
                EndpointFigures(
                    name=endpoint.name,
                    source=endpoint.source.kind,
                    requests=requests,
                    ack=endpoint.metrics.ack.copy(),
                    events=dict(endpoint.metrics.events),
                    last_event=endpoint.metrics.last_event,
                )
            )
        return snap

"""`/readyz`: whether this process can do its job now, and which check fails if not.

- `process`: no part it cannot work without (the inbox writer, the dispatcher) has stopped.
- `inbox`: the inbox takes writes now (`Inbox.probe`: a write and commit through SQLite's
  writer thread; PostgreSQL's word that it is writable and not a standby).
- `dispatcher`: some process dispatches (this one, or another whose lease in the inbox is
  alive), so stored events reach the subscribers. It makes a process unready only if the
  process is meant to dispatch (`receiver worker`, `receiver serve` without `--no-dispatch`):
  a `--no-dispatch` receiver with every worker down still stores what it is sent, for the
  workers to deliver once back, and taking it out of a load balancer then would make the
  platform give those webhooks up. For such a process a failed `dispatcher` check is listed
  under `warnings` (and `receiver_ready{check="dispatcher"}` is 0, for an alert).
- `certificate`: the certificate in use is valid for more than `ready_cert_days`.

Results are kept for `CACHE_FOR` seconds, so a load balancer polling several times a second
costs one probe.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from receiver.admin.context import AdminContext
from receiver.exceptions import StorageError

__all__ = ["CACHE_FOR", "PROBE_WAIT", "Readiness"]

PROBE_WAIT = 3.0
"""Seconds the inbox has to answer a probe."""
CACHE_FOR = 1.0
"""Seconds a result is served again."""


class Readiness:
    """Runs the checks, at most once per `CACHE_FOR` seconds."""

    def __init__(self, ctx: AdminContext) -> None:
        self.ctx = ctx
        self._lock = asyncio.Lock()
        self._last: tuple[float, bool, dict[str, Any]] | None = None

    async def check(self) -> tuple[bool, dict[str, Any]]:
        """Whether ready, and the JSON body that says which checks failed."""
        async with self._lock:
            now = time.monotonic()
            if self._last is not None and now - self._last[0] < CACHE_FOR:
                return self._last[1], self._last[2]
            ready, body = await self._run()
            self._last = (time.monotonic(), ready, body)
            return ready, body

    async def _run(self) -> tuple[bool, dict[str, Any]]:
        checks: dict[str, dict[str, Any]] = {
            "process": self._process(),
            "inbox": await self._inbox(),
            "dispatcher": await self._dispatcher(),
        }
        if self.ctx.tls is not None:
            checks["certificate"] = self._certificate()
        optional = () if self.ctx.runtime.wants_dispatch else ("dispatcher",)
        failed = [n for n, result in checks.items() if not result["ok"] and n not in optional]
        warnings = [n for n, result in checks.items() if not result["ok"] and n in optional]
        body: dict[str, Any] = {"status": "unready" if failed else "ready"}
        if failed:
            body["failed"] = failed
        if warnings:
            body["warnings"] = warnings
        body["checks"] = checks
        return not failed, body

    def _process(self) -> dict[str, Any]:
        stopped = self.ctx.runtime.stopped
        if stopped is not None:
            return {"ok": False, "detail": f"the {stopped[0]} stopped; the process is stopping"}
        return {"ok": True}

    async def _inbox(self) -> dict[str, Any]:
        where = self.ctx.inbox_location
        try:
            await asyncio.wait_for(self.ctx.runtime.inbox.probe(), PROBE_WAIT)
        except TimeoutError:
            return {"ok": False, "detail": f"{where} did not answer within {PROBE_WAIT:g}s"}
        except StorageError as exc:
            return {"ok": False, "detail": f"{where}: {exc}"}
        return {"ok": True, "detail": f"{where} takes writes"}

    async def _dispatcher(self) -> dict[str, Any]:
        runtime = self.ctx.runtime
        if runtime.dispatcher is not None and runtime.dispatcher.failure is None:
            return {"ok": True, "detail": "this process dispatches"}
        try:
            owners = await self.ctx.inbox(lambda admin: admin.live_dispatchers(), PROBE_WAIT)
        except StorageError as exc:
            return {"ok": False, "detail": f"cannot tell who dispatches: {exc}"}
        others = [o for o in owners if o != runtime.inbox.owner]
        if others:
            return {"ok": True, "detail": f"{len(others)} other process(es) dispatch"}
        names = sorted({s.name for e in self.ctx.settings.endpoints for s in e.subscriber_configs})
        return {
            "ok": False,
            "detail": "no process dispatches: events wait for subscribers " + ", ".join(names),
        }

    def _certificate(self) -> dict[str, Any]:
        tls = self.ctx.tls
        assert tls is not None
        if tls.not_after is None:
            return {"ok": False, "detail": "cannot read the certificate's expiry"}
        days = (tls.not_after - time.time()) / 86400
        limit = self.ctx.settings.ready_cert_days
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(tls.not_after))
        if days <= limit:
            state = "expired" if days <= 0 else f"expires in {days:.1f} days"
            return {"ok": False, "detail": f"{state} ({expires}); renew it", "expires": expires}
        return {"ok": True, "detail": f"valid for {days:.0f} more days", "expires": expires}

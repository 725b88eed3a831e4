"""What each agent's page shows: the agent's latest allocated calls, and who is watching.

The board lives in the page service's memory and on its event loop. A page that connects (or
reconnects) gets the agent's current calls at once and then every change, so an EventSource
that reconnects after a network blip shows what it missed without replaying anything. State is
kept per agent and only ever handed to that agent's pages: one agent never sees another's calls.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from examples.screen_pop.customers import Customer

__all__ = ["KEEP", "Board", "Pop", "View"]

KEEP = 5
"""Calls kept per agent: the current one and a few before it."""


@dataclass(frozen=True, slots=True)
class Pop:
    """One call allocated to an agent, with what the lookup found about the caller."""

    call_id: str
    caller_number: str
    queue_name: str | None
    """None for a call to the agent's own number (`UserCallInUserAllocated` without a queue)."""
    customer: Customer | None
    allocated_at: datetime
    """When the page service got the allocation (UTC)."""


@dataclass(frozen=True, slots=True)
class View:
    """An agent's page content at one moment; `version` grows with every change."""

    agent_id: uuid.UUID
    agent_name: str | None
    pops: tuple[Pop, ...]
    version: int


class Board:
    """The latest calls per agent, and a wake-up for each page watching an agent."""

    def __init__(self, keep: int = KEEP) -> None:
        self._keep = keep
        self._pops: dict[uuid.UUID, deque[Pop]] = {}
        self._names: dict[uuid.UUID, str] = {}
        self._versions: dict[uuid.UUID, int] = {}
        self._watchers: dict[uuid.UUID, set[asyncio.Event]] = {}
        self._closed = asyncio.Event()

    def view(self, agent_id: uuid.UUID) -> View:
        """What `agent_id`'s page shows now."""
        return View(
            agent_id,
            self._names.get(agent_id),
            tuple(self._pops.get(agent_id, ())),
            self._versions.get(agent_id, 0),
        )

    def post(self, agent_id: uuid.UUID, agent_name: str | None, pop: Pop) -> None:
        """Put `pop` on top of the agent's calls and wake the agent's pages.

        The same call again (a repeated delivery, or Enreach's queue and user events for one
        allocation) replaces the earlier entry, keeping the queue name if only one had it.
        """
        pops = self._pops.setdefault(agent_id, deque(maxlen=self._keep))
        earlier = next((p for p in pops if p.call_id == pop.call_id), None)
        if earlier is not None:
            pops.remove(earlier)
            pop = dataclasses.replace(
                pop,
                queue_name=pop.queue_name or earlier.queue_name,
                allocated_at=earlier.allocated_at,
            )
        pops.appendleft(pop)
        if agent_name:
            self._names[agent_id] = agent_name
        self._versions[agent_id] = self._versions.get(agent_id, 0) + 1
        for wake in self._watchers.get(agent_id, ()):
            wake.set()

    async def watch(self, agent_id: uuid.UUID) -> AsyncIterator[View]:
        """The agent's view now, then after each change, until `close`."""
        wake = asyncio.Event()
        self._watchers.setdefault(agent_id, set()).add(wake)
        closing = asyncio.ensure_future(self._closed.wait())
        try:
            while not self._closed.is_set():
                wake.clear()
                yield self.view(agent_id)
                woken = asyncio.ensure_future(wake.wait())
                await asyncio.wait({woken, closing}, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
        finally:
            closing.cancel()
            watchers = self._watchers.get(agent_id, set())
            watchers.discard(wake)
            if not watchers:
                self._watchers.pop(agent_id, None)

    def close(self) -> None:
        """End every watch (the service is stopping)."""
        self._closed.set()

"""The handlers the receiver runs: Engage WFM agent states and end calls, Enreach user states.

Both write to the SQLite file named by `WFM_ADHERENCE_DB` (see store.py). Agents are keyed by
provider (`engage:<agent_id>`, `enreach:<UserId>`): the two platforms have their own ids, and
nothing in their events says two of them are one person, so such a person is two rows.

Engage: the state is the event's `event_type` (AVAILABLE, ENGAGED, ON BREAK, custom states as
sent) at its `date_time`; LOGOUT starts logged-out time. An answered end call is counted for its
agent. Enreach has no single state: `UserAvailability` sets the user's availability (Available,
Busy, DoNotDisturb; OffWork is logged out) and `UserStatus` says whether the user is talking;
the state shown is TALKING during a call, else the availability, at the event's `Timestamp`
(zone-less: read in `WFM_ADHERENCE_ENREACH_TIME_ZONE`, UTC by default).
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from examples.wfm_adherence.store import LOGGED_OUT, Call, Store
from handlers import EnreachHandler
from handlers.engage import AgentStateEvent, EndCallEvent, WfmHandler
from handlers.enreach import UserAvailability, UserStatus
from receiver import ConfigError, DecodeError

__all__ = ["EnreachStates", "WfmStates", "enreach_state", "open_store", "zone_from_env"]

DB_VARIABLE = "WFM_ADHERENCE_DB"
TALKING = "TALKING"
_AVAILABILITY = {
    "available": "AVAILABLE",
    "busy": "BUSY",
    "donotdisturb": "DO NOT DISTURB",
    "offwork": LOGGED_OUT,
}


def open_store() -> Store:
    """The store at `$WFM_ADHERENCE_DB`; ConfigError when it is not set."""
    path = os.environ.get(DB_VARIABLE, "").strip()
    if not path:
        raise ConfigError(f"set {DB_VARIABLE} to the SQLite file the adherence states go to")
    return Store(Path(path))


def zone_from_env(variable: str) -> tzinfo:
    """The IANA zone named by `$variable` (UTC when unset); ConfigError for an unknown one."""
    name = os.environ.get(variable, "").strip() or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{variable}: unknown time zone {name!r}") from None


def enreach_state(availability: str | None) -> str:
    """The state an Enreach availability (`DoNotDisturb`) stands for (`DO NOT DISTURB`)."""
    if availability is None:
        return "AVAILABLE"
    key = availability.replace(" ", "").lower()
    return _AVAILABILITY.get(key, availability.upper())


class WfmStates(WfmHandler):
    """Engage Voice WFM: each agent state event is a state change; answered calls are counted."""

    def __init__(self) -> None:
        super().__init__()
        self.store = open_store()

    async def on_agent_login(self, event: AgentStateEvent) -> None:
        """The agent logged in (the AVAILABLE pair follows in the same second)."""
        await self._enter(event, "LOGIN")

    async def on_agent_logout(self, event: AgentStateEvent) -> None:
        """The agent logged out: logged-out time starts."""
        await self._enter(event, LOGGED_OUT)

    async def on_agent_state(self, event: AgentStateEvent) -> None:
        """The agent entered a state, a custom one included."""
        await self._enter(event, str(event.event_type))

    async def on_end_call(self, event: EndCallEvent) -> None:
        """Count an answered call for its agent (unanswered calls have no agent)."""
        if event.agent_id is None or not event.answered or event.call_start is None:
            return
        call = Call(
            call_id=event.call_id,
            agent="engage:" + event.agent_id,
            start=event.call_start.timestamp(),
            seconds=event.call_duration or 0,
        )
        await asyncio.to_thread(self.store.add_call, call, "engage", event.username)

    async def _enter(self, event: AgentStateEvent, state: str) -> None:
        if event.date_time is None:
            raise DecodeError(f"agent {event.agent_id}: {state} event without date_time")
        await asyncio.to_thread(
            self.store.enter,
            "engage:" + event.agent_id,
            "engage",
            state,
            event.date_time.timestamp(),
            event.username,
        )


class EnreachStates(EnreachHandler):
    """Enreach: TALKING while `UserStatus` says so, else the user's `UserAvailability`."""

    entity_types = frozenset({"User"})

    def __init__(self) -> None:
        super().__init__()
        self.store = open_store()
        self.zone = zone_from_env("WFM_ADHERENCE_ENREACH_TIME_ZONE")

    async def on_user_availability(self, event: UserAvailability) -> None:
        """Remember the availability; it is the state unless the user is on a call."""
        agent = self._agent(event.user_id)
        availability = str(event.availability or "Available")
        await asyncio.to_thread(
            self.store.set_availability, agent, "enreach", availability, event.user_name
        )
        if await asyncio.to_thread(self.store.state_of, agent) != TALKING:
            await self._enter(agent, enreach_state(availability), event.timestamp, event.user_name)

    async def on_user_status(self, event: UserStatus) -> None:
        """TALKING when a call starts; back to the availability when it ends."""
        agent = self._agent(event.user_id)
        if event.talking:
            state = TALKING
        else:
            state = enreach_state(await asyncio.to_thread(self.store.availability, agent))
        await self._enter(agent, state, event.timestamp, None)

    def _agent(self, user_id: object) -> str:
        if user_id is None:
            raise DecodeError("a user event without UserId")
        return f"enreach:{user_id}"

    async def _enter(self, agent: str, state: str, at: datetime | None, name: str | None) -> None:
        if at is None:
            raise DecodeError(f"{agent}: {state} event without Timestamp")
        aware = at if at.tzinfo is not None else at.replace(tzinfo=self.zone)
        await asyncio.to_thread(self.store.enter, agent, "enreach", state, aware.timestamp(), name)

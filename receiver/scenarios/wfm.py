"""Engage Voice WFM flows: an agent's day, and calls abandoned before an agent answered.

Each flow has its own agent, so two flows never describe the same agent at the same second.
Times are WFM's zone-less wall-clock times, to the second.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from receiver.catalogs.engage_samples import (
    Agent,
    end_call_fields,
    make_agent,
    on_call_fields,
    state_fields,
)
from receiver.scenarios.flow import FlowEvent
from receiver.sender.engage_wfm import wfm_event_type

__all__ = ["FLOWS", "WfmDirectory", "make_directory", "make_flow"]


@dataclass(frozen=True, slots=True)
class WfmDirectory:
    """The account every flow of a stream belongs to."""

    account_id: str


def make_directory(rng: random.Random) -> WfmDirectory:
    """A new account."""
    return WfmDirectory(str(rng.randint(10_000_000, 99_999_999)))


class _Day:
    """Builds one agent's events on a clock that only moves forward."""

    def __init__(self, directory: WfmDirectory, rng: random.Random, start: datetime) -> None:
        self.rng = rng
        self.now = start
        self.agent: Agent = make_agent(rng, directory.account_id)
        self.state = "LOGIN"
        self.aux = "Login"
        self.entered = start
        self.events: list[FlowEvent] = []

    def wait(self, low: float, high: float) -> None:
        self.now += timedelta(seconds=self.rng.randint(int(low), int(high)))

    def emit(self, payload: dict[str, Any]) -> None:
        kind = wfm_event_type(payload)
        label = payload.get("agent_id") if kind != "EndCall" else payload.get("call_id")
        event_id = f"{kind} {label} {payload.get('event_type')} {self.now:%H:%M:%S}"
        self.events.append(FlowEvent(self.now, payload, kind, event_id))

    def login(self) -> None:
        fields = self.agent.login_fields()
        self.emit({**fields, "event_type": "LOGIN", "duration": "0", "date_time": _at(self.now)})
        # A login gives two state events in the same second: LOGIN→AVAILABLE, then
        # AVAILABLE→AVAILABLE with the aux state Available.
        self.enter("AVAILABLE", aux="Available")
        self.enter("AVAILABLE", aux="Available")

    def enter(
        self, state: str, *, aux: str | None = None, call: dict[str, str] | None = None
    ) -> None:
        seconds = int((self.now - self.entered).total_seconds())
        payload = state_fields(
            self.agent, self.now, state, self.state, seconds, aux=aux, previous_aux=self.aux
        )
        if call is not None:
            payload |= call
        self.emit(payload)
        self.state, self.aux, self.entered = state, aux or state.title(), self.now

    def take_call(self) -> None:
        call = on_call_fields(self.rng)
        started = self.now
        self.enter("ENGAGED", call=call)
        self.wait(30, 600)
        talked = int((self.now - started).total_seconds())
        self.emit(
            end_call_fields(
                self.rng,
                self.agent,
                started,
                call_id=call["call_id"],
                outbound=call["call_type"] == "VPD",
                seconds=talked,
            )
        )
        self.enter("WORKING", call=call)
        self.wait(5, 90)
        self.enter("AVAILABLE", aux="Available")

    def logout(self) -> None:
        seconds = int((self.now - self.entered).total_seconds())
        fields = self.agent.login_fields()
        self.emit(
            {**fields, "event_type": "LOGOUT", "duration": str(seconds), "date_time": _at(self.now)}
        )


def _at(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}"


def _agent_day(day: _Day) -> None:
    """Login (with its pair of AVAILABLE events), calls, a break, lunch, more calls, logout."""
    day.login()
    for _ in range(day.rng.randint(1, 3)):
        day.wait(5, 120)
        day.take_call()
    day.wait(60, 600)
    day.enter("ON BREAK")
    day.wait(300, 900)
    day.enter("AVAILABLE", aux="Available")
    day.wait(60, 600)
    day.enter("LUNCH")
    day.wait(1800, 3600)
    day.enter("AVAILABLE", aux="Available")
    for _ in range(day.rng.randint(1, 2)):
        day.wait(5, 120)
        day.take_call()
    day.wait(60, 300)
    day.logout()


def _abandoned(day: _Day) -> None:
    """A queue call the caller hangs up on before any agent answers: one end call event."""
    call = on_call_fields(day.rng)
    started = day.now
    day.wait(5, 240)
    fields = end_call_fields(day.rng, None, started, answered=False, call_id=call["call_id"])
    day.emit(fields | {"account_id": day.agent.account_id})


FLOWS: dict[str, Callable[[_Day], None]] = {"agent_day": _agent_day, "abandoned": _abandoned}
"""Every WFM flow a stream can be made of, by name."""


def make_flow(
    kind: str, directory: WfmDirectory, rng: random.Random, start: datetime
) -> list[FlowEvent]:
    """The events of one `kind` flow starting at `start`, in the order they happen."""
    day = _Day(directory, rng, start)
    FLOWS[kind](day)
    return day.events

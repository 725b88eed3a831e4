"""Engage Voice Web Services flows: what an Agent Termination web service sends per call.

The web service fires once per agent segment: a call answered by one agent gives one request,
a call transferred between agents gives one per agent, each with that agent's recording, all
with the call's `uii`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from receiver.catalogs.engage_samples import Agent, make_agent, segment_fields
from receiver.scenarios.flow import FlowEvent

__all__ = ["FLOWS", "WebServicesDirectory", "make_directory", "make_flow"]

EVENT_TYPE = "AgentTermination"
"""The trigger the scenario's web service is attached to."""


@dataclass(frozen=True, slots=True)
class WebServicesDirectory:
    """The agents every flow of a stream draws from."""

    agents: tuple[Agent, ...]


def make_directory(rng: random.Random, *, agents: int = 8) -> WebServicesDirectory:
    """An account with `agents` agents."""
    account = str(rng.randint(10_000_000, 99_999_999))
    return WebServicesDirectory(tuple(make_agent(rng, account) for _ in range(agents)))


class _Call:
    def __init__(self, directory: WebServicesDirectory, rng: random.Random, start: datetime):
        self.rng = rng
        self.directory = directory
        self.start = start
        self.now = start
        self.uii = f"{start:%Y%m%d%H%M%S}{rng.randint(0, 999_999):06d}"
        self.caller = f"+1555020{rng.randint(0, 9999):04d}"
        self.dialed = f"+1800555{rng.randint(0, 9999):04d}"
        self.events: list[FlowEvent] = []

    def segment(self, agent: Agent) -> None:
        """`agent` talks for a while, then their segment ends (the web service fires)."""
        started = self.now
        seconds = self.rng.randint(20, 600)
        self.now += timedelta(seconds=seconds)
        fields = segment_fields(self.rng, agent, self.uii, started, seconds)
        fields |= {"ani": self.caller, "dnis": self.dialed}
        label = f"{self.uii}/{agent.agent_id}"
        self.events.append(FlowEvent(self.now, fields, EVENT_TYPE, label))


def _answered(call: _Call) -> None:
    """One agent answers and finishes the call."""
    call.now += timedelta(seconds=call.rng.randint(2, 120))
    call.segment(call.rng.choice(call.directory.agents))


def _transfer(call: _Call) -> None:
    """The first agent transfers the call once or twice: one segment per agent."""
    call.now += timedelta(seconds=call.rng.randint(2, 120))
    agents = call.rng.sample(call.directory.agents, call.rng.randint(2, 3))
    for agent in agents:
        call.segment(agent)
        call.now += timedelta(seconds=call.rng.randint(1, 15))


FLOWS: dict[str, Callable[[_Call], None]] = {"answered": _answered, "transfer": _transfer}
"""Every web service flow a stream can be made of, by name."""


def make_flow(
    kind: str, directory: WebServicesDirectory, rng: random.Random, start: datetime
) -> list[FlowEvent]:
    """The requests of one `kind` call starting at `start`, in the order they are sent."""
    call = _Call(directory, rng, start)
    FLOWS[kind](call)
    return call.events

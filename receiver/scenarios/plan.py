"""Plan a stream of requests from scenario options: a pure function, no clock and no network.

Flows are interleaved by event time, as the platform would emit them; then, each with its own
random source so one ratio never changes what another produces, adjacent events of a flow are
swapped, forged twins (wrong token) are put before events and duplicates after them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from receiver.exceptions import ConfigError
from receiver.scenarios import buzzeasy, enreach, web_services, wfm
from receiver.scenarios.flow import FlowEvent

__all__ = [
    "DEFAULT_START",
    "PROVIDER_FLOWS",
    "FlowSet",
    "PlannedRequest",
    "ScenarioOptions",
    "build_stream",
]


@dataclass(frozen=True, slots=True)
class FlowSet:
    """One provider's flows: their names, the shared directory, and how to make one."""

    flows: tuple[str, ...]
    make_directory: Callable[[random.Random], Any]
    make_flow: Callable[[str, Any, random.Random, datetime], list[FlowEvent]]


PROVIDER_FLOWS: dict[str, FlowSet] = {
    "enreach": FlowSet(tuple(enreach.FLOWS), enreach.make_directory, enreach.make_flow),
    "engage_wfm": FlowSet(tuple(wfm.FLOWS), wfm.make_directory, wfm.make_flow),
    "engage_web_services": FlowSet(
        tuple(web_services.FLOWS), web_services.make_directory, web_services.make_flow
    ),
    "buzzeasy": FlowSet(tuple(buzzeasy.FLOWS), buzzeasy.make_directory, buzzeasy.make_flow),
}
"""Each provider's flows, by provider name (the endpoint kind)."""

DEFAULT_START = datetime(2024, 3, 4, 8, 0, 0)
"""When the first flow starts unless told otherwise: fixed, so a seed fixes every byte."""

MEAN_FLOW_GAP = 2.0
"""Mean seconds between the starts of consecutive flows (exponentially distributed)."""


@dataclass(frozen=True, slots=True)
class ScenarioOptions:
    """What stream to plan; the same options always plan the same stream, byte for byte."""

    calls: int = 10
    """How many flows (calls, or agent cycles for `availability`)."""
    flows: tuple[str, ...] | None = None
    """Which flows to draw from, uniformly; None: all of the provider's."""
    seed: int = 0
    duplicate_ratio: float = 0.0
    """Share of events sent a second time, same payload and Id, right after the first."""
    out_of_order_ratio: float = 0.0
    """Share of adjacent event pairs within a flow that are sent in swapped order."""
    wrong_token_ratio: float = 0.0
    """Share of events preceded by a forged copy with a wrong token (which must get a 401)."""
    start: datetime = DEFAULT_START
    provider: str = "enreach"
    """Whose flows: `enreach`, `engage_wfm`, `engage_web_services` or `buzzeasy`."""

    def __post_init__(self) -> None:
        if self.calls < 1:
            raise ConfigError(f"calls must be 1 or more, got {self.calls}")
        flow_set = PROVIDER_FLOWS.get(self.provider)
        if flow_set is None:
            raise ConfigError(
                f"unknown provider {self.provider!r}; choose from {', '.join(PROVIDER_FLOWS)}"
            )
        known = flow_set.flows
        flows = known if self.flows is None else self.flows
        unknown = [name for name in flows if name not in known]
        if unknown or not flows:
            raise ConfigError(
                f"unknown flow {', '.join(unknown) or '(none given)'}; "
                f"valid flows: {', '.join(known)}"
            )
        for name in ("duplicate_ratio", "out_of_order_ratio", "wrong_token_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name.replace('_', ' ')} must be between 0 and 1, got {value}")

    @property
    def chosen_flows(self) -> tuple[str, ...]:
        """The flows to draw from (`flows`, or all of the provider's)."""
        return PROVIDER_FLOWS[self.provider].flows if self.flows is None else self.flows


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """One request of the stream: which event, and how it is meant to be sent."""

    index: int
    """Position in the stream (0-based); with a rate, the request is due at index / rate."""
    flow: int
    """Which flow it belongs to; a flow's requests are sent one at a time, in stream order."""
    flow_kind: str
    event_type: str
    event_id: str
    payload: Mapping[str, Any] = field(hash=False)
    duplicate: bool = False
    """A second send of an event already sent (same payload, same Id)."""
    wrong_token: bool = False
    """A forged copy with a wrong token; the receiver must answer 401."""
    out_of_order: bool = False
    """Swapped with the adjacent event of its flow."""


@dataclass(slots=True)
class _Entry:
    flow: int
    kind: str
    event: FlowEvent
    out_of_order: bool = False


def build_stream(options: ScenarioOptions) -> list[PlannedRequest]:
    """The requests `options` describe, in sending order."""
    entries = _interleaved_flows(options)
    _swap_adjacent(entries, _rng(options.seed, "out-of-order"), options)
    forge = _rng(options.seed, "wrong-token")
    duplicate = _rng(options.seed, "duplicate")
    stream: list[PlannedRequest] = []
    for entry in entries:
        event = entry.event
        request = PlannedRequest(
            index=0,
            flow=entry.flow,
            flow_kind=entry.kind,
            event_type=event.event_type or str(event.payload["EventType"]),
            event_id=event.event_id or str(event.payload["Id"]),
            payload=event.payload,
            out_of_order=entry.out_of_order,
        )
        if forge.random() < options.wrong_token_ratio:
            stream.append(replace(request, wrong_token=True))
        stream.append(request)
        if duplicate.random() < options.duplicate_ratio:
            stream.append(replace(request, duplicate=True))
    return [replace(request, index=n) for n, request in enumerate(stream)]


def _rng(seed: int, purpose: str) -> random.Random:
    """A random source of its own per purpose, so one ratio never shifts what another draws."""
    return random.Random(f"{seed}/{purpose}")  # noqa: S311 (repeatability, not secrecy)


def _interleaved_flows(options: ScenarioOptions) -> list[_Entry]:
    rng = _rng(options.seed, "flows")
    flow_set = PROVIDER_FLOWS[options.provider]
    directory = flow_set.make_directory(rng)
    flows = options.chosen_flows
    timed: list[tuple[datetime, int, int, _Entry]] = []
    start = options.start
    for flow in range(options.calls):
        kind = rng.choice(flows)
        for position, event in enumerate(flow_set.make_flow(kind, directory, rng, start)):
            timed.append((event.at, flow, position, _Entry(flow, kind, event)))
        start += timedelta(milliseconds=round(rng.expovariate(1 / MEAN_FLOW_GAP) * 1000))
    timed.sort(key=lambda item: item[:3])
    return [entry for *_, entry in timed]


def _swap_adjacent(entries: list[_Entry], rng: random.Random, options: ScenarioOptions) -> None:
    """Swap, in place, adjacent events of the same flow with probability out_of_order_ratio."""
    positions: dict[int, list[int]] = {}
    for index, entry in enumerate(entries):
        positions.setdefault(entry.flow, []).append(index)
    for flow in sorted(positions):
        spots = positions[flow]
        n = 0
        while n + 1 < len(spots):
            if rng.random() < options.out_of_order_ratio:
                first, second = spots[n], spots[n + 1]
                entries[first], entries[second] = entries[second], entries[first]
                entries[first].out_of_order = entries[second].out_of_order = True
                n += 2
            else:
                n += 1

"""Realistic, reproducible event streams of every provider, for QA and load tests.

`build_stream(ScenarioOptions)` plans the requests (a pure function of its options);
`run_stream` sends them through a `receiver.sender.Sender` and returns a `Summary`.
"""

from __future__ import annotations

from receiver.scenarios.enreach import FLOWS, Directory
from receiver.scenarios.flow import FlowEvent
from receiver.scenarios.plan import (
    DEFAULT_START,
    PROVIDER_FLOWS,
    FlowSet,
    PlannedRequest,
    ScenarioOptions,
    build_stream,
)
from receiver.scenarios.progress import ProgressBar
from receiver.scenarios.runner import OnDelivery, run_stream
from receiver.scenarios.summary import Summary, percentile

__all__ = [
    "DEFAULT_START",
    "FLOWS",
    "PROVIDER_FLOWS",
    "Directory",
    "FlowEvent",
    "FlowSet",
    "OnDelivery",
    "PlannedRequest",
    "ProgressBar",
    "ScenarioOptions",
    "Summary",
    "build_stream",
    "percentile",
    "run_stream",
]

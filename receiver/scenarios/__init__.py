"""Realistic, reproducible Enreach event streams for QA and load tests.

`build_stream(ScenarioOptions)` plans the requests (a pure function of its options);
`run_stream` sends them through a `receiver.sender.Sender` and returns a `Summary`.
"""

from __future__ import annotations

from receiver.scenarios.enreach import FLOWS, Directory, FlowEvent
from receiver.scenarios.plan import DEFAULT_START, PlannedRequest, ScenarioOptions, build_stream
from receiver.scenarios.progress import ProgressBar
from receiver.scenarios.runner import OnDelivery, run_stream
from receiver.scenarios.summary import Summary, percentile

__all__ = [
    "DEFAULT_START",
    "FLOWS",
    "Directory",
    "FlowEvent",
    "OnDelivery",
    "PlannedRequest",
    "ProgressBar",
    "ScenarioOptions",
    "Summary",
    "build_stream",
    "percentile",
    "run_stream",
]

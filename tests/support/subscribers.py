"""Python subscribers that run inside receiver and worker child processes, and the config that
wires them to one Enreach endpoint beside a forwarding subscriber.

Configured by environment variables, since they run in child processes:
SUBSCRIBERS_RECORD_FILE (required): each handled event appends one JSON line to it;
SUBSCRIBERS_SLEEP: seconds each handling takes; SUBSCRIBERS_FLAKY_FLAG: `Flaky` fails while
this file exists.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from receiver.inbox.models import StoredEvent

__all__ = [
    "FLAKY_ERROR",
    "Flaky",
    "Handled",
    "Recorder",
    "assert_call_order",
    "assert_every_one",
    "assert_exactly_once",
    "assert_lane_order",
    "first_seen",
    "read_handled",
    "subscribers_config",
]

FLAKY_ERROR = "the CRM is down (flag file present)"
"""What `Flaky` raises with while its flag file exists."""


def _append(path: str, record: dict[str, object]) -> None:
    line = (json.dumps(record) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)  # one write with O_APPEND: lines of concurrent writers never mix
    finally:
        os.close(fd)


class Recorder:
    """Appends one line per event it handled: subscriber, inbox id, dedup key, order key,
    CallId, event type, attempt number and process id."""

    def __init__(self) -> None:
        self.record_file = os.environ["SUBSCRIBERS_RECORD_FILE"]
        self.sleep = float(os.environ.get("SUBSCRIBERS_SLEEP", "0"))

    def check(self, event: StoredEvent) -> None:
        """Raise to fail the attempt (subclasses)."""

    async def handle(self, event: StoredEvent) -> None:
        """Take `SUBSCRIBERS_SLEEP` seconds, then record the event (unless `check` raises)."""
        if self.sleep:
            await asyncio.sleep(self.sleep)
        self.check(event)
        payload: Any = orjson.loads(event.payload)
        call_id = payload.get("CallId") if isinstance(payload, dict) else None
        _append(
            self.record_file,
            {
                "subscriber": event.subscriber,
                "id": event.id,
                "key": event.dedup_key,
                "order_key": event.order_key,
                "call_id": call_id,
                "type": event.event_type,
                "attempt": event.attempts + 1,
                "pid": os.getpid(),
            },
        )

    async def failed(self, event: StoredEvent, error: BaseException, *, final: bool) -> None:
        """Nothing: the inbox keeps the attempt history."""


class Flaky(Recorder):
    """`Recorder` that fails every attempt while the file `SUBSCRIBERS_FLAKY_FLAG` exists."""

    def __init__(self) -> None:
        super().__init__()
        self.flag = Path(os.environ["SUBSCRIBERS_FLAKY_FLAG"])

    def check(self, event: StoredEvent) -> None:
        """Fail while the flag file exists."""
        if self.flag.exists():
            raise ConnectionError(FLAKY_ERROR)


@dataclass(frozen=True, slots=True)
class Handled:
    """One line `Recorder` wrote."""

    subscriber: str
    id: int
    key: str
    order_key: str | None
    call_id: str | None
    type: str
    attempt: int
    pid: int


def read_handled(path: Path, subscriber: str | None = None) -> list[Handled]:
    """Every event recorded so far (of `subscriber`), in the order handled."""
    if not path.exists():
        return []
    found = [Handled(**json.loads(line)) for line in path.read_text().splitlines() if line]
    return [h for h in found if subscriber is None or h.subscriber == subscriber]


def subscribers_config(
    *,
    forward: str | None = None,
    forward_secret_env: str = "E2E_FORWARD_SECRET",  # noqa: S107 - a variable name
    ca_file: Path | None = None,
    handlers: Sequence[tuple[str, str]] = (("crm", "Recorder"), ("flaky", "Flaky")),
    events: dict[str, Sequence[str]] | None = None,
    secret_env: str = "RECEIVER_ENREACH_SECRET",  # noqa: S107 - a variable name
    forward_name: str = "sink",
) -> str:
    """A receiver.toml with one Enreach endpoint (token from `secret_env`) whose subscribers
    are `handlers` (name, class in this module) and, with `forward`, a forwarding subscriber
    `forward_name` signing with the secret in `forward_secret_env`; `events` filters by name."""
    events = events or {}

    def filtered(name: str) -> str:
        wanted = events.get(name)
        return f"events = {json.dumps(list(wanted))}\n" if wanted is not None else ""

    text = f"""
[[endpoints]]
name = "enreach"
kind = "enreach"
path = "/enreach"
secret_env = [{json.dumps(secret_env)}]
"""
    for name, cls in handlers:
        text += f"""
[[endpoints.subscribers]]
name = {json.dumps(name)}
handler = "tests.support.subscribers:{cls}"
{filtered(name)}"""
    if forward is not None:
        text += f"""
[[endpoints.subscribers]]
name = {json.dumps(forward_name)}
forward = {json.dumps(forward)}
secret_env = [{json.dumps(forward_secret_env)}]
{filtered(forward_name)}"""
        if ca_file is not None:
            text += f"ca_file = {json.dumps(str(ca_file))}\n"
    return text


# -- what the test process checks --------------------------------------------------------


def first_seen(keys: Sequence[str]) -> list[str]:
    """`keys` without repeats, each where it first appears."""
    return list(dict.fromkeys(keys))


def assert_exactly_once(keys: Sequence[str], expected: set[str], who: str) -> None:
    """Every expected key once, and nothing else."""
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    assert not repeated, f"{who}: {len(repeated)} event(s) handled more than once: {repeated[:5]}"
    assert_every_one(keys, expected, who)


def assert_every_one(keys: Sequence[str], expected: set[str], who: str) -> None:
    """Every expected key at least once, and nothing else."""
    missing = expected - set(keys)
    extra = set(keys) - expected
    assert not missing, f"{who}: {len(missing)} of {len(expected)} event(s) missing"
    assert not extra, f"{who}: {len(extra)} event(s) that were never sent"


def assert_lane_order(
    keys: Sequence[str], arrival: dict[str, tuple[int, str | None]], who: str
) -> None:
    """Within each order key (call), the events were first handled in arrival order: their
    inbox ids (`arrival`: dedup key to inbox id and order key) increase."""
    lanes: dict[str, list[int]] = {}
    for key in first_seen(keys):
        event_id, order_key = arrival[key]
        lanes.setdefault(order_key or f"#{event_id}", []).append(event_id)
    wrong = {lane: ids for lane, ids in lanes.items() if ids != sorted(ids)}
    assert not wrong, f"{who}: {len(wrong)} call(s) handled out of arrival order: {wrong}"


def assert_call_order(keys: Sequence[str], planned: dict[str, list[str]], who: str) -> None:
    """Within each call, the events were first handled in the order they were sent
    (`planned`: CallId to the dedup keys of its events in sending order)."""
    position = {key: (call, n) for call, keys_ in planned.items() for n, key in enumerate(keys_)}
    seen: dict[str, list[str]] = {}
    for key in first_seen(keys):
        if key in position:
            seen.setdefault(position[key][0], []).append(key)
    wrong = [call for call, got in seen.items() if got != planned[call]]
    assert not wrong, (
        f"{who}: {len(wrong)} call(s) not handled in sending order, e.g. {wrong[0]}: "
        f"sent {planned[wrong[0]]}, handled {seen[wrong[0]]}"
        if wrong
        else ""
    )

"""`python -m examples.forward_node`: the receiver forwarding calls to the Node.js service.

Runs `npm ci` in this folder when node_modules/ is missing, then starts, on free loopback
ports, server.js and `receiver serve` with a copy of receiver.toml forwarding to it. Sends call
flows as Enreach would (some events twice, as a provider retries; some with a wrong token),
waits until the Node.js service has handled every event, replays one call's events to show
that a webhook-id is handled once, prints what happened (phone numbers masked) and exits 0,
or 1 when an event did not reach the service once and in order.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from examples.forward_node.service import (
    NodeService,
    calls_handled,
    calls_planned,
    ensure_node_modules,
    inbox,
    new_signing_secret,
    receiver_config,
    send,
)
from receiver.redaction import redact_phone_numbers
from receiver.scenarios import PlannedRequest, ScenarioOptions, Summary, build_stream
from receiver.testing import ReceiverProcess, throwaway_certificates

__all__ = ["main"]

FLOWS = ("inbound", "transfer")
"""Enreach flows with a caller: each call's events share a CallId, the order key."""


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 when every event reached the Node.js service once, in order."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.forward_node", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--calls", type=int, default=3, help="calls to send (default 3)")
    parser.add_argument("--seed", type=int, default=17, help="the scenario's seed (default 17)")
    args = parser.parse_args(argv)
    print("forward_node: installing the npm packages if node_modules/ is missing", flush=True)
    ensure_node_modules()
    with tempfile.TemporaryDirectory(prefix="forward-node-") as tmp:
        return run(Path(tmp), args.calls, args.seed)


def run(work: Path, calls: int, seed: int) -> int:
    """The demo in the folder `work` (certificates, inbox, logs, the events file)."""
    certs = throwaway_certificates(work / "certs")
    token = secrets.token_urlsafe(24)  # the Enreach webhook's Secret
    signing = new_signing_secret()  # the subscriber's: the receiver signs, node verifies
    options = ScenarioOptions(
        calls=calls, seed=seed, flows=FLOWS, duplicate_ratio=0.2, wrong_token_ratio=0.1
    )
    stream = build_stream(options)
    planned = calls_planned(stream)
    with NodeService(work, secret=signing, events=work / "events.jsonl") as node:
        config = receiver_config(work / "receiver.toml", node.url)
        receiver = ReceiverProcess(
            work,
            certs=certs,
            secret=token,
            args=["--config", str(config)],
            env={"FORWARD_NODE_SECRET": signing},
        )
        with receiver:
            print(f"forward_node: node service {node.url}, receiver {receiver.url('/enreach')}")
            summary = send(receiver.url("/enreach"), certs.ca, token, stream)
            records = node.wait_for_records(sum(len(ids) for ids in planned.values()))
            first = next(iter(planned))
            replayed = inbox(
                receiver.inbox, "replay", "--subscriber", "node", "--call", first, "--done-too"
            )["replayed"]
            _wait_for_repeats(node, replayed)
            after = node.records()
    _report(stream, summary, records, node.log, replayed)
    problems = _problems(summary, planned, records, after)
    for problem in problems:
        print(f"forward_node: FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _wait_for_repeats(node: NodeService, count: int, timeout: float = 30.0) -> None:
    """Wait until node has logged `count` events it had handled before."""
    deadline = time.monotonic() + timeout
    while node.log.count("handled before, not again") < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the {count} replayed events did not reach node:\n{node.log}")
        time.sleep(0.1)


def _problems(
    summary: Summary,
    planned: dict[str, list[str]],
    records: list[dict[str, Any]],
    after: list[dict[str, Any]],
) -> list[str]:
    problems = []
    if not summary.ok:
        problems.append("the receiver did not acknowledge every event, or took a wrong token")
    ids = [record["webhook_id"] for record in records]
    if len(set(ids)) != len(ids):
        problems.append("node handled a webhook-id twice")
    if calls_handled(records) != planned:
        problems.append("node did not get each call's events once each, in order")
    if after != records:
        problems.append("the replayed events were handled again")
    return problems


def _report(
    stream: list[PlannedRequest],
    summary: Summary,
    records: list[dict[str, Any]],
    node_log: str,
    replayed: int,
) -> None:
    forged = sum(p.wrong_token for p in stream)
    print(
        f"sent {summary.sent} requests as Enreach would: {summary.acknowledged} acknowledged, "
        f"{summary.duplicates_sent} of them a provider's retry of an event sent before, "
        f"{forged} with a wrong token ({summary.rejected_as_expected} refused with 401)"
    )
    print(
        f"node verified each signature and handled {len(records)} events, each once "
        f"(one JSON line each in its events file):"
    )
    for call, events in _by_call(records).items():
        caller = redact_phone_numbers(str(events[0]["event"].get("CallerNumber", "?")))
        print(f"  call {call}  caller {caller}  {len(events)} events:")
        print("    " + ", ".join(str(r["type"]) for r in events))
    print(
        f"replayed the first call's {replayed} events to node: each answered 204, "
        "handled before, not again"
    )
    lines = [line for line in node_log.splitlines() if line.startswith("node-service: ")]
    print("node's log, one line per request (no phone numbers), the first three:")
    for line in lines[1:4]:
        print("  " + line)


def _by_call(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    calls: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        calls.setdefault(str(record["event"].get("CallId")), []).append(record)
    return calls


if __name__ == "__main__":
    sys.exit(main())

"""The CRM bridge end to end on this machine: `python -m examples.crm_bridge`.

Starts the stand-in CRM (standin.py) on a free loopback port, told to answer the first
requests 429 (Retry-After: 1), 429, and 503 after making the activity (an answer lost on the
way); starts `receiver serve` with receiver.toml on another, with throwaway certificates and
secrets in a temporary folder; sends Enreach queue calls and Buzzeasy work items with
`receiver scenario`; waits until every delivery is settled; then has the CRM refuse one more
call with 422 (a dead letter at once). Prints what the CRM answered and holds, phone numbers
and e-mail addresses masked; exits 0 when there is one activity per ended call and closed
work item, none twice, and the refused one is a dead letter.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from receiver.redaction import redact_email_addresses, redact_phone_numbers
from receiver.testing import ReceiverProcess, throwaway_certificates

from .standin import Answer, StandInCrm

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONFIG = HERE / "receiver.toml"
ENDED = {"QueueCallInDisconnected", "WorkItemClosed"}
"""The events that make an activity."""


def receiver_cli(args: Sequence[str], env: dict[str, str]) -> str:
    """Run `receiver ARGS` (as this Python); its output, or SystemExit with its errors."""
    done = subprocess.run(
        [sys.executable, "-m", "receiver", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"receiver {args[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def activities_planned(scenario: Sequence[str], env: dict[str, str]) -> int:
    """How many activities `receiver scenario SCENARIO` should make: its distinct ended
    queue calls and closed work items (duplicates are the same event)."""
    planned = receiver_cli([*scenario, "--dry-run"], env).splitlines()
    ids = {(e["event_type"], e["event_id"]) for e in map(json.loads, planned)}
    return sum(1 for event_type, _ in ids if event_type in ENDED)


def wait_for(what: str, ready: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll `ready` until true; SystemExit naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def settled(inbox: Path, env: dict[str, str]) -> bool:
    """Whether no delivery of `inbox` is pending or in progress."""
    stats = json.loads(receiver_cli(["inbox", "stats", "--json", "--inbox", str(inbox)], env))
    by_state: dict[str, int] = stats["by_state"]
    return by_state["pending"] == 0 and by_state["in_progress"] == 0


def masked(value: object) -> str:
    """`value` as text, phone numbers and e-mail addresses masked."""
    return redact_email_addresses(redact_phone_numbers(str(value)))


def describe(activity: dict[str, Any]) -> str:
    """One line of an activity as the CRM holds it."""
    seconds = activity.get("duration_seconds")
    return "  ".join(
        (
            f"#{activity['id']:<2}",
            f"{activity['type']:<7} {activity['direction']:<7} {activity['outcome']:<10}",
            masked(activity.get("phone") or "-"),
            masked(activity.get("agent") or "-"),
            str(activity.get("queue") or "-"),
            f"{seconds} s" if seconds is not None else "",
        )
    ).rstrip()


def run(calls: int, seed: int, folder: Path) -> int:
    """The demo in `folder`; the exit status."""
    api_key = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))),
        "RECEIVER_ENREACH_SECRET": secrets.token_urlsafe(24),
        "RECEIVER_BUZZEASY_SECRET": secrets.token_urlsafe(24),
        "CRM_API_KEY": api_key,
        "CRM_BRIDGE_STATE": str(folder / "crm_bridge.db"),
    }
    with StandInCrm(api_key) as crm:
        crm.answer_next(Answer(429, retry_after=1), Answer(429, retry_after=1))
        crm.answer_next(Answer(503, commit=True))
        env["CRM_URL"] = crm.url
        certs = throwaway_certificates(folder / "certs")
        receiver = ReceiverProcess(
            folder,
            certs=certs,
            secret=env["RECEIVER_ENREACH_SECRET"],
            args=["--config", str(CONFIG)],
            env=env,
        )
        with receiver:
            tls = ["--cacert", str(certs.ca), "--seed", str(seed)]
            enreach = ["scenario", receiver.url("/enreach"), "--calls", str(calls), *tls]
            enreach += ["--flows", "inbound,transfer,overflow", "--duplicate-ratio", "0.2"]
            buzzeasy = ["scenario", receiver.url("/buzzeasy"), "--provider", "buzzeasy", *tls]
            buzzeasy += ["--calls", str(max(1, calls // 2)), "--flows", "chat"]
            expected = activities_planned(enreach, env) + activities_planned(buzzeasy, env)
            print(f"stand-in CRM {crm.url}; receiver {receiver.base_url}")
            for scenario in (enreach, buzzeasy):
                receiver_cli([*scenario, "--json"], env)
            wait_for("the activities", lambda: len(crm.activities) >= expected)
            wait_for("settled deliveries", lambda: settled(receiver.inbox, env))
            made = len(crm.activities)
            crm.answer_next(Answer(422))
            one_more = [receiver.url("/enreach"), "QueueCallInDisconnected", "--cacert"]
            receiver_cli(["send", *one_more, str(certs.ca)], env)
            dead_args = ["inbox", "dead", "--json", "--inbox", str(receiver.inbox)]
            wait_for("the dead letter", lambda: bool(json.loads(receiver_cli(dead_args, env))))
            dead = json.loads(receiver_cli(dead_args, env))
        answers = Counter(status for _, status, _ in crm.answers)
        keys = [a["external_id"] for a in crm.activities]
    print(
        f"sent {calls} Enreach calls and {max(1, calls // 2)} Buzzeasy chats (some twice)."
        f" The CRM answered {answers[201]} x 201 (made), {answers[200]} x 200 (made already:"
        f" the retry after a lost answer), {answers[429]} x 429 and {answers[503]} x 503"
        f" (retried), {answers[422]} x 422 (refused)."
    )
    print(f"the CRM holds {made} activities (one per ended call or closed work item):")
    for activity in crm.activities:
        print(describe(activity))
    for letter in dead:
        print(f"dead letter #{letter['id']} {letter['event_type']}: {letter['last_error']}")
    ok = made == expected and len(set(keys)) == len(keys) and len(dead) == 1
    print("OK" if ok else f"FAILED: expected {expected} activities, one each, and 1 dead letter")
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, run the demo in a temporary folder."""
    parser = argparse.ArgumentParser(prog="python -m examples.crm_bridge", description=__doc__)
    parser.add_argument("--calls", type=int, default=6, help="Enreach flows to send (6)")
    parser.add_argument("--seed", type=int, default=17, help="the scenario's seed (17)")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="crm-bridge-") as folder:
        return run(options.calls, options.seed, Path(folder))


if __name__ == "__main__":
    sys.exit(main())

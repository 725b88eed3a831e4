"""`python -m examples.sms_feedback`: the example end to end on this machine, then a summary.

Starts the stand-in SMS gateway and `receiver serve` with `SmsFeedback` on free loopback
ports (in a temporary folder, removed afterwards), plays Enreach queue calls at it with
`receiver scenario` (answered, transferred and unanswered calls, some events sent twice and
some pairs swapped), sends three answered calls of its own that must get nothing (a hidden
number, an extension, one of the company's numbers), waits for the questionnaires, and prints
what became of each call with phone numbers masked. Exit 0 when every answered outside call
got exactly one SMS and nobody else got any.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from examples.sms_feedback.local import ZONE, LocalStack, answered_call, quiet_window
from examples.sms_feedback.sender import masked
from examples.sms_feedback.store import FINAL, Row
from receiver.scenarios import ScenarioOptions, build_stream

FLOWS = ("inbound", "transfer", "overflow")
ANSWERED = ("inbound", "transfer")
OWN_CALLERS = ("", "2345", "+358 10 123 4567")
"""A hidden number, an extension, a company number: answered, and texted nothing."""


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 when the outcome is right."""
    parser = argparse.ArgumentParser(prog="python -m examples.sms_feedback", description=__doc__)
    parser.add_argument("--calls", type=int, default=6, help="scenario calls (default 6)")
    parser.add_argument("--seed", type=int, default=5, help="the scenario's seed (default 5)")
    parser.add_argument("--delay", type=float, default=2.0, help="SMS_DELAY_SECONDS (default 2)")
    parser.add_argument(
        "--quiet-for",
        type=float,
        default=8.0,
        metavar="SECONDS",
        help="quiet hours that end this long after the start (default 8; 0: none)",
    )
    args = parser.parse_args(argv)
    quiet = "off"
    if args.quiet_for > 0:
        quiet = quiet_window(datetime.now().astimezone() + timedelta(seconds=args.quiet_for))
    sms = {"SMS_DELAY_SECONDS": str(args.delay), "SMS_QUIET_HOURS": quiet}
    plan = build_stream(ScenarioOptions(calls=args.calls, flows=FLOWS, seed=args.seed))
    answered = {p.flow for p in plan if p.flow_kind in ANSWERED}
    with (
        tempfile.TemporaryDirectory(prefix="sms-feedback-") as tmp,
        LocalStack(Path(tmp), sms=sms) as stack,
    ):
        print(f"receiver:  {stack.url}")
        print(f"gateway:   {stack.gateway.url} (the local stand-in)")
        zone = "" if quiet == "off" else f" {ZONE}"
        print(f"settings:  delay {args.delay:g} s, quiet hours {quiet}{zone}")
        stack.scenario(
            "--calls", str(args.calls), "--flows", ",".join(FLOWS), "--seed", str(args.seed),
            "--duplicate-ratio", "0.3", "--out-of-order-ratio", "0.2",
        )  # fmt: skip
        for caller in OWN_CALLERS:
            for payload in answered_call(caller):
                stack.send(payload)
        print(
            f"sent:      {args.calls} scenario calls ({len(answered)} answered; events "
            f"repeated and swapped) and {len(OWN_CALLERS)} answered calls from a hidden "
            "number, an extension and a company number"
        )
        expected = len(answered) + len(OWN_CALLERS)
        deadline = time.monotonic() + args.delay + max(args.quiet_for, 0) + 30
        rows = stack.rows()
        while _decided(rows) < expected and time.monotonic() < deadline:
            time.sleep(0.2)
            rows = stack.rows()
        print()
        for row in rows:
            print(_line(row))
        return _verdict(stack, rows, expected)


def _decided(rows: list[Row]) -> int:
    return sum(row.state in FINAL for row in rows)


def _clock(moment: float | None) -> str:
    return "-" if moment is None else f"{datetime.fromtimestamp(moment, ZoneInfo(ZONE)):%H:%M:%S}"


def _line(row: Row) -> str:
    who = f"call {row.call_id[:8]}  {masked(row.caller):<16}"
    if row.state == "sent":
        return f"{who} SMS {row.message_id} due {_clock(row.due_at)}, sent {_clock(row.sent_at)}"
    if row.state == "open":
        return f"{who} no SMS: not answered"
    return f"{who} {row.state}: {row.note or ''}"


def _verdict(stack: LocalStack, rows: list[Row], expected: int) -> int:
    messages = stack.gateway.messages
    per_call = Counter(message.key for message in messages)
    sent = [row for row in rows if row.state == "sent"]
    ok = (
        _decided(rows) == expected
        and len(messages) == len(sent)
        and all(count == 1 for count in per_call.values())
        and all(row.sent_at is not None and row.due_at is not None for row in sent)
    )
    print()
    print(
        f"gateway:   {len(messages)} SMS for {len(sent)} answered outside call(s), "
        f"{stack.gateway.requests} request(s); {'as expected' if ok else 'NOT as expected'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

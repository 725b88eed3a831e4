"""`receiver inbox erase`: remove one person's data from every stored event, on request.

Every event that still has its payload is read once, a page at a time, and matched against a
`PersonalDataQuery` (phone numbers compared as E.164, e-mail addresses, a field's value, call
ids). What matched is counted by delivery state and, once confirmed (or with `--yes`), erased:
payload, request headers and error texts removed, deliveries still to be made discarded, dedup
keys kept so that a provider's retry of an erased event is acknowledged and not delivered
again. Progress goes to stderr; `--json` prints a report for the record of processing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable

from receiver.inbox.base import InboxAdmin
from receiver.personal_data import PersonalDataQuery
from receiver.redaction import mask_personal, printable

__all__ = ["add_erase_arguments", "erase", "find_matches"]

PAGE = 1000
"""Events read per query while searching."""
ERASE_BATCH = 500
"""Events erased per transaction."""
PROGRESS_EVERY = 1.0
"""Seconds between two progress lines on stderr."""


def add_erase_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `receiver inbox erase`."""
    parser.set_defaults(refuse=parser.error)
    parser.add_argument(
        "--phone", action="append", default=[], metavar="NUMBER", help="repeatable; any form"
    )
    parser.add_argument("--email", action="append", default=[], metavar="ADDRESS")
    parser.add_argument(
        "--field", action="append", default=[], metavar="NAME=VALUE", type=_field,
        help="a payload member NAME (any depth, any case) whose value is exactly VALUE",
    )  # fmt: skip
    parser.add_argument(
        "--call", dest="calls", action="append", default=[], metavar="CALL_ID",
        help="every event of this call (its order key, or any value equal to it)",
    )  # fmt: skip
    parser.add_argument(
        "--region", metavar="CC",
        help="country of numbers written without a country code (ISO 3166, e.g. FI)",
    )  # fmt: skip
    parser.add_argument("--yes", action="store_true", help="erase without asking")
    parser.add_argument(
        "--unmasked", action="store_true", help="show the numbers and addresses asked for"
    )


def _field(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{printable(text, 40)!r}: expected NAME=VALUE")
    return name.strip(), value


def find_matches(
    admin: InboxAdmin,
    query: PersonalDataQuery,
    progress: Callable[[int, int], None] | None = None,
) -> list[int]:
    """The ids of the events whose payload (or order key) `query` matches, oldest first;
    `progress(read, matched)` is called after each page."""
    found: list[int] = []
    after, read = 0, 0
    while rows := admin.payloads(after, PAGE):
        found += [row.id for row in rows if query.matches(row.payload, row.order_key)]
        read += len(rows)
        after = rows[-1].id
        if progress is not None:
            progress(read, len(found))
    return found


def erase(admin: InboxAdmin, args: argparse.Namespace) -> int:
    """Search, report, confirm, erase; 0 when done (or nothing matched), 1 when declined."""
    query = PersonalDataQuery(
        phones=tuple(args.phone),
        emails=tuple(args.email),
        fields=tuple(args.field),
        calls=tuple(args.calls),
        region=args.region.upper() if args.region else None,
    )
    shown = query.describe() if args.unmasked else mask_personal(query.describe())
    started, last = time.monotonic(), [0.0]

    def progress(read: int, matched: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY:
            last[0] = now
            print(f"searched {read:,} events, {matched:,} match", file=sys.stderr, flush=True)

    ids = find_matches(admin, query, progress)
    searched = time.monotonic() - started
    if not ids:
        _report(args, shown, ids, {}, erased=False)
        if not args.json:
            print(f"no stored event holds {printable(shown, 500)} (searched in {searched:.1f}s)")
        return 0
    before = count_states(admin, ids)
    if not args.json:
        states = ", ".join(f"{label} {count:,}" for label, count in sorted(before.items()))
        print(
            f"{len(ids):,} event(s) hold {printable(shown, 500)} (searched in {searched:.1f}s); "
            f"their deliveries: {states or 'none'}"
        )
    if not args.yes:
        if not sys.stdin.isatty():
            args.refuse("add --yes to erase without being asked")
        answer = input(
            f"erase the payload, headers and errors of these {len(ids):,} event(s)? Their "
            "dedup keys stay; deliveries not yet made are discarded. [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            print("receiver: nothing erased", file=sys.stderr)
            return 1
    by_state: dict[str, int] = {}
    for start in range(0, len(ids), ERASE_BATCH):
        for label, count in admin.erase(ids[start : start + ERASE_BATCH]).items():
            by_state[label] = by_state.get(label, 0) + count
    if args.json:
        _report(args, shown, ids, by_state, erased=True)
    else:
        print(
            f"erased {len(ids):,} event(s): payloads, headers and errors removed, dedup keys "
            "kept; deliveries still to be made are discarded"
        )
    return 0


def count_states(admin: InboxAdmin, ids: list[int]) -> dict[str, int]:
    """The deliveries of events `ids` by state label."""
    counts: dict[str, int] = {}
    for event_id in ids:
        record = admin.get(str(event_id))
        for delivery in record.deliveries if record else ():
            counts[delivery.state.label] = counts.get(delivery.state.label, 0) + 1
    return counts


def _report(
    args: argparse.Namespace,
    shown: str,
    ids: list[int],
    by_state: dict[str, int],
    *,
    erased: bool,
) -> None:
    if not args.json:
        return
    report = {
        "searched_for": shown,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "matched": len(ids),
        "erased": len(ids) if erased else 0,
        "deliveries_by_state": by_state,
        "event_ids": [str(i) for i in ids],
    }
    print(json.dumps(report, indent=2))

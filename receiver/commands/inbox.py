"""`receiver inbox stats|list|show|dead|replay`: look inside the inbox, replay dead letters."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from receiver.config import load_settings
from receiver.inbox.admin import InboxAdmin
from receiver.inbox.base import inbox_path
from receiver.inbox.models import State, StoredEvent
from receiver.logs import printable

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `inbox` command and its subcommands."""
    parser = sub.add_parser("inbox", help="look inside the inbox; replay dead letters")
    parser.add_argument("--inbox", help="inbox path or URL (default: from config, inbox.db)")
    parser.add_argument("--config", help="config file (default receiver.toml if present)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("stats", help="counts by state and source", parents=[common])
    listing = actions.add_parser("list", help="newest events first", parents=[common])
    listing.add_argument("--state", choices=[s.label for s in State])
    listing.add_argument("--source")
    listing.add_argument("--type", dest="event_type")
    listing.add_argument("--limit", type=int, default=50)
    show = actions.add_parser("show", help="one event with its payload", parents=[common])
    show.add_argument("id", type=int)
    dead = actions.add_parser("dead", help="dead letters, newest first", parents=[common])
    dead.add_argument("--limit", type=int, default=50)
    replay = actions.add_parser("replay", help="make dead letters pending again", parents=[common])
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", nargs="*", type=int, default=[], help="inbox ids")
    which.add_argument("--all", action="store_true", help="every dead letter")
    parser.set_defaults(func=run)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _record(event: StoredEvent, *, payload: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": event.id,
        "source": event.source,
        "event_type": event.event_type,
        "dedup_key": event.dedup_key,
        "order_key": event.order_key,
        "state": event.state.label,
        "attempts": event.attempts,
        "received_at": _when(event.received_at),
        "next_attempt_at": _when(event.next_attempt_at),
        "finished_at": _when(event.finished_at),
        "last_error": event.last_error,
    }
    if payload:
        try:
            record["payload"] = json.loads(event.payload)
            # A payload stored before nesting was bounded may be too deep to print.
            json.dumps(record["payload"], indent=2)
        except (ValueError, RecursionError):
            record["payload"] = event.payload.decode("utf-8", "replace")
    return record


def _table(events: list[StoredEvent]) -> None:
    if not events:
        print("(none)")
        return
    print(f"{'ID':>8}  {'STATE':<11} {'TRIES':>5}  {'RECEIVED (UTC)':<23}  {'TYPE':<32} ERROR")
    for e in events:
        error = printable((e.last_error or "").replace("\n", " "), 60)
        print(
            f"{e.id:>8}  {e.state.label:<11} {e.attempts:>5}  {_when(e.received_at):<23}  "
            f"{printable(e.event_type)[:32]:<32} {error}"
        )


def run(args: argparse.Namespace) -> int:
    """Run one inbox action."""
    config = Path(args.config) if args.config else None
    url = args.inbox or load_settings(config_file=config).inbox
    admin = InboxAdmin(inbox_path(url))
    try:
        return _act(admin, args)
    finally:
        admin.close()


def _act(admin: InboxAdmin, args: argparse.Namespace) -> int:
    if args.action == "stats":
        stats = admin.stats()
        if args.json:
            print(json.dumps(stats.as_dict(), indent=2))
        else:
            print(f"inbox {stats.path} ({stats.file_bytes / 1e6:.1f} MB)")
            for label, count in stats.by_state.items():
                print(f"  {label:<12}{count:>10}")
            for source, count in sorted(stats.by_source.items()):
                print(f"  source {source}: {count}")
            if stats.oldest_open_age is not None:
                print(f"  oldest unfinished event: {stats.oldest_open_age:.0f}s ago")
        return 0
    if args.action in ("list", "dead"):
        state = (
            State.DEAD
            if args.action == "dead"
            else (State[args.state.upper()] if args.state else None)
        )
        events = admin.list(
            state=state,
            source=getattr(args, "source", None),
            event_type=getattr(args, "event_type", None),
            limit=args.limit,
        )
        if args.json:
            print(json.dumps([_record(e) for e in events], indent=2))
        else:
            _table(events)
        return 0
    if args.action == "show":
        event = admin.get(args.id)
        if event is None:
            print(f"receiver: no event {args.id} in the inbox", file=sys.stderr)
            return 1
        record = _record(event, payload=True)
        if args.json:
            print(json.dumps(record, indent=2))
        else:
            for key, value in record.items():
                if key != "payload":  # text from a request: escaped, so it cannot steer a terminal
                    print(f"{key:>16}: {printable(str(value), 2000)}")
            print(json.dumps(record["payload"], indent=2))
        return 0
    # replay
    count = admin.replay(None if args.all else args.ids)
    if args.json:
        print(json.dumps({"replayed": count}))
    else:
        print(f"replayed {count} dead letter(s); a running receiver picks them up within a second")
    if not args.all and count < len(args.ids):
        print(f"receiver: {len(args.ids) - count} id(s) were not dead letters", file=sys.stderr)
        return 1
    return 0

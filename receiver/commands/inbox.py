"""`receiver inbox stats|list|dead|show|tail|replay|discard|erase|new-key|migrate|copy`: look
inside the inbox, follow it, fix dead letters, erase a person's data, make an encryption key,
create or upgrade its schema, copy it into another.

Everything goes through `open_admin` (and `receiver.inbox.copy` for whole inboxes), so the
commands work on any inbox backend; event ids are text the backend parses. Whatever came
from a request (types, keys, payloads, errors) is escaped before it reaches the terminal.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from receiver.config import load_settings
from receiver.inbox.base import InboxAdmin, describe_inbox, open_admin
from receiver.inbox.copy import CopyReport, copy_inbox, migrate_inbox
from receiver.inbox.models import (
    ERASED,
    Attempt,
    EventFilter,
    EventRecord,
    State,
    StoredEvent,
    phone_digits,
)
from receiver.logs import printable
from receiver.redaction import mask_json, mask_personal

__all__ = ["first_line", "parse_when", "register", "run", "utc"]

WHEN_FORMS = (
    "expected an ISO 8601 time (2026-11-30T09:00:00Z, 2026-11-30 09:00, 2026-11-30; UTC unless "
    "it has an offset) or an age (90s, 15m, 2h, 3d)"
)
_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_FILTERS = ("subscriber", "source", "event_type", "order_key", "phone", "since", "until")


def parse_when(text: str, *, now: float | None = None) -> float:
    """Unix time of `text`: ISO 8601 (naive is UTC) or an age such as `15m` (that long ago)."""
    value = text.strip()
    age = _AGE.fullmatch(value.lower())
    if age:
        return (time.time() if now is None else now) - float(age[1]) * _UNIT[age[2]]
    try:
        when = dt.datetime.fromisoformat(value)
        return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"{printable(text, 40)!r}: {WHEN_FORMS}") from None


def _phone(text: str) -> str:
    if phone_digits(text) is None:
        raise argparse.ArgumentTypeError(
            f"{printable(text, 40)!r} is not a phone number (digits, an optional leading +, and "
            "spaces, dashes, dots, slashes or brackets between them)"
        )
    return text


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{printable(text, 40)!r} is not a positive whole number")
    return number


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `inbox` command and its actions."""
    parser = sub.add_parser(
        "inbox",
        help="look inside the inbox; replay or discard dead letters; migrate or copy it",
        description="Look inside the inbox and fix dead letters. Each event has one delivery "
        "per subscriber, with its own state, attempts and errors. Exit 1 when an event or an "
        "action's ids match nothing, 2 for bad usage or an inbox that cannot be opened.",
    )
    _add_location(parser, default=None)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON")
    # Also after the action (`receiver inbox list --inbox x.db`), not reset there when before.
    _add_location(common, default=argparse.SUPPRESS)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    actions.add_parser("stats", help="counts by state, subscriber and source", parents=[common])
    listing = actions.add_parser("list", help="deliveries, newest first", parents=[common])
    _add_filters(listing, states=True)
    _add_limit(listing)
    dead = actions.add_parser("dead", help="dead letters, newest first", parents=[common])
    _add_filters(dead)
    _add_limit(dead)
    show = actions.add_parser(
        "show", help="one event: payload, deliveries, attempt history", parents=[common]
    )
    show.add_argument("id", metavar="ID", help="the event's id (from list)")
    for reading in (listing, dead, show):
        reading.add_argument(
            "--unmasked",
            action="store_true",
            help="show phone numbers and e-mail addresses (masked by default)",
        )
    tail = actions.add_parser(
        "tail",
        help="follow new events and attempts as they happen",
        parents=[common],
        description="Print each new event (time, id, source, type, call id, subscribers) and "
        "each delivery attempt (time, id, subscriber, outcome, duration, error) as it happens, "
        "one line each (--json: one JSON object per line), until Ctrl-C or SIGTERM; then a "
        "summary line on stderr. Phone numbers in call ids, types and errors are masked.",
    )
    _add_filters(tail, until=False, since_help="start from this time (default: now)")
    from receiver.commands.inbox_tail import add_tail_arguments

    add_tail_arguments(tail)
    replay = actions.add_parser(
        "replay",
        help="make dead letters pending again",
        parents=[common],
        description="Make dead deliveries pending again (a running receiver picks them up "
        "within a second), keeping their history. Give event ids, or --all, or filters.",
    )
    _add_selection(replay)
    replay.add_argument(
        "--done-too", action="store_true", help="also deliveries that are done (deliver again)"
    )
    discard = actions.add_parser(
        "discard",
        help="give up on dead letters",
        parents=[common],
        description="Mark dead deliveries discarded: kept, but no longer dead letters. "
        "Give event ids, or --all, or filters.",
    )
    _add_selection(discard)
    erase = actions.add_parser(
        "erase",
        help="remove one person's data from every stored event (on request)",
        parents=[common],
        description="Find every stored event whose payload holds a phone number (in any "
        "form, compared as E.164), an e-mail address, a field's value or a call id; show how "
        "many and their deliveries' states; once confirmed (or --yes), remove their payloads, "
        "headers and error texts and discard deliveries not yet made. Dedup keys stay: a "
        "provider's retry of an erased event is acknowledged and not delivered again.",
    )
    from receiver.commands.inbox_erase import add_erase_arguments

    add_erase_arguments(erase)
    new_key = actions.add_parser(
        "new-key",
        help="print a new key for encrypting payloads at rest",
        description="Print a new random 256-bit key as ID:BASE64 for RECEIVER_INBOX_KEYS (or "
        "the file RECEIVER_INBOX_KEYS_FILE names). To rotate, put the new key first and keep "
        "the old one after it until nothing it sealed is left.",
    )
    new_key.add_argument(
        "--id", dest="key_id", metavar="ID", help="the key's id (default: k + today's date)"
    )
    actions.add_parser(
        "migrate",
        help="create the inbox or upgrade its schema",
        parents=[common],
        description="Create the inbox's tables (PostgreSQL: in an existing database) or file "
        "(SQLite), or upgrade a schema written by an earlier version; nothing is dropped.",
    )
    copy = actions.add_parser(
        "copy",
        help="copy what an inbox still needs into another (SQLite to PostgreSQL)",
        parents=[common],
        description="Copy every event SOURCE still needs into DESTINATION: pending, in "
        "progress (made pending) and dead deliveries with their history, and the events "
        "within retention (--config), so that their dedup keys keep recognising late "
        "duplicates. Events DESTINATION has already are skipped. Stop the receivers and "
        "workers on SOURCE first.",
    )
    copy.set_defaults(refuse=copy.error)
    copy.add_argument("source", metavar="SOURCE", help="inbox path or URL to copy from")
    copy.add_argument("destination", metavar="DESTINATION", help="inbox path or URL to copy into")
    copy.add_argument("--yes", action="store_true", help="copy without asking")
    parser.set_defaults(func=run)


def _add_location(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--inbox", metavar="URL", default=default, help="inbox path or URL (default: config)"
    )
    parser.add_argument(
        "--config", metavar="FILE", default=default, help="config file (default receiver.toml)"
    )


def _add_filters(
    parser: argparse.ArgumentParser,
    *,
    states: bool = False,
    until: bool = True,
    since_help: str = "received at or after (ISO 8601 or 15m)",
) -> None:
    """The filters of `list`, shared by the actions that select deliveries (`EventFilter`)."""
    parser.add_argument("--subscriber", metavar="NAME", help="one subscriber's deliveries")
    parser.add_argument("--source", metavar="NAME", help="events of one endpoint")
    parser.add_argument("--type", dest="event_type", metavar="EVENT_TYPE", help="one event type")
    if states:
        parser.add_argument(
            "--state",
            dest="states",
            action="append",
            choices=[s.label for s in State],
            default=[],
            help="repeatable: any of these states",
        )
    parser.add_argument(
        "--call", dest="order_key", metavar="KEY", help="one call's events (the order key)"
    )
    parser.add_argument(
        "--phone",
        type=_phone,
        metavar="NUMBER",
        help="events whose payload holds this phone number (separators and + ignored)",
    )
    parser.add_argument("--since", type=parse_when, metavar="WHEN", help=since_help)
    if until:
        parser.add_argument(
            "--until", type=parse_when, metavar="WHEN", help="received before (ISO 8601 or 2h)"
        )


def _add_limit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=_positive, default=50, metavar="N", help="default 50")


def _add_selection(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(refuse=parser.error)
    parser.add_argument("ids", nargs="*", metavar="ID", help="event ids")
    parser.add_argument("--all", action="store_true", help="every matching dead letter")
    _add_filters(parser)


def _filter(args: argparse.Namespace, states: Sequence[State] = ()) -> EventFilter:
    given: dict[str, Any] = {name: getattr(args, name, None) for name in _FILTERS}
    return EventFilter(**given, states=tuple(states))


def run(args: argparse.Namespace) -> int:
    """Run one inbox action; ConfigError or StorageError reach `receiver.cli` (one line)."""
    if args.action in ("replay", "discard"):
        _check_selection(args)
    if args.action == "copy":
        return _copy(args)
    if args.action == "new-key":
        from receiver.inbox.sealing import new_key

        print(new_key(args.key_id or dt.datetime.now(dt.UTC).strftime("k%Y%m%d")))
        return 0
    url = args.inbox
    if not url:
        url = load_settings(config_file=Path(args.config) if args.config else None).inbox
    if args.action == "migrate":
        return _migrate(url, args)
    admin = open_admin(url)
    try:
        return _ACTIONS[args.action](admin, args)
    finally:
        admin.close()


def _check_selection(args: argparse.Namespace) -> None:
    """Refuse (usage error) a bulk action that names nothing, or both ids and --all."""
    if args.ids and args.all:
        args.refuse("give event ids or --all, not both")
    if not (args.ids or args.all or any(getattr(args, f) is not None for f in _FILTERS)):
        args.refuse(
            "say which dead letters: event ids, --all, or at least one of --subscriber, "
            "--source, --type, --call, --phone, --since, --until"
        )


# -- the actions ------------------------------------------------------------------------------


def _stats(admin: InboxAdmin, args: argparse.Namespace) -> int:
    stats = admin.stats()
    if args.json:
        print(json.dumps(stats.as_dict(), indent=2))
        return 0
    size = "" if stats.size_bytes is None else f" ({stats.size_bytes / 1e6:.1f} MB)"
    print(f"inbox {printable(stats.location, 500)}{size}")
    print(f"events {stats.events}")
    print("deliveries")
    for label, count in stats.by_state.items():
        print(f"  {label:<12}{count:>10}")
    if stats.by_subscriber:
        width = max(10, *(len(printable(s, 40)) for s in stats.by_subscriber))
        labels = [s.label for s in State]
        print()
        heads = "".join(f"  {x.upper():>7}" for x in labels)
        print(f"{'SUBSCRIBER':<{width}}{heads}  OLDEST OPEN")
        for subscriber, counts in sorted(stats.by_subscriber.items()):
            age = stats.oldest_open_age.get(subscriber)
            cells = "".join(f"  {counts.get(x, 0):>{max(7, len(x))}}" for x in labels)
            print(f"{printable(subscriber, 40):<{width}}{cells}  {_age(age)}")
        print()
    for source, count in sorted(stats.by_source.items()):
        print(f"  source {printable(source, 80)}: {count}")
    return 0


def _list(admin: InboxAdmin, args: argparse.Namespace) -> int:
    if args.action == "dead":
        states: Sequence[State] = (State.DEAD,)
    else:
        states = [State.parse(label) for label in dict.fromkeys(args.states)]
    deliveries = admin.list(_filter(args, states), limit=args.limit)
    if args.json:
        print(json.dumps(_masked_json([_jsonable(d) for d in deliveries], args), indent=2))
    else:
        _table(deliveries, _masker(args))
    return 0


def _show(admin: InboxAdmin, args: argparse.Namespace) -> int:
    record = admin.get(args.id)
    if record is None:
        print(f"receiver: no event {printable(args.id, 80)} in the inbox", file=sys.stderr)
        return 1
    payload = _payload(record.payload)
    if args.json:
        print(json.dumps(_masked_json(_event_json(record, payload), args), indent=2))
        return 0
    mask = _masker(args)
    fields = (
        ("id", str(record.id)),
        ("source", record.source),
        ("type", record.event_type),
        ("dedup key", record.dedup_key),
        ("order key", record.order_key or "-"),
        ("received", utc(record.received_at)),
    )
    for name, value in fields:
        print(f"{name:>14}: {printable(mask(value), 2000)}")
    if record.headers:
        print("headers (as received, credentials left out):")
        for name, value in record.headers:
            print(f"{printable(name, 60):>30}: {printable(mask(value), 2000)}")
    print("payload:")
    if record.payload == ERASED:
        print("  (removed: erased on request, or past payload_retention_days)")
    elif isinstance(payload, str):  # not JSON: each line escaped
        for line in payload.splitlines() or [""]:
            print(printable(mask(line), 20_000))
    else:  # ASCII: every control character is escaped
        print(json.dumps(_masked_json(payload, args), indent=2))
    for d in record.deliveries:
        waiting = d.state in (State.PENDING, State.IN_PROGRESS)
        print(f"delivery to {printable(d.subscriber, 80)}:")
        print(f"{'state':>14}: {d.state.label}")
        print(f"{'attempts':>14}: {d.attempts}")
        print(f"{'next attempt':>14}: {utc(d.next_attempt_at if waiting else None)}")
        print(f"{'finished':>14}: {utc(d.finished_at)}")
        print(f"{'duration':>14}: {_duration(d.duration)}")
    print("history:")
    if not record.history:
        print("  (no attempt yet)")
    width = max((len(printable(a.subscriber, 40)) for a in record.history), default=0)
    for attempt in record.history:
        _print_attempt(attempt, width, mask)
    return 0


def _print_attempt(attempt: Attempt, width: int, mask: Callable[[str], str]) -> None:
    first, *rest = (attempt.error or "").splitlines() or [""]
    print(
        f"  {utc(attempt.started_at)}  {printable(attempt.subscriber, 40):<{width}}  "
        f"#{attempt.number:<3} {attempt.outcome:<5}  {_duration(attempt.duration):>8}  "
        f"{printable(mask(first), 500)}".rstrip()
    )
    for line in rest:
        print(f"      {printable(mask(line), 500)}".rstrip())


def _masker(args: argparse.Namespace) -> Callable[[str], str]:
    """How text from the inbox is shown: phone numbers and addresses masked, unless
    `--unmasked` (for a user who may read the inbox anyway)."""
    return str if getattr(args, "unmasked", False) else mask_personal


def _masked_json(value: Any, args: argparse.Namespace) -> Any:
    return value if getattr(args, "unmasked", False) else mask_json(value)


def _tail(admin: InboxAdmin, args: argparse.Namespace) -> int:
    from receiver.commands.inbox_tail import tail

    return tail(admin, _filter(args), args)


def _fix(admin: InboxAdmin, args: argparse.Namespace) -> int:
    """`replay` or `discard`: every matching delivery, or those of each id in turn (so that the
    ids with nothing to act on can be named)."""
    where = _filter(args)

    def act(ids: list[str] | None) -> int:
        if args.action == "discard":
            return admin.discard(where, ids=ids)
        return admin.replay(where, ids=ids, done_too=args.done_too)

    counts = {i: act([i]) for i in dict.fromkeys(args.ids)} if args.ids else {"": act(None)}
    count, missed = sum(counts.values()), [i for i, n in counts.items() if args.ids and not n]
    verb = f"{args.action}ed"  # replayed, discarded
    if args.json:
        answer: dict[str, Any] = {verb: count}
        if args.ids:
            answer["nothing_for"] = missed
        print(json.dumps(answer))
    elif args.action == "replay":
        print(f"replayed {count} delivery(ies); a running receiver picks them up within a second")
    else:
        print(f"discarded {count} dead letter(s)")
    if not missed:
        return 0
    which = " ".join(printable(i, 80) for i in missed[:20])
    more = f" and {len(missed) - 20} more" if len(missed) > 20 else ""
    kind = "dead letters or done" if getattr(args, "done_too", False) else "dead letters"
    print(
        f"receiver: nothing to {args.action} for {which}{more}: no such event here, "
        f"or its deliveries are not {kind}",
        file=sys.stderr,
    )
    return 1


def _erase(admin: InboxAdmin, args: argparse.Namespace) -> int:
    from receiver.commands.inbox_erase import erase

    return erase(admin, args)


def _migrate(url: str, args: argparse.Namespace) -> int:
    before, after = migrate_inbox(url)
    where = describe_inbox(url)
    if args.json:
        print(json.dumps({"inbox": where, "from": before, "to": after}))
    elif before == after:
        print(f"inbox {printable(where, 500)}: already at version {after}")
    else:
        print(f"inbox {printable(where, 500)}: schema version {before} \u2192 {after}")
    return 0


def _copy(args: argparse.Namespace) -> int:
    if args.inbox:
        args.refuse("give the inboxes as SOURCE and DESTINATION, not --inbox")
    settings = load_settings(config_file=Path(args.config) if args.config else None)
    source, destination = describe_inbox(args.source), describe_inbox(args.destination)
    if not args.yes:
        if not sys.stdin.isatty():
            args.refuse("add --yes to copy without being asked")
        answer = input(
            f"copy inbox {printable(source, 500)} into {printable(destination, 500)}? The "
            "receivers and workers on the source must be stopped. [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            print("receiver: nothing copied", file=sys.stderr)
            return 1

    def progress(report: CopyReport) -> None:
        done = report.events + report.duplicates
        rate = done / report.seconds if report.seconds else 0.0
        print(
            f"inbox copy: {done:,} events read, {report.events:,} copied, "
            f"{report.duplicates:,} duplicates skipped ({rate:,.0f}/s)",
            file=sys.stderr,
            flush=True,
        )

    report = copy_inbox(
        args.source, args.destination, retention_days=settings.retention_days, progress=progress
    )
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    counts = ", ".join(f"{n:,} {label}" for label, n in report.deliveries.items() if n)
    print(
        f"copied {report.events:,} event(s) from {printable(report.source, 500)} into "
        f"{printable(report.destination, 500)} in {report.seconds:.1f}s"
    )
    print(
        f"  deliveries: {counts or 'none'}; failed attempts in their history: {report.attempts:,}"
    )
    print(f"  skipped {report.duplicates:,} event(s) the destination had already")
    return 0


_ACTIONS = {
    "stats": _stats,
    "list": _list,
    "dead": _list,
    "show": _show,
    "tail": _tail,
    "replay": _fix,
    "discard": _fix,
    "erase": _erase,
}


# -- formatting -------------------------------------------------------------------------------


def utc(ts: float | None) -> str:
    """`2026-11-30 09:00:01.250Z`, or `-` for None: how inbox commands and the console write
    a time."""
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.3f}s"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def first_line(error: str | None) -> str:
    """The first line of a stored error (its message; the traceback follows)."""
    return (error or "").strip().split("\n", 1)[0].strip()


def _payload(raw: bytes) -> Any:
    """The payload as JSON, or as text when it is not (or is nested too deep to print)."""
    try:
        value = json.loads(raw)
        json.dumps(value)  # stored before nesting was bounded: may be too deep to print
    except (ValueError, RecursionError):
        return raw.decode("utf-8", "replace")
    return value


def _jsonable(record: Any, *, leave_out: Sequence[str] = ("payload",)) -> dict[str, Any]:
    """A record's fields for JSON: ids as text, states by label, times as UTC text."""
    out: dict[str, Any] = {}
    for name in (f.name for f in dataclasses.fields(record) if f.name not in leave_out):
        value = getattr(record, name)
        if name == "id":
            value = str(value)
        elif isinstance(value, State):
            value = value.label
        elif name.endswith("_at"):
            value = utc(value)
        out[name] = value
    return out


def _event_json(record: EventRecord, payload: Any) -> dict[str, Any]:
    return {
        **_jsonable(record, leave_out=("payload", "deliveries", "history")),
        "payload": payload,
        "deliveries": [_jsonable(d) for d in record.deliveries],
        "history": [_jsonable(a) for a in record.history],
    }


def _table(deliveries: list[StoredEvent], mask: Callable[[str], str]) -> None:
    if not deliveries:
        print("(none)")
        return
    width = max(10, *(len(printable(d.subscriber, 24)) for d in deliveries))
    print(
        f"{'ID':>8}  {'SUBSCRIBER':<{width}}  {'STATE':<11} {'TRIES':>5}  "
        f"{'RECEIVED (UTC)':<24}  {'TYPE':<32} ERROR"
    )
    for d in deliveries:
        line = (
            f"{printable(str(d.id), 20):>8}  {printable(d.subscriber, 24):<{width}}  "
            f"{d.state.label:<11} {d.attempts:>5}  {utc(d.received_at):<24}  "
            f"{printable(d.event_type, 32)[:32]:<32} "
            f"{printable(mask(first_line(d.last_error)), 80)}"
        )
        print(line.rstrip())

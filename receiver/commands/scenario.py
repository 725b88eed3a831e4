"""`receiver scenario`: play a provider's realistic flows at a receiver, for QA and load."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from datetime import datetime

import orjson

from receiver.commands.providers import add_provider_options, make_wire
from receiver.commands.send import (
    add_delivery_options,
    check_url,
    delivery_settings,
    refuse_secret_in_argv,
    resolve_secret,
)
from receiver.exceptions import ConfigError
from receiver.scenarios import (
    DEFAULT_START,
    PROVIDER_FLOWS,
    PlannedRequest,
    ProgressBar,
    ScenarioOptions,
    Summary,
    build_stream,
    run_stream,
)
from receiver.sender import Sender, WireFormat

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `scenario` command."""
    parser = sub.add_parser(
        "scenario",
        allow_abbrev=False,
        help="send a provider's realistic flows to a URL (QA and load)",
        description="Plan CALLS flows (same seed, same bytes), then send them as the platform "
        "would: retries, keep-alive, each flow in order. For buzzeasy, URL is a base: each hook "
        "goes to URL/<hook> (work-item-closed, abandoned-conversation, outbound-call). Exit 0 "
        "when every event was acknowledged and every wrong-token request got a 401, 1 "
        "otherwise, 2 for bad input.",
    )
    parser.add_argument(
        "url", metavar="URL", help="where to send, e.g. https://localhost:8443/enreach"
    )
    parser.add_argument("--calls", type=int, default=10, help="how many flows (default 10)")
    flow_names = "; ".join(f"{p}: {','.join(f.flows)}" for p, f in PROVIDER_FLOWS.items())
    parser.add_argument(
        "--flows",
        help=f"comma-separated flows to draw from (default: all of the provider's; {flow_names})",
    )
    parser.add_argument(
        "--rate", type=float, help="events per second (default: as fast as concurrency allows)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=8, help="requests in flight at most (default 8)"
    )
    parser.add_argument(
        "--duplicate-ratio",
        type=float,
        default=0.0,
        metavar="R",
        help="share of events sent twice, same Id (0..1)",
    )
    parser.add_argument(
        "--out-of-order-ratio",
        type=float,
        default=0.0,
        metavar="R",
        help="share of adjacent event pairs of a flow sent swapped (0..1)",
    )
    parser.add_argument(
        "--wrong-token-ratio",
        type=float,
        default=0.0,
        metavar="R",
        help="share of events preceded by a copy with a wrong token, which must get 401 (0..1)",
    )
    parser.add_argument("--seed", type=int, help="default: random; the summary shows it")
    parser.add_argument(
        "--start",
        help=f"time of the first event, ISO without zone, or 'now' (default {DEFAULT_START})",
    )
    parser.add_argument(
        "--json", dest="json_output", action="store_true", help="print the summary as JSON"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the planned stream as JSON lines, send nothing",
    )
    add_provider_options(parser, scenario=True)
    add_delivery_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Plan and send the stream; 0 when all went as it should, 1 otherwise, 2 for bad input."""
    try:
        refuse_secret_in_argv(args)
        seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
        flows = (
            tuple(name.strip() for name in args.flows.split(",") if name.strip())
            if args.flows is not None
            else None
        )
        options = ScenarioOptions(
            calls=args.calls,
            flows=flows,
            provider=args.provider,
            seed=seed,
            duplicate_ratio=args.duplicate_ratio,
            out_of_order_ratio=args.out_of_order_ratio,
            wrong_token_ratio=args.wrong_token_ratio,
            start=_start(args.start),
        )
        stream = build_stream(options)
        if args.dry_run:
            for planned in stream:
                sys.stdout.write(_plan_line(planned))
            return 0
        check_url(args.url, allow_http=args.allow_http)
        wire = make_wire(args, resolve_secret(args), scenario=True)
        summary = asyncio.run(_play(args, wire, stream))
    except ConfigError as exc:
        print(f"receiver scenario: error: {exc}", file=sys.stderr)
        return 2
    if args.json_output:
        print(orjson.dumps({"seed": seed, **summary.as_dict()}).decode())
    else:
        print(f"{'seed':<20}  {seed}\n{summary.render()}")
    return 0 if summary.ok else 1


async def _play(
    args: argparse.Namespace, wire: WireFormat, stream: list[PlannedRequest]
) -> Summary:
    progress = ProgressBar(len(stream))
    async with Sender(
        args.url, provider=wire, max_connections=max(args.concurrency, 1), **delivery_settings(args)
    ) as sender:
        try:
            return await run_stream(
                stream,
                sender,
                rate=args.rate,
                concurrency=args.concurrency,
                on_delivery=progress,
            )
        finally:
            progress.close()


def _start(text: str | None) -> datetime:
    if text is None:
        return DEFAULT_START
    if text == "now":
        return datetime.now().replace(microsecond=0)
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(
            f"--start expects an ISO time like 2024-03-04T08:00:00, got {text!r}"
        ) from exc
    if value.tzinfo is not None:
        raise ConfigError("--start takes a time without a zone, as the providers write theirs")
    return value


def _plan_line(planned: PlannedRequest) -> str:
    line = {
        "index": planned.index,
        "flow": planned.flow,
        "flow_kind": planned.flow_kind,
        "event_type": planned.event_type,
        "event_id": planned.event_id,
        "duplicate": planned.duplicate,
        "wrong_token": planned.wrong_token,
        "out_of_order": planned.out_of_order,
        "payload": planned.payload,
    }
    return orjson.dumps(line).decode() + "\n"

"""`receiver schema`: print the JSON Schema or OpenAPI document of the providers' events.

`--provider` picks one provider (`enreach`, `engage-wfm`, `engage-web-services`, `buzzeasy`);
without it the document covers every provider, each definition namespaced as
`<provider>.<EventType>` and the root an `anyOf` of the provider unions (the endpoint, not the
body, tells providers apart). `--event` narrows to one event type, found in the chosen
providers; the document shapes are described in `receiver.catalogs.schema`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from receiver.catalogs.schema import PROVIDERS, json_schema, openapi

__all__ = ["FORMATS", "register", "run"]

FORMATS: dict[str, Callable[[str | None, str | None], dict[str, Any]]] = {
    "jsonschema": json_schema,
    "openapi": openapi,
}
"""What each `--format` prints, given the provider (None: all) and event type (None: all)."""

_DESCRIPTION = """\
Print a JSON Schema (draft 2020-12) or an OpenAPI 3.1 document with a `webhooks` section,
made from the event catalogs, of what the providers send.

With --provider, definitions keep the provider's own names (`QueueStatus`) and the root is
the union of its event types: `oneOf` when the body names the type (enreach, engage-wfm),
`anyOf` when only the endpoint does (engage-web-services, buzzeasy). Without --provider,
every provider: definitions are namespaced (`$defs/enreach.QueueStatus`,
`$defs/buzzeasy.WorkItemClosed`), each provider's union is `$defs/<provider>`, and the root
is an `anyOf` of those unions; OpenAPI webhooks are named `<provider>.<EventType>`. With
--event, only that event type (its schema is the root): it must belong to the chosen
provider, or without --provider to exactly one provider."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `schema` command."""
    parser = subparsers.add_parser(
        "schema",
        help="print the JSON Schema or OpenAPI document of the providers' events",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--provider", choices=list(PROVIDERS), help="only this provider (default: every one)"
    )
    parser.add_argument(
        "--format", choices=list(FORMATS), default="jsonschema", help="default: jsonschema"
    )
    parser.add_argument("--event", metavar="TYPE", help="only this event type (e.g. QueueStatus)")
    parser.add_argument("-o", "--output", metavar="FILE", type=Path, help="write here, not stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the document and write it as indented JSON; 2 for an unknown event type."""
    try:
        document = FORMATS[args.format](args.provider, args.event)
    except ValueError as exc:
        print(f"receiver: {exc}", file=sys.stderr)
        return 2
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
    output: Path | None = args.output
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
    return 0

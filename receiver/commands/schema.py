"""`receiver schema`: print the JSON Schema or OpenAPI document of a provider's events."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from receiver.catalogs.schema import enreach_json_schema, enreach_openapi

__all__ = ["register", "run"]

_Build = Callable[[str | None], dict[str, Any]]

DOCUMENTS: dict[tuple[str, str], _Build] = {
    ("enreach", "jsonschema"): enreach_json_schema,
    ("enreach", "openapi"): enreach_openapi,
}
"""What each (provider, format) pair prints."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `schema` command."""
    parser = subparsers.add_parser(
        "schema",
        help="print the JSON Schema or OpenAPI document of a provider's events",
        description="Print a JSON Schema (draft 2020-12) of every event type, or of one, or an "
        "OpenAPI 3.1 document with a `webhooks` section, made from the event catalog.",
    )
    parser.add_argument("--provider", choices=sorted({p for p, _ in DOCUMENTS}), default="enreach")
    parser.add_argument("--format", choices=sorted({f for _, f in DOCUMENTS}), default="jsonschema")
    parser.add_argument("--event", metavar="TYPE", help="only this event type (e.g. QueueStatus)")
    parser.add_argument("-o", "--output", metavar="FILE", type=Path, help="write here, not stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the document and write it as indented JSON; 2 for an unknown event type."""
    build = DOCUMENTS[(args.provider, args.format)]
    try:
        document = build(args.event)
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

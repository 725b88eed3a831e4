"""The `receiver` command."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from receiver import __version__
from receiver.exceptions import ConfigError, StorageError

__all__ = ["main"]

COMMANDS = ("serve", "certs", "inbox", "schema", "send", "scenario")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="receiver", description="Receive contact-center webhooks over HTTPS."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"receiver.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except (ConfigError, StorageError) as exc:
        print(f"receiver: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())

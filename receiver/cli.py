"""The `receiver` command."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from receiver import __version__
from receiver.exceptions import ConfigError, StorageError

__all__ = ["main"]

COMMANDS = ("serve", "worker", "certs", "inbox", "schema", "send", "scenario")

EXIT_BROKEN_PIPE = 128 + 13
"""What a shell reports for a command killed by SIGPIPE, as `yes | head` is."""


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
    try:
        return _run(argv)
    except BrokenPipeError:
        # The reader left early (`receiver inbox list | head`): stop quietly, and point stdout
        # at devnull so that flushing it at exit raises nothing (Python docs, "Note on SIGPIPE").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        _flush_stdout()  # --help and --version: a closed pipe shows here, not at exit
        raise
    try:
        code: int = args.func(args)
        _flush_stdout()
    except (ConfigError, StorageError) as exc:
        print(f"receiver: {' '.join(str(exc).splitlines())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


def _flush_stdout() -> None:
    if sys.stdout is not None:  # None when the command was started with stdout closed
        sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())

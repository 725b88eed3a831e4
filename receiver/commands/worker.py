"""`receiver worker`: dispatch the inbox's deliveries to the subscribers, with no listener.

`receiver serve --no-dispatch` plus `receiver worker` (same config, same inbox) is the
two-process setup: handlers run apart from the process that acknowledges webhooks, and a
slow or crashing handler cannot touch the request path. Several workers may run: with
SQLite one dispatches and the others wait to take over (within seconds of its stop); a
shared inbox lets them all work at once.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
from pathlib import Path

from receiver.commands.serve import (
    DISPATCH_OPTIONS,
    INBOX_OPTIONS,
    LOG_OPTIONS,
    add_no_migrate,
    add_options,
    forbid_secret_options,
)
from receiver.config import Settings, check_secrets, load_settings
from receiver.exceptions import ConfigError
from receiver.inbox.base import check_inbox, describe_inbox
from receiver.runtime import Runtime, secret_texts

__all__ = ["register", "run", "work"]

log = logging.getLogger("receiver.worker")

EXIT_STOPPED = 1
"""The exit status after a part the worker cannot work without stopped (to be restarted)."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `worker` command."""
    parser = sub.add_parser(
        "worker",
        help="dispatch stored events to the subscribers, without a listener",
        description="Hand the inbox's deliveries to every configured subscriber (retries, dead "
        "letters, per-call order), in a process of its own. Reads the same receiver.toml and "
        "RECEIVER_* variables as `receiver serve`.",
    )
    parser.add_argument("--config", type=Path, help="TOML config file (default receiver.toml)")
    add_options(parser, [*INBOX_OPTIONS, *DISPATCH_OPTIONS, *LOG_OPTIONS])
    add_no_migrate(parser)
    forbid_secret_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load settings and dispatch until SIGTERM/SIGINT; the exit status."""
    names = [name for name, _, _ in (*INBOX_OPTIONS, *DISPATCH_OPTIONS, *LOG_OPTIONS)]
    overrides = {name: getattr(args, name) for name in [*names, "migrate"]}
    settings = load_settings(config_file=args.config, overrides=overrides)
    settings = dataclasses.replace(settings, dispatch=True)
    if settings.workers < 1:
        raise ConfigError("a worker with --workers 0 would dispatch nothing")
    from receiver.logs import configure_logging

    configure_logging(
        settings.log_level,
        phone_numbers_redacted=not settings.log_phone_numbers,
        secrets=secret_texts(settings),
    )
    check_secrets(settings, serving=False)
    check_inbox(settings.inbox)
    runtime = Runtime(settings)
    from receiver.server import run_loop

    stopped: list[str] = []
    run_loop(work(runtime, stopped))
    return EXIT_STOPPED if stopped else 0


async def work(runtime: Runtime, stopped: list[str], announce: bool = True) -> None:
    """Run `runtime` until SIGTERM or SIGINT, or until a vital part of it stops (its name is
    appended to `stopped`)."""
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, done.set)

    def part_stopped(part: str, reason: str) -> None:
        stopped.append(part)
        done.set()

    runtime.on_stopped = part_stopped
    settings: Settings = runtime.settings
    await runtime.start()
    try:
        if announce:
            names = ", ".join(s.name for s in runtime.subscriptions)
            state = "dispatching" if runtime.dispatcher is not None else "waiting to take over"
            print(
                f"worker {state}: inbox {describe_inbox(settings.inbox)}, subscribers {names}",
                flush=True,
            )
        await done.wait()
    finally:
        await runtime.stop()

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
import socket
from pathlib import Path

from receiver.commands.serve import (
    ADMIN_OPTIONS,
    CERT_OPTIONS,
    DISPATCH_OPTIONS,
    INBOX_OPTIONS,
    LOG_OPTIONS,
    add_log_phone_numbers,
    add_no_admin,
    add_no_migrate,
    add_options,
    forbid_secret_options,
)
from receiver.config import Settings, check_secrets, load_settings
from receiver.exceptions import ConfigError
from receiver.inbox.base import check_inbox, describe_inbox
from receiver.runtime import Runtime, secret_texts
from receiver.tls import ServerTLS

__all__ = ["register", "run", "work"]

log = logging.getLogger("receiver.worker")

WORKER_OPTIONS = [*INBOX_OPTIONS, *DISPATCH_OPTIONS, *LOG_OPTIONS, *ADMIN_OPTIONS, *CERT_OPTIONS]

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
    add_options(parser, WORKER_OPTIONS)
    add_log_phone_numbers(parser)
    add_no_admin(parser)
    add_no_migrate(parser)
    forbid_secret_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load settings and dispatch until SIGTERM/SIGINT; the exit status."""
    names = [name for name, _, _ in WORKER_OPTIONS]
    extra = ["migrate", "admin", "log_phone_numbers"]
    overrides = {name: getattr(args, name) for name in [*names, *extra]}
    settings = load_settings(config_file=args.config, overrides=overrides)
    settings = dataclasses.replace(settings, dispatch=True)
    if settings.workers < 1:
        raise ConfigError("a worker with --workers 0 would dispatch nothing")
    from receiver.logs import configure_logging

    configure_logging(
        settings.log_level,
        phone_numbers_redacted=not settings.log_phone_numbers,
        secrets=secret_texts(settings),
        log_format=settings.log_format,
    )
    check_secrets(settings, serving=False)
    check_inbox(settings.inbox)
    runtime = Runtime(settings)
    from receiver.admin.listener import address, bind_admin
    from receiver.server import prepare_tls, run_loop

    admin: tuple[ServerTLS, socket.socket] | None = None
    admin_sock = bind_admin(settings, "worker")
    if admin_sock is not None:
        admin = (prepare_tls(settings, print), admin_sock)
        print(f"admin: {address(admin_sock)}/ (health, readiness, metrics, console)", flush=True)
        if runtime.alerts is not None:  # dead-letter alerts link to the console
            runtime.alerts.console = address(admin_sock)
    stopped: list[str] = []
    run_loop(work(runtime, stopped, admin=admin))
    return EXIT_STOPPED if stopped else 0


async def work(
    runtime: Runtime,
    stopped: list[str],
    announce: bool = True,
    admin: tuple[ServerTLS, socket.socket] | None = None,
) -> None:
    """Run `runtime` until SIGTERM or SIGINT, or until a vital part of it stops (its name is
    appended to `stopped`); with `admin` (its certificate and socket) the admin listener too."""
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, done.set)

    def part_stopped(part: str, reason: str) -> None:
        stopped.append(part)
        done.set()

    runtime.on_stopped = part_stopped
    settings: Settings = runtime.settings
    listener = None
    if admin is not None:
        from receiver.admin.context import AdminContext
        from receiver.admin.listener import AdminListener

        tls, sock = admin
        loop.add_signal_handler(signal.SIGHUP, tls.reload)
        listener = AdminListener(AdminContext(runtime, role="worker", tls=tls), tls, sock)
    await runtime.start()
    if listener is not None:
        listener.start()
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
        if listener is not None:
            await listener.stop()

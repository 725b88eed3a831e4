"""`receiver serve`: the HTTPS listener with its inbox and dispatcher."""

from __future__ import annotations

import argparse
from pathlib import Path

from receiver.config import load_settings
from receiver.runtime import secret_texts
from receiver.server import run as run_server

__all__ = [
    "ADMIN_OPTIONS",
    "CERT_OPTIONS",
    "DISPATCH_OPTIONS",
    "INBOX_OPTIONS",
    "LOG_OPTIONS",
    "OPTIONS",
    "add_log_phone_numbers",
    "add_no_admin",
    "add_no_migrate",
    "add_options",
    "forbid_secret_options",
    "register",
    "run",
]

Option = tuple[str, type, str]

INBOX_OPTIONS: list[Option] = [
    (
        "inbox",
        str,
        "SQLite file or sqlite:/// URL, or postgresql://user@host/db for a shared inbox "
        "(password from PGPASSWORD or a passfile; default inbox.db)",
    ),
    ("retention_days", float, "days a finished event's dedup key is kept (default 7)"),
    (
        "payload_retention_days",
        float,
        "days a finished event's payload, headers and errors are kept (default 3)",
    ),
    ("dead_retention_days", float, "days a dead letter waits for a replay (default 30)"),
]
"""Where events are stored: shared by `serve` and `worker`."""

DISPATCH_OPTIONS: list[Option] = [
    ("handler", str, "module:object of your handler (default: log each event)"),
    ("workers", int, "concurrent handler tasks per subscriber (default 16)"),
    ("max_attempts", int, "attempts before a delivery becomes a dead letter (default 8)"),
    ("backoff_base", float, "first retry delay in seconds, doubled each time (default 1)"),
    ("backoff_max", float, "longest retry delay in seconds (default 300)"),
    ("handler_timeout", float, "seconds a handler may take per event (default 30)"),
    ("shutdown_timeout", float, "seconds to finish running handlers on stop (default 10)"),
    (
        "lease",
        float,
        "seconds a dispatching process's claims outlive its last heartbeat on a shared inbox; "
        "then other processes take them over (default 15)",
    ),
]
"""How deliveries are dispatched: declared once, for `serve` and `worker`."""

LOG_OPTIONS: list[Option] = [
    ("log_level", str, "debug, info, warning or error (default info)"),
    (
        "log_format",
        str,
        "json (one JSON object a line), console (readable) or auto: console on a terminal, "
        "else json (default auto)",
    ),
]

ADMIN_OPTIONS: list[Option] = [
    (
        "admin_host",
        str,
        "address of the admin listener: health, readiness, metrics, console (default "
        "127.0.0.1; any other needs RECEIVER_ADMIN_TOKEN or RECEIVER_ADMIN_TOKEN_FILE)",
    ),
    ("admin_port", int, "port of the admin listener (default 9443; worker 9444; 0: any free)"),
    (
        "ready_cert_days",
        float,
        "/readyz fails once the certificate expires within this many days (default 7)",
    ),
]
"""The admin listener: shared by `serve` and `worker`."""

CERT_OPTIONS: list[Option] = [
    ("cert", Path, "certificate chain (PEM); default: development certificate in --certs-dir"),
    ("key", Path, "private key (PEM) of --cert"),
    ("certs_dir", Path, "where development certificates live (default certs/)"),
]
"""The certificate: the webhook port's and the admin listener's (`serve` and `worker`)."""

SERVER_OPTIONS: list[Option] = [
    ("host", str, "address to listen on (default 0.0.0.0)"),
    ("port", int, "port (default 443)"),
    ("fd", int, "serve on an inherited listening socket instead of binding"),
    *CERT_OPTIONS,
    ("engine", str, "uvicorn (default) or hypercorn"),
    ("request_timeout", float, "seconds a client has to send a whole request (default 10)"),
    ("keep_alive_timeout", float, "seconds an idle kept-alive connection stays open (default 15)"),
    (
        "tls_handshake_timeout",
        float,
        "seconds a client has to complete the TLS handshake (default 5)",
    ),
    (
        "max_connections",
        int,
        "most connections held open; a new one closes the longest idle "
        "(default: from the open-files limit, at most 10000)",
    ),
    (
        "cert_watch_interval",
        float,
        "seconds between checks of --cert/--key for changes; 0: reload only on SIGHUP (default 5)",
    ),
    ("max_body", int, "largest accepted body in bytes (default 1048576)"),
    (
        "trusted_proxies",
        str,
        "comma-separated networks of proxies whose --client-address-header names the client "
        "(default: none; the peer is the client)",
    ),
    (
        "client_address_header",
        str,
        "header in which trusted proxies name the client, e.g. X-Forwarded-For (default: none)",
    ),
]

OPTIONS: list[Option] = [
    *SERVER_OPTIONS,
    *INBOX_OPTIONS,
    *DISPATCH_OPTIONS,
    *LOG_OPTIONS,
    *ADMIN_OPTIONS,
]


class _NoSecrets(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        parser.error(
            "secrets are never taken from the command line (they would show in `ps` and shell "
            "history); set RECEIVER_ENREACH_SECRET or RECEIVER_ENREACH_SECRET_FILE instead"
        )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `serve` command; every option also reads RECEIVER_<NAME>."""
    parser = sub.add_parser(
        "serve",
        help="run the HTTPS listener",
        description="Receive webhooks over HTTPS, store them durably, dispatch to handlers. "
        "Each option can also be set as RECEIVER_<OPTION> or in receiver.toml.",
    )
    parser.add_argument("--config", type=Path, help="TOML config file (default receiver.toml)")
    add_options(parser, OPTIONS)
    parser.add_argument(
        "--no-dispatch",
        dest="dispatch",
        action="store_const",
        const=False,
        help="only receive and store; another process dispatches",
    )
    add_log_phone_numbers(parser)
    parser.add_argument(
        "--public-healthz",
        action="store_const",
        const=True,
        help="also answer /healthz on the webhook port (for a load balancer that cannot reach "
        "the admin port)",
    )
    add_no_admin(parser)
    add_no_migrate(parser)
    forbid_secret_options(parser)
    parser.set_defaults(func=run)


def add_log_phone_numbers(parser: argparse.ArgumentParser) -> None:
    """`--log-phone-numbers`: callers' numbers and e-mail addresses in logs unmasked."""
    parser.add_argument(
        "--log-phone-numbers",
        action="store_const",
        const=True,
        help="write phone numbers and e-mail addresses to logs unmasked",
    )


def add_no_admin(parser: argparse.ArgumentParser) -> None:
    """`--no-admin`: run without the admin listener."""
    parser.add_argument(
        "--no-admin",
        dest="admin",
        action="store_const",
        const=False,
        help="run without the admin listener (no /readyz, /metrics or console)",
    )


def add_no_migrate(parser: argparse.ArgumentParser) -> None:
    """`--no-migrate`: refuse an outdated inbox schema instead of migrating it on start."""
    parser.add_argument(
        "--no-migrate",
        dest="migrate",
        action="store_const",
        const=False,
        help="refuse an inbox whose schema is outdated instead of migrating it on start "
        "(then run `receiver inbox migrate`; RECEIVER_MIGRATE=false). PostgreSQL only: an "
        "SQLite file is always upgraded in place",
    )


def add_options(parser: argparse.ArgumentParser, options: list[Option]) -> None:
    """Add `--name` for each of `options` (each also read from RECEIVER_<NAME>)."""
    for name, kind, text in options:
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, help=text)


def forbid_secret_options(parser: argparse.ArgumentParser) -> None:
    """Make the options a secret could be passed with an error that says where secrets go."""
    for flag in ("--secret", "--token", "--enreach-secret"):
        parser.add_argument(flag, nargs="?", action=_NoSecrets, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Load settings and serve until stopped; the exit status (1: a vital part stopped)."""
    names = [name for name, _, _ in OPTIONS]
    names += ["dispatch", "log_phone_numbers", "migrate", "admin", "public_healthz"]
    overrides = {name: getattr(args, name) for name in names}
    settings = load_settings(config_file=args.config, overrides=overrides)
    from receiver.logs import configure_logging

    configure_logging(
        settings.log_level,
        phone_numbers_redacted=not settings.log_phone_numbers,
        secrets=secret_texts(settings),
        log_format=settings.log_format,
    )
    return run_server(settings)

"""`receiver send` (alias `trigger`): send one event exactly as the platform would."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from receiver.access import is_loopback
from receiver.commands.providers import (
    SECRET_ENVS,
    add_provider_options,
    event_types,
    make_wire,
    sample,
)
from receiver.config import read_secret_file
from receiver.exceptions import ConfigError
from receiver.sender import Delivery, SyncSender, Verify, WireRequest

__all__ = [
    "DEFAULT_SECRET_ENV",
    "add_delivery_options",
    "build_payload",
    "check_url",
    "delivery_settings",
    "parse_assignment",
    "refuse_secret_in_argv",
    "register",
    "resolve_secret",
    "run",
]

DEFAULT_SECRET_ENV = "RECEIVER_ENREACH_SECRET"  # noqa: S105 (a variable name, not a secret)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `send` command and its alias `trigger`."""
    parser = sub.add_parser(
        "send",
        aliases=["trigger"],
        allow_abbrev=False,
        help="send one event to a URL, as the provider's platform would",
        description="Send one event built from the provider's sample of EVENT_TYPE, with "
        "fields overridden by --json and --set, or the whole payload in --json FILE when "
        "EVENT_TYPE is left out. The credential comes from the provider's variable "
        "($RECEIVER_ENREACH_SECRET for Enreach), --secret-env or --secret-file, never from the "
        "command line. Exit 0 when acknowledged (200), 1 when discarded after the retries, 2 "
        "for bad input.",
    )
    parser.add_argument(
        "url", metavar="URL", help="where to send, e.g. https://localhost:8443/enreach"
    )
    parser.add_argument(
        "event_type",
        nargs="?",
        metavar="EVENT_TYPE",
        help="e.g. QueueCallInArrived; AgentState or EndCall (engage_wfm), CallDetails "
        "(engage_web_services), WorkItemClosed (buzzeasy)",
    )
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a field; VALUE is JSON when it parses (42, null, [..]), else a string; "
        "repeatable",
    )
    parser.add_argument(
        "--json",
        dest="json_file",
        type=Path,
        metavar="FILE",
        help="a JSON object: field overrides, or the whole payload when EVENT_TYPE is left out",
    )
    parser.add_argument(
        "--seed", type=int, help="make the sample (Id included) the same on every run"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the request (token hidden), send nothing"
    )
    add_provider_options(parser)
    add_delivery_options(parser)
    parser.set_defaults(func=run)


def add_delivery_options(parser: argparse.ArgumentParser) -> None:
    """Add the options every sending command shares: secret, TLS, timeout and retries."""
    group = parser.add_argument_group("delivery")
    secret = group.add_mutually_exclusive_group()
    secret.add_argument(
        "--secret-env",
        metavar="NAME",
        help=f"environment variable holding the secret (default: {DEFAULT_SECRET_ENV}, or "
        "the --provider's)",
    )
    secret.add_argument(
        "--secret-file", type=Path, metavar="PATH", help="file whose first line is the secret"
    )
    secret.add_argument("--no-secret", action="store_true", help="send without a credential header")
    # Accepted only to refuse them with a reason: a secret in argv shows in ps and history.
    group.add_argument("--secret", "--token", dest="secret_in_argv", help=argparse.SUPPRESS)
    group.add_argument(
        "--allow-http",
        action="store_true",
        help="send to an http:// URL (the secret in clear): only to a loopback address "
        "(127.0.0.0/8, ::1, localhost), e.g. behind a local TLS-terminating proxy",
    )
    tls = group.add_mutually_exclusive_group()
    tls.add_argument(
        "--cacert", type=Path, metavar="FILE", help="trust this CA file instead of the system's"
    )
    tls.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify the certificate (Enreach's InsecureSSL)",
    )
    group.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for an answer (default 5)"
    )
    group.add_argument(
        "--retries", type=int, default=3, help="tries after the first failure (default 3)"
    )
    group.add_argument(
        "--retry-delay",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="pause before each retry (default 1)",
    )


def run(args: argparse.Namespace) -> int:
    """Send the event; 0 when acknowledged, 1 when discarded, 2 for bad input."""
    try:
        return _send(args)
    except ConfigError as exc:
        print(f"receiver send: error: {exc}", file=sys.stderr)
        return 2


def _send(args: argparse.Namespace) -> int:
    refuse_secret_in_argv(args)
    if "://" not in args.url and "://" in (args.event_type or ""):
        raise ConfigError(f"the URL comes first: receiver send {args.event_type} {args.url}")
    provider = args.provider
    payload = build_payload(
        args.event_type, args.assignments, args.json_file, seed=args.seed, provider=provider
    )
    if args.dry_run:
        placeholder = "user:(not read on a dry run)" if args.basic else "(not read on a dry run)"
        wire = make_wire(args, None if args.no_secret else placeholder, event_type=args.event_type)
        _print_request(wire.build(args.url, payload, event_type=args.event_type))
        return 0
    check_url(args.url, allow_http=args.allow_http)
    wire = make_wire(args, resolve_secret(args), event_type=args.event_type)
    with SyncSender(args.url, provider=wire, **delivery_settings(args)) as sender:
        delivery = sender.send(payload, event_type=args.event_type)
    return _report(delivery)


def refuse_secret_in_argv(args: argparse.Namespace) -> None:
    """Raise if a secret was given as an option value (--secret, --token)."""
    if args.secret_in_argv is not None:
        raise ConfigError(
            "refusing a secret given on the command line (it would show in ps and shell "
            f"history); put it in ${DEFAULT_SECRET_ENV}, or use --secret-env NAME or "
            "--secret-file PATH"
        )


def check_url(url: str, *, allow_http: bool) -> None:
    """Raise unless `url` is `https://`, or `http://` to a loopback host with `allow_http`.

    The credential travels in a header, so over plain HTTP anyone on the path reads it.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError as exc:
        raise ConfigError(f"{url!r} is not a URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme == "https":
        return
    if scheme != "http":
        raise ConfigError(f"{url!r}: the URL must start with https://")
    if not allow_http:
        raise ConfigError(
            f"refusing to send the secret unencrypted to {url}: use https:// (--allow-http "
            "sends over http:// to a loopback address)"
        )
    if not is_loopback(host):
        raise ConfigError(
            f"--allow-http sends only to a loopback address (127.0.0.0/8, ::1, localhost), "
            f"not {host or '(no host)'}"
        )


def resolve_secret(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> str | None:
    """The secret named by the options: --secret-file, --secret-env or the default variable."""
    refuse_secret_in_argv(args)
    if args.no_secret:
        return None
    if args.secret_file is not None:
        secrets = read_secret_file(args.secret_file)
        if not secrets:
            raise ConfigError(f"secret file {args.secret_file} is empty")
        return secrets[0]
    name = args.secret_env or SECRET_ENVS[getattr(args, "provider", "enreach")]
    value = environ.get(name, "").strip()  # trimmed, as the receiver trims its secrets
    if not value:
        raise ConfigError(
            f"no secret: ${name} is not set (or use --secret-file PATH, or --no-secret to send "
            "without a token)"
        )
    return value


def delivery_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The `Sender`/`SyncSender` keyword arguments the delivery options ask for."""
    verify: Verify = False if args.insecure else (args.cacert or True)
    return {
        "verify": verify,
        "timeout": args.timeout,
        "retries": args.retries,
        "retry_delay": args.retry_delay,
    }


def parse_assignment(text: str) -> tuple[str, Any]:
    """`FIELD=VALUE` → (FIELD, VALUE parsed as JSON, or the raw string when it is not JSON)."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name or any(c.isspace() for c in name):
        raise ConfigError(f"--set expects FIELD=VALUE, got {text!r}")
    try:
        return name, orjson.loads(raw)
    except orjson.JSONDecodeError:
        return name, raw


def build_payload(
    event_type: str | None,
    assignments: list[str],
    json_file: Path | None,
    *,
    seed: int | None = None,
    provider: str = "enreach",
) -> dict[str, Any]:
    """The payload to send: the sample of `event_type` with overrides, or the --json payload."""
    sets = dict(parse_assignment(text) for text in assignments)
    from_file = _read_object(json_file) if json_file is not None else {}
    known = event_types(provider)
    if event_type is None:
        if json_file is None:
            raise ConfigError(
                "give an EVENT_TYPE, or --json FILE holding a whole payload; event types: "
                + ", ".join(known)
            )
        payload = {**from_file, **sets}
        if provider != "enreach":
            return payload
        if not isinstance(payload.get("EventType"), str) or not payload["EventType"]:
            raise ConfigError(
                f"{json_file}: a whole payload needs an EventType (give EVENT_TYPE to use the "
                "file as overrides of the sample instead)"
            )
        return payload
    if event_type not in known:
        close = difflib.get_close_matches(event_type, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(
            f"unknown event type {event_type!r}{hint}; valid types: " + ", ".join(known)
        )
    overrides = {**from_file, **sets}
    _note_unknown_fields(provider, event_type, overrides)
    return sample(provider, event_type, seed=seed, overrides=overrides)


def _read_object(path: Path) -> dict[str, Any]:
    try:
        value = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ConfigError(f"{path} must hold a JSON object, not {type(value).__name__}")
    return value


def _note_unknown_fields(provider: str, event_type: str, overrides: Mapping[str, Any]) -> None:
    known = {key.lower() for key in sample(provider, event_type, seed=0)}
    for name in overrides:
        if name.lower() not in known:
            print(f"note: {name} is not a field of {event_type}; sent anyway", file=sys.stderr)


def _print_request(request: WireRequest) -> None:
    print(f"{request.method} {request.url}")
    for name, value in request.redacted_headers():
        print(f"{name}: {value}")
    print()
    print(request.body.decode("utf-8", "replace"))


def _report(delivery: Delivery) -> int:
    request = delivery.request
    label = f"{request.event_type} {request.event_id or ''}".strip()
    if delivery.retried or not delivery.acknowledged:
        for attempt in delivery.attempts:
            outcome = attempt.error or f"HTTP {attempt.status}"
            print(
                f"attempt {attempt.number}: {outcome} ({attempt.latency * 1000:.1f} ms)",
                file=sys.stderr,
            )
    if delivery.acknowledged:
        latency = delivery.attempts[-1].latency * 1000
        tries = len(delivery.attempts)
        print(
            f"acknowledged: {label} -> 200 in {latency:.1f} ms "
            f"({tries} attempt{'s' if tries > 1 else ''})"
        )
        return 0
    print(
        f"receiver send: error: {label} discarded after {len(delivery.attempts)} attempts: "
        f"{delivery.error}",
        file=sys.stderr,
    )
    return 1

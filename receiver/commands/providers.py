"""What `send` and `scenario` need to know per provider: samples, secrets, wire options."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from receiver.catalogs.buzzeasy_samples import BUZZEASY_SAMPLE_TYPES, buzzeasy_sample
from receiver.catalogs.engage_samples import (
    WEB_SERVICE_SAMPLE_TYPES,
    WFM_SAMPLE_TYPES,
    web_service_sample,
    wfm_sample,
)
from receiver.catalogs.samples import ENREACH_EVENT_TYPES, enreach_sample
from receiver.exceptions import ConfigError
from receiver.sender import (
    BuzzeasyWire,
    EnreachWire,
    WebServicesWire,
    WfmWire,
    WireFormat,
    basic_authorization,
)

__all__ = [
    "PROVIDERS",
    "SECRET_ENVS",
    "add_provider_options",
    "event_types",
    "make_wire",
    "sample",
]

PROVIDERS = ("enreach", "engage_wfm", "engage_web_services", "buzzeasy")
"""The providers the sender speaks for, named like endpoint kinds."""

SECRET_ENVS = {
    "enreach": "RECEIVER_ENREACH_SECRET",
    "engage_wfm": "RECEIVER_ENGAGE_WFM_SECRET",
    "engage_web_services": "RECEIVER_ENGAGE_WEB_SERVICES_SECRET",
    "buzzeasy": "RECEIVER_BUZZEASY_SECRET",
}
"""The variable each provider's credential is read from unless --secret-env names another."""

_Sample = Callable[..., dict[str, Any]]

_SAMPLES: dict[str, tuple[tuple[str, ...], _Sample]] = {
    "enreach": (ENREACH_EVENT_TYPES, enreach_sample),
    "engage_wfm": (WFM_SAMPLE_TYPES, wfm_sample),
    "engage_web_services": (WEB_SERVICE_SAMPLE_TYPES, web_service_sample),
    "buzzeasy": (BUZZEASY_SAMPLE_TYPES, buzzeasy_sample),
}

# Option → the providers it applies to.
_APPLIES = {
    "auth_header": ("engage_wfm", "engage_web_services"),
    "basic": ("engage_wfm", "engage_web_services"),
    "encoding": ("engage_wfm",),
    "method": ("engage_wfm", "engage_web_services"),
    "body": ("engage_web_services",),
    "call_url": ("engage_wfm",),
}


def add_provider_options(parser: argparse.ArgumentParser, *, scenario: bool = False) -> None:
    """Add --provider and the options that shape a provider's requests."""
    group = parser.add_argument_group("provider")
    group.add_argument(
        "--provider",
        choices=PROVIDERS,
        default="enreach",
        help="whose wire format to send (default enreach); the credential comes from "
        + ", ".join(f"${env}" for env in SECRET_ENVS.values())
        + " respectively",
    )
    group.add_argument(
        "--auth-header",
        metavar="NAME",
        help="Engage: the header the credential goes in (default Authorization)",
    )
    group.add_argument(
        "--basic",
        action="store_true",
        help="Engage: the secret is user:password, sent as Authorization: Basic",
    )
    group.add_argument(
        "--encoding",
        choices=("query", "json", "form"),
        help="engage_wfm: details in the query string (default), a JSON body or a form body",
    )
    group.add_argument(
        "--method",
        type=str.upper,
        choices=("GET", "POST", "PUT", "PATCH", "DELETE"),
        help="Engage: the HTTP method (WFM default GET for query, else POST; web services POST)",
    )
    group.add_argument(
        "--body",
        choices=("json", "form", "xml", "text", "query"),
        help="engage_web_services: the body kind the web service is configured with (json)",
    )
    if scenario:
        group.add_argument(
            "--call-url",
            metavar="URL",
            help="engage_wfm: send end call events here (the Call Event URL)",
        )


def _check_options(provider: str, args: argparse.Namespace) -> None:
    for option, providers in _APPLIES.items():
        value = getattr(args, option, None)
        if value not in (None, False) and provider not in providers:
            flag = "--" + option.replace("_", "-")
            raise ConfigError(f"{flag} applies to {' and '.join(providers)}, not {provider}")
    if args.provider == "engage_wfm" and args.method not in (None, "GET", "POST"):
        raise ConfigError("engage_wfm sends with GET or POST only")


def event_types(provider: str) -> tuple[str, ...]:
    """The event types `provider` has samples of."""
    return _SAMPLES[provider][0]


def sample(
    provider: str,
    event_type: str,
    *,
    seed: int | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A realistic payload of `event_type` as `provider` would send it."""
    return _SAMPLES[provider][1](event_type, seed=seed, overrides=overrides)


def make_wire(
    args: argparse.Namespace,
    secret: str | None,
    *,
    event_type: str | None = None,
    scenario: bool = False,
) -> WireFormat:
    """The wire format the options describe, carrying `secret` (None: no credential)."""
    provider: str = args.provider
    _check_options(provider, args)
    if provider == "enreach":
        return EnreachWire(secret=secret)
    if provider == "buzzeasy":
        return BuzzeasyWire(
            api_key=secret, event_type=event_type or "WorkItemClosed", url_per_type=scenario
        )
    credential = basic_authorization(secret) if secret and args.basic else secret
    if args.basic and secret and ":" not in secret:
        raise ConfigError("--basic expects the secret to be user:password")
    header = args.auth_header or "Authorization"
    if provider == "engage_wfm":
        return WfmWire(
            credential=credential,
            auth_header=header,
            encoding=args.encoding or "query",
            method=args.method,
            call_url=getattr(args, "call_url", None),
        )
    return WebServicesWire(
        credential=credential,
        auth_header=header,
        method=args.method or "POST",
        body=args.body or "json",
        event_type=event_type or "CallDetails",
    )

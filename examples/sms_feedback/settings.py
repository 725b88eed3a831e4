"""The example's configuration, read once from environment variables (example.env lists them).

Secrets come from the environment or a file (`SMS_GATEWAY_TOKEN` or `SMS_GATEWAY_TOKEN_FILE`),
never from the receiver's config file or a command line. Every mistake is a one-line
`ConfigError`, so `receiver serve` refuses to start rather than text the wrong people.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from examples.sms_feedback.policy import QuietHours
from receiver.access import outbound_url
from receiver.exceptions import ConfigError

__all__ = ["DEFAULT_TEMPLATE", "FeedbackSettings"]

DEFAULT_TEMPLATE = (
    "Thank you for calling $queue. How did we do? Two questions, one minute: "
    "https://survey.example.com/c/$call"
)
"""The message: `$queue` is the service pool's name, `$call` the call's id."""

PLACEHOLDERS = frozenset({"queue", "call"})


@dataclass(frozen=True, slots=True)
class FeedbackSettings:
    """Everything the handler, its sender thread and the gateway client are told."""

    gateway_url: str
    gateway_token: str = field(repr=False)
    sender_name: str
    database: Path
    delay: float
    quiet_hours: QuietHours
    internal_prefixes: tuple[str, ...]
    min_digits: int
    template: Template
    gateway_timeout: float

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FeedbackSettings:
        """Read the SMS_* variables of `env` (default: the process's environment)."""
        env = os.environ if env is None else env
        url = _required(env, "SMS_GATEWAY_URL")
        outbound_url(url, "SMS_GATEWAY_URL", "the gateway's URL")
        template = Template(env.get("SMS_TEMPLATE", DEFAULT_TEMPLATE))
        unknown = set(template.get_identifiers()) - PLACEHOLDERS
        if unknown or not template.is_valid():
            raise ConfigError(
                "SMS_TEMPLATE: only $queue and $call may be used"
                + (f", not ${', $'.join(sorted(unknown))}" if unknown else "")
            )
        prefixes = env.get("SMS_INTERNAL_PREFIXES", "")
        return cls(
            gateway_url=url,
            gateway_token=_token(env),
            sender_name=env.get("SMS_SENDER_NAME", "Feedback"),
            database=Path(env.get("SMS_DATABASE", "sms_feedback.db")),
            delay=_number(env, "SMS_DELAY_SECONDS", 300.0),
            quiet_hours=QuietHours.parse(
                env.get("SMS_QUIET_HOURS", "21:00-08:00"),
                env.get("SMS_TIME_ZONE", "Europe/Helsinki"),
            ),
            internal_prefixes=tuple(p.strip() for p in prefixes.split(",") if p.strip()),
            min_digits=int(_number(env, "SMS_MIN_DIGITS", 8)),
            template=template,
            gateway_timeout=_number(env, "SMS_GATEWAY_TIMEOUT", 10.0),
        )

    def message(self, *, queue: str | None, call_id: str) -> str:
        """The text for one call."""
        return self.template.substitute(queue=queue or "us", call=call_id)


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set (see examples/sms_feedback/example.env)")
    return value


def _token(env: Mapping[str, str]) -> str:
    path = env.get("SMS_GATEWAY_TOKEN_FILE", "").strip()
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"SMS_GATEWAY_TOKEN_FILE: cannot read {path}: {exc}") from None
    return _required(env, "SMS_GATEWAY_TOKEN")


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {text!r}") from None
    if value < 0:
        raise ConfigError(f"{name}: must not be negative, got {text}")
    return value

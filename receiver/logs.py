"""Logging set-up: phone numbers redacted by default, secrets never written, floods limited."""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable
from typing import Any

__all__ = ["RateLimitedLog", "RedactingFilter", "configure_logging", "redact_phone_numbers"]

# E.164-like numbers and national numbers of 7+ digits, with spaces or dashes inside.
_PHONE = re.compile(r"(?<![\w.-])(\+?\d[\d \-]{5,}\d)(?![\w-])")


def redact_phone_numbers(text: str) -> str:
    """Replace all but the last two digits of every phone-number-like run with `*`."""

    def mask(match: re.Match[str]) -> str:
        number = match.group(1)
        digits = sum(c.isdigit() for c in number)
        if digits < 7:
            return number
        keep = 2
        out = []
        seen = 0
        for c in number:
            if c.isdigit():
                seen += 1
                out.append(c if seen > digits - keep else "*")
            else:
                out.append(c)
        return "".join(out)

    return _PHONE.sub(mask, text)


class RedactingFilter(logging.Filter):
    """Masks registered secrets always, and phone numbers unless told not to."""

    def __init__(self, *, phone_numbers: bool = True, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.phone_numbers = phone_numbers
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message in place; never drops a record."""
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        redacted = self._redact(message)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if redacted != message or record.args:
            record.msg = redacted
            record.args = None
        return True

    def _redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[secret]")
        if self.phone_numbers:
            text = redact_phone_numbers(text)
        return text


class RateLimitedLog:
    """Logs at most `burst` messages per `interval` seconds, then says how many it dropped."""

    def __init__(self, logger: logging.Logger, *, burst: int = 10, interval: float = 10.0):
        self.logger = logger
        self.burst = burst
        self.interval = interval
        self._window = 0.0
        self._count = 0
        self._dropped = 0

    def warning(self, msg: str, *args: Any) -> None:
        """Log a warning unless this window's budget is spent."""
        now = time.monotonic()
        if now - self._window >= self.interval:
            if self._dropped:
                self.logger.warning("(%d similar messages suppressed)", self._dropped)
            self._window, self._count, self._dropped = now, 0, 0
        if self._count < self.burst:
            self._count += 1
            self.logger.warning(msg, *args)
        else:
            self._dropped += 1


def configure_logging(
    level: str = "info", *, phone_numbers_redacted: bool = True, secrets: Iterable[str] = ()
) -> RedactingFilter:
    """Send `receiver.*` logs to stderr through the redacting filter; returns the filter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    redactor = RedactingFilter(phone_numbers=phone_numbers_redacted, secrets=secrets)
    handler.addFilter(redactor)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return redactor

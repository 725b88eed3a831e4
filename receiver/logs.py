"""Logging set-up: phone numbers redacted by default, secrets never written, floods limited."""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "ENGINE_LOGGERS",
    "PeerNoiseFilter",
    "RateLimitedLog",
    "RedactingFilter",
    "configure_logging",
    "printable",
    "redact_phone_numbers",
]

# A run of what a phone number is written with: digits, spaces and dashes after a digit (or
# `+digit`), not inside a word, a decimal or a dashed id. Finding runs takes one pass; so does
# finding where the number in a run ends (`_number_end`), so redaction is linear in the text:
# a single pattern that also finds the end (`\+?\d[\d \-]{5,}\d(?![\w-])`) backtracks over
# the whole rest of a run from every start inside it, and 60 KB of `1- ` took 18 s.
_RUN = re.compile(r"(?<![\w.-])\+?\d[\d \-]*")
_WORD_OR_DASH = re.compile(r"[\w-]")
_MIN_DIGITS = 7
"""Fewer digits than this are not a phone number (a queue number, a year)."""
_KEEP_DIGITS = 2


def _number_end(text: str, first: int, end: int) -> int:
    """Where the number in the run `text[first:end]` ends (`first`: its first digit), or -1.

    It ends after the run's last digit that is followed by a space, or that ends the run
    outside a word; a number shorter than 7 characters is none.
    """
    if text[end - 1] not in " -" and not _WORD_OR_DASH.match(text, end):
        last = end - 1
    else:
        space = text.rfind(" ", first, end)
        while space > first and text[space - 1] in " -":
            space = text.rfind(" ", first, space)
        last = space - 1
    return last + 1 if last - first >= 6 else -1


def _mask(number: str) -> str:
    digits = sum(c.isdigit() for c in number)
    if digits < _MIN_DIGITS:
        return number
    out = []
    seen = 0
    for c in number:
        if c.isdigit():
            seen += 1
            out.append(c if seen > digits - _KEEP_DIGITS else "*")
        else:
            out.append(c)
    return "".join(out)


def redact_phone_numbers(text: str) -> str:
    """Replace all but the last two digits of every phone-number-like run with `*`.

    A number is `+` (optional), a digit, then digits, spaces and dashes, ending in a digit:
    at least 7 characters and 7 digits, not inside a word, a decimal or a dashed id. Takes
    time linear in `text`, whatever it holds.
    """
    parts: list[str] = []
    done = 0
    for run in _RUN.finditer(text):
        start, end = run.span()
        first = start + 1 if text[start] == "+" else start
        stop = _number_end(text, first, end)
        if stop < 0:
            continue
        parts.append(text[done:start])
        parts.append(_mask(text[start:stop]))
        done = stop
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


def printable(text: str, limit: int = 200) -> str:
    """`text` fit for one log or terminal line: cut to `limit` characters (`...` marks a cut),
    control and other unprintable characters escaped (`\\n`, `\\x1b`, `\\u202e`).

    What a client sends (a path, a header, an answer's body) cannot then forge log lines or
    steer a terminal.
    """
    return _escaped(text[:limit] + "..." if len(text) > limit else text)


def _escaped(text: str, keep: str = "") -> str:
    """`text` with its unprintable characters but those in `keep` escaped."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() or c in keep else c.encode("unicode_escape").decode("ascii")
        for c in text
    )


class RedactingFilter(logging.Filter):
    """Masks registered secrets always, and phone numbers unless told not to; escapes control
    characters, so every record is one line (a traceback keeps its line breaks).

    Text from a request is escaped and cut where it is logged (`printable`); escaping here too
    means no other path (a handler's own log call, an exception's message) can forge a log
    line or send a terminal escape sequence either.
    """

    def __init__(self, *, phone_numbers: bool = True, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.phone_numbers = phone_numbers
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message in place; never drops a record."""
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        redacted = _escaped(self._redact(message))
        if record.exc_text:
            record.exc_text = _escaped(self._redact(record.exc_text), keep="\n")
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


class _Budget:
    """`burst` messages per `interval` seconds; counts what it refuses."""

    __slots__ = ("_count", "_window", "burst", "dropped", "interval")

    def __init__(self, burst: int, interval: float) -> None:
        self.burst = burst
        self.interval = interval
        self.dropped = 0
        self._window = 0.0
        self._count = 0

    def take(self) -> tuple[bool, int]:
        """Whether a message may pass now, and how many were dropped in the window just ended
        (to be reported once)."""
        now = time.monotonic()
        ended = 0
        if now - self._window >= self.interval:
            ended, self.dropped = self.dropped, 0
            self._window, self._count = now, 0
        if self._count < self.burst:
            self._count += 1
            return True, ended
        self.dropped += 1
        return False, ended


class RateLimitedLog:
    """Logs at most `burst` messages per `interval` seconds, then says how many it dropped."""

    def __init__(self, logger: logging.Logger, *, burst: int = 10, interval: float = 10.0):
        self.logger = logger
        self._budget = _Budget(burst, interval)

    def warning(self, msg: str, *args: Any, extra: Mapping[str, Any] | None = None) -> None:
        """Log a warning unless this window's budget is spent."""
        self.log(logging.WARNING, msg, *args, extra=extra)

    def error(self, msg: str, *args: Any, extra: Mapping[str, Any] | None = None) -> None:
        """Log an error unless this window's budget is spent."""
        self.log(logging.ERROR, msg, *args, extra=extra)

    def log(self, level: int, msg: str, *args: Any, extra: Mapping[str, Any] | None = None) -> None:
        """Log at `level` unless this window's budget is spent; `extra`: the record's fields
        (JSON keys in `--log-format json`)."""
        allowed, dropped = self._budget.take()
        if dropped:
            self.logger.log(level, "(%d similar messages suppressed)", dropped)
        if allowed:
            self.logger.log(level, msg, *args, extra=extra)


class PeerNoiseFilter(logging.Filter):
    """Limits the warnings an HTTP engine logs for each bad request or connection.

    Anyone who can reach the port can send malformed requests, and uvicorn logs a warning for
    each ("Invalid HTTP request received.", "Unsupported upgrade request."): unlimited, a
    client could fill the disk with them. Each distinct message passes `burst` times per
    `interval` seconds; the first to pass after a window with drops says how many there were.
    Errors always pass.
    """

    MAX_MESSAGES = 256
    """Distinct messages tracked; past this the slate is wiped (a bound on memory)."""

    def __init__(self, *, burst: int = 10, interval: float = 10.0) -> None:
        super().__init__()
        self.burst = burst
        self.interval = interval
        self._budgets: dict[str, _Budget] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.WARNING:
            return True
        key = str(record.msg)
        budget = self._budgets.get(key)
        if budget is None:
            if len(self._budgets) >= self.MAX_MESSAGES:
                self._budgets.clear()
            budget = self._budgets[key] = _Budget(self.burst, self.interval)
        allowed, dropped = budget.take()
        if allowed and dropped:
            record.msg = f"{record.getMessage()} ({dropped} similar messages suppressed)"
            record.args = None
        return allowed


ENGINE_LOGGERS = ("uvicorn.error", "hypercorn.error", "receiver.engines")
"""Where the engines (and this project's guards around them) log what clients did wrong."""


def configure_logging(
    level: str = "info",
    *,
    phone_numbers_redacted: bool = True,
    secrets: Iterable[str] = (),
    log_format: str = "auto",
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
    # httpx logs every request it sends (a forwarding subscriber's, with the URL's query) at
    # INFO: the dispatcher logs each failure itself, so only its warnings are of use.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    for name in ENGINE_LOGGERS:
        engine_log = logging.getLogger(name)
        for old_filter in [f for f in engine_log.filters if isinstance(f, PeerNoiseFilter)]:
            engine_log.removeFilter(old_filter)
        engine_log.addFilter(PeerNoiseFilter())
    return redactor

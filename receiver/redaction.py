"""What makes text fit for a log line: phone numbers and e-mail addresses masked, control
characters escaped; each in time linear in the text, whatever it holds."""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "EMAIL_MASK",
    "escaped",
    "mask_json",
    "mask_personal",
    "printable",
    "redact_email_addresses",
    "redact_phone_numbers",
]

# A run of what a phone number is written with: digits, spaces and dashes after a digit (or
# `+digit`), not inside a word, a decimal or a dashed id. Finding runs takes one pass; so does
# finding where the number in a run ends (`_number_end`), so redaction is linear in the text:
# a single pattern that also finds the end (`\+?\d[\d \-]{5,}\d(?![\w-])`) backtracks over
# the whole rest of a run from every start inside it, and 60 KB of `1- ` took 18 s.
_RUN = re.compile(r"(?<![\w.-])\+?\d[\d \-]*")
_WORD_OR_DASH = re.compile(r"[\w-]")
_SEVEN = re.compile(r"\d[\d \-]{6}")
"""The first seven characters of any number: without them a text has none. A fixed-length
pattern, so looking for it is linear and quick, and most log text (ids, names) has none."""
_MIN_DIGITS = 7
"""Fewer digits than this are not a phone number (a queue number, a year)."""
_KEEP_DIGITS = 2

# An address starts only where a run of local-part characters starts (the look-behind), and
# every quantifier is possessive: no start is tried twice inside a run and nothing is given
# back, so each character is read a bounded number of times. Without both, `a.a.a...` with no
# `@` would be scanned again from each of its characters (quadratic).
_EMAIL = re.compile(
    r"(?<![\w.%+-])[\w.%+-]++@[\w-]++(?:\.[\w-]++)++",
)
EMAIL_MASK = "[email]"
"""What an e-mail address is replaced with."""


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
    if not _SEVEN.search(text):
        return text
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


def redact_email_addresses(text: str) -> str:
    """Replace every e-mail address (`local@domain.tld`) with `[email]`, in time linear in
    `text`, whatever it holds."""
    if "@" not in text:
        return text
    return _EMAIL.sub(EMAIL_MASK, text)


def printable(text: str, limit: int = 200) -> str:
    """`text` fit for one log or terminal line: cut to `limit` characters (`...` marks a cut),
    control and other unprintable characters escaped (`\\n`, `\\x1b`, `\\u202e`).

    What a client sends (a path, a header, an answer's body) cannot then forge log lines or
    steer a terminal.
    """
    return escaped(text[:limit] + "..." if len(text) > limit else text)


def escaped(text: str, keep: str = "") -> str:
    """`text` with its unprintable characters but those in `keep` escaped."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() or c in keep else c.encode("unicode_escape").decode("ascii")
        for c in text
    )


def mask_personal(text: str) -> str:
    """`text` with its phone numbers and e-mail addresses masked: the one masking every output
    a person reads goes through (logs, `receiver inbox` commands, the console, alerts).
    Linear in the text's length."""
    return redact_phone_numbers(redact_email_addresses(text))


def mask_json(value: Any) -> Any:
    """A JSON value (as `json.loads` gives it) with `mask_personal` applied to every string,
    and every integer long enough to be a phone number masked as one (as text)."""
    if isinstance(value, str):
        return mask_personal(value)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, dict):
            return {key: mask_json(item) for key, item in value.items()}
        if isinstance(value, list):
            return [mask_json(item) for item in value]
        return value
    text = str(value)
    masked = redact_phone_numbers(text)
    return value if masked == text else masked

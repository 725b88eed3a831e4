"""Who may get the questionnaire, and when: pure rules, no I/O, no clock of their own.

A caller is texted only from a number that is plainly an outside phone number: hidden or
anonymous callers (an empty `CallerNumber`, or a word such as `anonymous`), extensions and
short numbers (fewer than a configured number of digits) and numbers starting with a
configured internal prefix (the company's own numbers) are not. Quiet hours are a window of
local wall-clock time in a configured zone, which may run over midnight (21:00-08:00); an
SMS due inside it waits until it ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from receiver.exceptions import ConfigError

__all__ = ["QuietHours", "phone_number", "refusal"]

_SEPARATORS = re.compile(r"[\s\-().]")
_NUMBER = re.compile(r"\+?\d+")


def phone_number(text: str | None) -> str | None:
    """`text` as digits with an optional leading `+`, or None when it is no phone number."""
    if text is None:
        return None
    compact = _SEPARATORS.sub("", text)
    return compact if _NUMBER.fullmatch(compact) else None


def refusal(
    caller: str | None, *, min_digits: int, internal_prefixes: tuple[str, ...]
) -> str | None:
    """Why `caller` gets no SMS, or None when it may get one."""
    number = phone_number(caller)
    if number is None:
        return "hidden or anonymous number"
    if len(number.lstrip("+")) < min_digits:
        return "internal number (an extension or short number)"
    if number.startswith(internal_prefixes):
        return "internal number (an internal prefix)"
    return None


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily window of local time in which no SMS is sent; `start == end` means none."""

    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, window: str, zone: str) -> QuietHours:
        """`21:00-08:00` (seconds allowed: `21:00:30`) in the IANA `zone`; `off` or '' for none."""
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"SMS_TIME_ZONE: unknown time zone {zone!r}") from None
        if window.strip().lower() in ("", "off", "none"):
            return cls(time(0), time(0), tz)
        first, sep, last = window.partition("-")
        try:
            if not sep:
                raise ValueError(window)
            return cls(time.fromisoformat(first.strip()), time.fromisoformat(last.strip()), tz)
        except ValueError:
            raise ConfigError(
                f"SMS_QUIET_HOURS: expected HH:MM-HH:MM such as 21:00-08:00, got {window!r}"
            ) from None

    @property
    def never(self) -> bool:
        """Whether there are no quiet hours at all."""
        return self.start == self.end

    def contains(self, at: datetime) -> bool:
        """Whether the moment `at` (aware) falls in quiet hours."""
        if self.never:
            return False
        now = at.astimezone(self.zone).time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end  # over midnight

    def next_allowed(self, at: datetime) -> datetime:
        """`at` itself outside quiet hours, else the moment they end (aware, in the zone)."""
        if not self.contains(at):
            return at
        local = at.astimezone(self.zone)
        day = local.date()
        if self.start > self.end and local.time().replace(tzinfo=None) >= self.start:
            day += timedelta(days=1)  # in the evening part: they end tomorrow morning
        return datetime.combine(day, self.end, tzinfo=self.zone)

    def __str__(self) -> str:
        if self.never:
            return "none"
        return f"{self.start.isoformat()}-{self.end.isoformat()} {self.zone.key}"

"""Finding one person's data in stored events, for erasure on request (`receiver inbox erase`).

A `PersonalDataQuery` says what to look for: phone numbers (compared as E.164 after
normalising each side with Google's libphonenumber rules, through `phonenumbers`; a stored
number in national form is read in `region`, else in the wanted number's own country; a number
inside a longer text, such as `call from 050 123 1234`, is found too), e-mail addresses
(case-insensitive, alone or inside a text), a named field's exact value at any depth, and call
ids (the event's order key, or any value equal to it). `matches` reads one JSON payload; text is
parsed for numbers only when its digits hold the wanted number's national digits, so a scan of a
large inbox costs little more than reading it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import phonenumbers

from receiver.exceptions import ConfigError
from receiver.inbox.models import phone_digits
from receiver.redaction import mask_personal

__all__ = ["PersonalDataQuery", "e164"]

_NOT_DIGITS = re.compile(r"\D")
_EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")


def e164(text: str, region: str | None) -> str | None:
    """`text` as an E.164 number (`+358501231234`), or None when it is no possible number
    (`region`: the ISO country code for numbers written without a country code)."""
    if phone_digits(text) is None and not text.strip().startswith("00"):
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True)
class PersonalDataQuery:
    """What an erasure looks for; an event matches when any one of its parts does."""

    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()
    calls: tuple[str, ...] = ()
    region: str | None = None
    """The default region (ISO 3166 code, e.g. `FI`) for numbers in national form."""
    _numbers: frozenset[str] = field(init=False, repr=False)
    _wanted: dict[str, tuple[str, str | None]] = field(init=False, repr=False)
    """Each wanted number (E.164) with its national digits and the region to read with."""
    _tails: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not (self.phones or self.emails or self.fields or self.calls):
            raise ConfigError("say what to erase: --phone, --email, --field NAME=VALUE or --call")
        wanted: dict[str, tuple[str, str | None]] = {}
        for phone in self.phones:
            number = e164(phone, self.region)
            if number is None:
                hint = "" if self.region else " (a national number needs --region, e.g. FI)"
                raise ConfigError(f"{mask_personal(phone)!r} is not a phone number{hint}")
            parsed = phonenumbers.parse(number)
            national = phonenumbers.national_significant_number(parsed)
            wanted[number] = (national, self.region or phonenumbers.region_code_for_number(parsed))
        object.__setattr__(self, "_numbers", frozenset(wanted))
        object.__setattr__(self, "_wanted", wanted)
        object.__setattr__(self, "_tails", tuple(n for n, _ in wanted.values()))
        object.__setattr__(self, "emails", tuple(e.strip().lower() for e in self.emails))

    def describe(self) -> str:
        """What is looked for, for a summary (numbers and addresses as given)."""
        parts = [*self.phones, *self.emails, *(f"{k}={v}" for k, v in self.fields), *self.calls]
        return ", ".join(parts)

    def matches(self, payload: bytes, order_key: str | None = None) -> bool:
        """Whether a stored event (its JSON payload and order key) holds what is looked for."""
        if order_key is not None and any(
            order_key == c or order_key.endswith(":" + c) for c in self.calls
        ):
            return True
        try:
            document = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return False
        return any(self._value_matches(key, value) for key, value in _leaves(document, None))

    def _value_matches(self, key: str | None, value: Any) -> bool:
        if isinstance(value, bool) or value is None:
            return False
        text = str(value)
        if key is not None and any(
            key.lower() == name.lower() and text == wanted for name, wanted in self.fields
        ):
            return True
        if self.calls and text in self.calls:
            return True
        if (
            self.emails
            and "@" in text
            and any(found.lower() in self.emails for found in _EMAIL.findall(text))
        ):
            return True
        if self._numbers:
            return self._holds_number(text)
        return False

    def _holds_number(self, text: str) -> bool:
        digits = _NOT_DIGITS.sub("", text)
        candidates = [
            (number, region)
            for number, (national, region) in self._wanted.items()
            if national in digits
        ]
        if not candidates:
            return False
        whole = phone_digits(text) is not None
        for number, region in candidates:
            if whole:
                if e164(text, region) == number:
                    return True
                continue
            for match in phonenumbers.PhoneNumberMatcher(text, region):
                found = phonenumbers.format_number(
                    match.number, phonenumbers.PhoneNumberFormat.E164
                )
                if found == number:
                    return True
        return False


def _leaves(value: Any, key: str | None) -> Iterator[tuple[str | None, Any]]:
    """Every scalar of a JSON document with the name of the member holding it."""
    stack: list[tuple[str | None, Any]] = [(key, value)]
    while stack:
        name, item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.items())
        elif isinstance(item, list):
            stack.extend((name, element) for element in item)
        else:
            yield name, item

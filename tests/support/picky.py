"""A subscriber for the console's tests: a CRM that chokes on one caller's calls until fixed.

Runs inside `receiver serve`; configured by environment variables as `tests.support.subscribers`
is (SUBSCRIBERS_RECORD_FILE), plus PICKY_FLAG: while that file exists, every event whose
caller or target number is the number the file holds fails.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from receiver.inbox.models import StoredEvent
from tests.support.subscribers import Recorder

__all__ = ["CONTACT_ERROR", "Picky"]

CONTACT_ERROR = "the CRM refused the contact record of"
"""The start of the message `Picky` fails with (the number follows)."""


class Picky(Recorder):
    """`Recorder` that fails the events of one phone number while `PICKY_FLAG` exists."""

    def __init__(self) -> None:
        super().__init__()
        self.flag = Path(os.environ["PICKY_FLAG"])

    def check(self, event: StoredEvent) -> None:
        """Fail an event of the number in the flag file, while there is one."""
        try:
            number = self.flag.read_text().strip()
        except FileNotFoundError:
            return
        payload: Any = orjson.loads(event.payload)
        if isinstance(payload, dict) and number in (
            payload.get("CallerNumber"),
            payload.get("TargetNumber"),
        ):
            lookup_contact(number)


def lookup_contact(number: str) -> None:
    """The CRM call that fails (its own frame, so the traceback names it)."""
    raise LookupError(f"{CONTACT_ERROR} {number}: duplicate key 'phone'")

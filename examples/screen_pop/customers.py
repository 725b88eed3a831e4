"""The internal lookup a screen pop shows: a customer record found by the caller's number.

A SQLite file stands in for the CRM's customer table. It is created from `customers.sql`
(shipped beside this module) the first time the directory opens a path where no file is, so
the example needs no binary database in the repository; point `SCREEN_POP_CUSTOMERS_DB` at a
copy of your own data (a table `customers` with the same columns) to use that instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SEED", "Customer", "CustomerDirectory", "normalized_number"]

SEED = Path(__file__).with_name("customers.sql")
"""The SQL script that creates and fills the example's customer table."""

_SEPARATORS = re.compile(r"[\s().\-/]")


@dataclass(frozen=True, slots=True)
class Customer:
    """One row of the customer table."""

    id: int
    phone: str
    name: str
    company: str | None
    tier: str | None
    note: str | None


def normalized_number(number: str) -> str:
    """`number` as the table keeps it: no spaces or dashes, `00` written as `+`."""
    compact = _SEPARATORS.sub("", number.strip())
    return "+" + compact[2:] if compact.startswith("00") else compact


class CustomerDirectory:
    """Looks customers up by phone number in a SQLite file, created from `SEED` if missing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            _create(path)

    def find(self, number: str) -> Customer | None:
        """The customer whose number is `number` (any common spelling), or None."""
        # Read-only and one connection per look-up: the directory may be replaced by a fresh
        # export at any time, and a look-up is a single indexed row.
        uri = f"file:{self.path}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            row = db.execute(
                "SELECT id, phone, name, company, tier, note FROM customers WHERE phone = ?",
                (normalized_number(number),),
            ).fetchone()
        return None if row is None else Customer(*row)

    async def lookup(self, number: str) -> Customer | None:
        """`find` on a thread, so a slow disk never holds up the pages' event loop."""
        return await asyncio.to_thread(self.find, number)


def _create(path: Path) -> None:
    """Write the seeded table to `path` whole: to a temporary file first, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".customers-", suffix=".db", dir=path.parent)
    os.close(handle)
    try:
        with contextlib.closing(sqlite3.connect(temporary)) as db:
            db.executescript(SEED.read_text(encoding="utf-8"))
            db.commit()
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

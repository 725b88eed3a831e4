"""Reading a receiver's log in either `--log-format`: JSON lines or readable console lines."""

from __future__ import annotations

import re
from typing import Any

import orjson

__all__ = ["CONSOLE_LINE", "json_records", "log_messages"]

CONSOLE_LINE = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: "
)
"""How every record starts in `--log-format console`: `timestamp LEVEL logger: message`."""


def json_records(text: str) -> list[dict[str, Any]]:
    """Every line of `text` as a JSON object; fails, naming the line, on one that is not."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise AssertionError(f"line {number} is not JSON: {line[:300]!r}") from None
        assert isinstance(record, dict), f"line {number} is not a JSON object: {line[:300]!r}"
        records.append(record)
    return records


def log_messages(log: str) -> list[str]:
    """The text of every line of `log`: a JSON line's `message` (and `exception`, line by
    line), any other line (console records, tracebacks, what went to stdout) as it is."""
    texts: list[str] = []
    for line in log.splitlines():
        if line.startswith("{"):
            record = orjson.loads(line)
            texts.append(str(record.get("message", "")))
            texts.extend(str(record.get("exception", "")).splitlines())
        else:
            texts.append(line)
    return texts

"""How a log record becomes a line: JSON or readable, every string redacted first.

Every logger in the process (this project's, the engines', a handler's) logs through the
standard library; `configure_logging` gives the root logger one handler whose formatter is
structlog's `ProcessorFormatter`. In `--log-format json` each record is one JSON object:

- `timestamp`: when the record was made, ISO 8601 in UTC (`2024-05-01T08:01:23.450Z`);
- `level`: `debug`, `info`, `warning`, `error` or `critical`;
- `logger`: the logger's name (`receiver.requests`, `receiver.deliveries`, `uvicorn.error`...);
- `message`: the text of the record;
- every field the call passed with `extra=` (`endpoint`, `outcome`, `event_id`...);
- `exception`: the formatted traceback, when there is one; `stack` for `stack_info`.

`--log-format console` writes the same as `timestamp LEVEL logger: message key=value ...`,
coloured only on a terminal. Every string that reaches a line (message, traceback, field)
goes through `RedactingFilter.redact` first.

A JSON record without a traceback or stack (every line of a busy receiver: one per webhook,
one per delivery attempt) skips structlog's chain and is built directly, with the same
processors in the same order (`_JsonLines`): the chain copies the record and the event dict
at each step, about 26 µs a line on the writing thread against 15 this way
(`python bench/parts.py log-line`), and under load that thread takes the one core from the
event loop (bench/RESULTS.md, issue 19). Both paths give the same line
(`tests/test_logs_json.py` compares them).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping, MutableMapping
from typing import Any, cast

import orjson
import structlog
from structlog.dev import Column, ConsoleRenderer, KeyValueColumnFormatter
from structlog.stdlib import ExtraAdder, ProcessorFormatter
from structlog.typing import Processor

__all__ = ["LOG_FORMATS", "MULTILINE", "formatter"]

LOG_FORMATS = ("auto", "json", "console")
"""`--log-format` values: `auto` is `console` when stderr is a terminal, else `json`."""

MULTILINE = frozenset({"exception", "stack"})
"""Fields that keep their line breaks: a traceback is read line by line."""

_DROPPED_FIELDS = ("color_message",)
"""`extra=` fields never written: uvicorn's copy of its message with terminal colours."""


def _record_fields(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
    """`stack` for `stack_info`; engine-only fields dropped."""
    stack = event.pop("stack_info", None)
    if stack:
        event["stack"] = stack
    for name in _DROPPED_FIELDS:
        event.pop(name, None)
    return event


_second: tuple[int, str] = (0, "")
"""The last whole second formatted, and its text: most records share their second."""


def _leading_fields(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
    """`timestamp`, `level`, `logger` and `message` first, then the rest as it came.

    The timestamp is when the record was made (not when it is written, which with the queue
    may be later): ISO 8601 in UTC with milliseconds.
    """
    global _second
    record: logging.LogRecord = event["_record"]
    second, text = _second  # one read: another thread may replace it meanwhile
    if second != int(record.created):
        second = int(record.created)
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second = (second, text)
    return {
        "timestamp": f"{text}.{int(record.msecs):03d}Z",
        "level": record.levelname.lower(),
        "logger": record.name,
        "message": event.pop("message"),
        **event,
    }


def _json_text(event: Any, **options: Any) -> str:
    """orjson's encoding of `event` as text (structlog's JSONRenderer wants a string)."""
    return orjson.dumps(event, **options).decode()


class _LevelColumn:
    """`INFO`, `WARNING`... in the level's colour (no colour: plain)."""

    def __init__(self, styles: Mapping[str, str], reset: str) -> None:
        self.styles = styles
        self.reset = reset if styles else ""

    def __call__(self, key: str, value: object) -> str:
        level = str(value)
        return f"{self.styles.get(level, '')}{level.upper()}{self.reset}"


def _console_renderer(colors: bool) -> ConsoleRenderer:
    """`timestamp LEVEL logger: message key=value ...`, coloured when `colors`."""
    styles = ConsoleRenderer.get_default_column_styles(colors)
    levels = ConsoleRenderer.get_default_level_styles(colors) if colors else {}

    def plain(style: str, postfix: str = "") -> KeyValueColumnFormatter:
        return KeyValueColumnFormatter(
            key_style=None, value_style=style, reset_style=styles.reset, value_repr=str,
            postfix=postfix,
        )  # fmt: skip

    fields = KeyValueColumnFormatter(
        key_style=styles.kv_key, value_style=styles.kv_value, reset_style=styles.reset,
        value_repr=lambda value: value if isinstance(value, str) else repr(value),
    )  # fmt: skip
    return ConsoleRenderer(
        columns=[
            Column("timestamp", plain(styles.timestamp)),
            Column("level", _LevelColumn(levels, styles.reset)),
            Column("logger", plain(styles.logger_name, ":")),
            Column("message", plain(styles.bright)),
            Column("", fields),
        ],
        sort_keys=False,
    )


_RECORD_KEYS = frozenset(logging.LogRecord("name", 0, "pathname", 0, "msg", (), None).__dict__)
"""A bare record's attributes: any other is a field passed with `extra=` (as `ExtraAdder`)."""


class _JsonLines(logging.Formatter):
    """JSON lines: a record with a traceback or stack through structlog's chain (`chain`),
    any other built here with the chain's own processors, without its copies."""

    def __init__(self, chain: ProcessorFormatter, redact: Processor) -> None:
        super().__init__()
        self.chain = chain
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text or record.stack_info:
            return self.chain.format(record)
        event: dict[str, Any] = {"message": record.getMessage()}
        for key, value in record.__dict__.items():
            if key not in _RECORD_KEYS:
                event[key] = value
        for name in _DROPPED_FIELDS:
            event.pop(name, None)
        event = cast(dict[str, Any], self.redact(None, record.levelname.lower(), event))
        event["_record"] = record
        line = _leading_fields(None, "", event)
        del line["_record"]
        return _json_text(line)


def formatter(log_format: str, redact: Processor) -> logging.Formatter:
    """The formatter for standard records, as `log_format` (json or console) says."""
    on_terminal = sys.stderr.isatty()
    if log_format == "auto":
        log_format = "console" if on_terminal else "json"
    renderer: Any
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer(serializer=_json_text)
    else:
        renderer = _console_renderer(colors=on_terminal and not os.environ.get("NO_COLOR"))
    chain = ProcessorFormatter(
        foreign_pre_chain=[
            structlog.processors.EventRenamer("message"),  # before any `extra` named `event`
            ExtraAdder(),
            _record_fields,
            structlog.processors.format_exc_info,
            redact,  # all the record holds; what follows is this module's own
            _leading_fields,
        ],
        processors=[ProcessorFormatter.remove_processors_meta, renderer],
    )
    return _JsonLines(chain, redact) if log_format == "json" else chain

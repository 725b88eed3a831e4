"""Logging set-up: one line per record on stderr, JSON or readable (`receiver.log_format`);
secrets never written, phone numbers and e-mail addresses masked by default, floods limited,
and formatting and writing done on a thread of their own."""

from __future__ import annotations

import atexit
import contextlib
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from receiver.exceptions import ConfigError
from receiver.log_format import LOG_FORMATS, MULTILINE, formatter
from receiver.redaction import (
    escaped,
    printable,
    redact_email_addresses,
    redact_phone_numbers,
)

__all__ = [
    "ENGINE_LOGGERS",
    "LOG_FORMATS",
    "PeerNoiseFilter",
    "RateLimitedLog",
    "RedactingFilter",
    "configure_logging",
    "printable",
    "redact_email_addresses",
    "redact_phone_numbers",
    "stop_logging",
]

_SCALARS = (bool, int, float, type(None))
_MEMO_SIZE = 1024
_MEMO_LENGTH = 100
"""Texts up to this long are remembered redacted, up to `_MEMO_SIZE` of them (~200 KB)."""
_MAX_JSON_INT = 2**63
"""orjson writes no integer beyond 64 bits: larger ones are written as strings."""


class RedactingFilter(logging.Filter):
    """Masks registered secrets always, phone numbers and e-mail addresses unless told not to;
    escapes control characters, so every record is one line (a traceback keeps its breaks).

    Text from a request is escaped and cut where it is logged (`printable`); escaping here too
    means no other path (a handler's own log call, an exception's message) can forge a log
    line or send a terminal escape sequence either. As a `logging.Filter` it rewrites a record;
    as a structlog processor (`process`) it rewrites every value of an event dict.
    """

    def __init__(
        self,
        *,
        phone_numbers: bool = True,
        secrets: Iterable[str] = (),
        email_addresses: bool | None = None,
    ) -> None:
        super().__init__()
        self.phone_numbers = phone_numbers
        self.email_addresses = phone_numbers if email_addresses is None else email_addresses
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._memo: dict[str, str] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message in place; never drops a record."""
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        redacted = self.redact(message)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text, keep="\n")
        if redacted != message or record.args:
            record.msg = redacted
            record.args = None
        return True

    def redact(self, text: str, keep: str = "") -> str:
        """`text` with secrets, and unless told not to phone numbers and e-mail addresses,
        masked; its unprintable characters but those in `keep` escaped."""
        if keep or len(text) > _MEMO_LENGTH:
            return self._redacted(text, keep)
        # Most fields repeat (an endpoint, an outcome, an event type, a client address).
        done = self._memo.get(text)
        if done is None:
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            done = self._memo[text] = self._redacted(text, keep)
        return done

    def _redacted(self, text: str, keep: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "[secret]")
        if self.email_addresses and "@" in text:
            text = redact_email_addresses(text)
        if self.phone_numbers:
            text = redact_phone_numbers(text)
        return text if text.isprintable() else escaped(text, keep)

    def process(self, _logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
        """A structlog processor: every value redacted (`redact`); a value that is neither a
        string nor a JSON scalar becomes its `str` first, so nothing reaches a line unread."""
        for key, value in event.items():
            if key.startswith("_"):
                continue  # structlog's own (`_record`), removed before rendering
            if isinstance(value, str):
                event[key] = self.redact(value, keep="\n" if key in MULTILINE else "")
            elif not isinstance(value, _SCALARS) or (
                isinstance(value, int) and not -_MAX_JSON_INT <= value < _MAX_JSON_INT
            ):
                event[key] = self.redact(str(value))
        return event


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


class _Batches(threading.Thread):
    """Formats and writes the queued records a batch at a time, on a thread of its own.

    A log call only appends its record to a deque. The thread wakes every `FLUSH_INTERVAL`
    (at once for an error, or when `WAKE_AT` records wait) and writes everything queued with
    one write: waking a thread for each record (a queue's `get`) cost about 100 µs of CPU a
    request on the acknowledgement path, far more than formatting the line.

    Past `MAX_PENDING` records waiting (stderr blocked: a full pipe nobody reads) a log call
    waits for the writer, as it would writing itself: no line is dropped, and a stalled log
    cannot grow memory without bound.
    """

    FLUSH_INTERVAL = 0.05
    """Seconds a record waits at most before it is written."""
    WAKE_AT = 1024
    """Records waiting that wake the writer before its time."""
    MAX_PENDING = 10_000
    """Records waiting to be written, at most (about 10 MB; seconds of the busiest log)."""

    def __init__(self, writer: logging.StreamHandler[Any]) -> None:
        super().__init__(name="receiver-log-writer", daemon=True)
        self.writer = writer
        self._records: deque[logging.LogRecord] = deque()
        self._wake = threading.Event()
        self._stopping = False

    def put(self, record: logging.LogRecord) -> None:
        """Queue `record` (first waiting while too many wait already)."""
        records = self._records
        while len(records) >= self.MAX_PENDING and self.is_alive():
            self._wake.set()
            time.sleep(0.001)
        records.append(record)
        if record.levelno >= logging.ERROR or len(records) >= self.WAKE_AT:
            self._wake.set()

    def run(self) -> None:
        """Write what is queued whenever woken, until stopped."""
        while True:
            self._wake.wait(self.FLUSH_INTERVAL)
            self._wake.clear()
            stopping = self._stopping
            self._write()
            if stopping:
                return

    def _write(self) -> None:
        records, writer = self._records, self.writer
        lines: list[str] = []
        while records:
            record = records.popleft()
            try:
                lines.append(writer.format(record) + writer.terminator)
            except Exception:
                writer.handleError(record)
        if lines:
            with contextlib.suppress(Exception):  # stderr gone: nowhere left to say so
                writer.stream.write("".join(lines))
                writer.flush()

    def stop(self) -> None:
        """Write everything queued, then end the thread."""
        self._stopping = True
        self._wake.set()
        self.join()


class _Enqueue(logging.Handler):
    """Hands records to the writing thread with their message already merged (arguments may
    change once the call returns); the traceback is formatted on that thread."""

    def __init__(self, batches: _Batches) -> None:
        super().__init__()
        self.batches = batches

    def emit(self, record: logging.LogRecord) -> None:
        """Merge `record`'s message in place (not on a copy: 3 µs a record) and queue it."""
        record.msg = record.getMessage()
        record.args = None
        self.batches.put(record)


_writing: tuple[_Batches, logging.Handler, logging.Handler] | None = None
"""The writing thread, the handler that queues to it and the one it writes with."""


def stop_logging() -> None:
    """Write every record still queued, stop the writing thread, and write any later record
    directly (run at exit, so that no line is lost)."""
    global _writing
    if _writing is None:
        return
    (batches, queued, writer), _writing = _writing, None
    root = logging.getLogger()
    if queued in root.handlers:
        root.addHandler(writer)
        root.removeHandler(queued)
    batches.stop()


atexit.register(stop_logging)


def configure_logging(
    level: str = "info",
    *,
    phone_numbers_redacted: bool = True,
    secrets: Iterable[str] = (),
    log_format: str = "auto",
    email_addresses_redacted: bool | None = None,
) -> RedactingFilter:
    """Send all logs to stderr, one line per record in `log_format` (`LOG_FORMATS`), through
    the redacting processor; returns the redactor. E-mail addresses follow phone numbers
    unless `email_addresses_redacted` says otherwise."""
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"log format {log_format!r}: choose json, console or auto")
    redactor = RedactingFilter(
        phone_numbers=phone_numbers_redacted,
        secrets=secrets,
        email_addresses=email_addresses_redacted,
    )
    writer = logging.StreamHandler(sys.stderr)
    writer.setFormatter(formatter(log_format, redactor.process))
    # Formatting and writing happen on a thread of their own: the event loop only queues.
    batches = _Batches(writer)
    batches.start()
    queued = _Enqueue(batches)
    stop_logging()  # a former set-up's
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(queued)
    root.setLevel(level.upper())
    # No line shows where a call was made, nor the process or thread: the logging HOWTO's
    # "Optimization" settings spare each record the look-ups (a stack walk, getpid, names).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging.captureWarnings(True)  # a warning, too, is one line in the format, redacted
    global _writing
    _writing = (batches, queued, writer)
    # httpx logs every request it sends (a forwarding subscriber's, with the URL's query) at
    # INFO: the dispatcher logs each failure itself, so only its warnings are of use.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    for name in ENGINE_LOGGERS:
        engine_log = logging.getLogger(name)
        for old_filter in [f for f in engine_log.filters if isinstance(f, PeerNoiseFilter)]:
            engine_log.removeFilter(old_filter)
        engine_log.addFilter(PeerNoiseFilter())
    return redactor

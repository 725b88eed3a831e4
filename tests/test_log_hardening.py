"""What a request carries cannot freeze the log or write into it as it likes.

Phone-number redaction, which runs on every log line, takes time linear in the line (a
pattern that backtracked froze a server for 75 s over a 120 KB `Id`); text from a request
(an `Id`, an `EventType`, a Buzzeasy `id`) reaches the log, and the terminal through
`receiver inbox list/show`, with its control characters escaped, so it can neither forge a
line nor send escape sequences to a terminal.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.inbox.models import NewEvent
from receiver.inbox.sqlite import SqliteInbox
from receiver.logs import RedactingFilter, printable, redact_phone_numbers
from tests.conftest import Harness, run_cli
from tests.support.faults import provider_receiver, stop_cleanly
from tests.support.inbox import run as run_inbox
from tests.support.log_lines import log_messages
from tests.support.provider_cases import BUZZEASY, ENGINES, ENREACH

FORMER_PHONE = re.compile(r"(?<![\w.-])(\+?\d[\d \-]{5,}\d)(?![\w-])")
"""The pattern redaction used before: the reference for what it masks (on short texts only:
it is quadratic)."""


def former_redaction(text: str) -> str:
    """What redaction gave with `FORMER_PHONE`."""

    def mask(match: re.Match[str]) -> str:
        number = match.group(1)
        digits = sum(c.isdigit() for c in number)
        if digits < 7:
            return number
        seen = 0
        out = []
        for c in number:
            if c.isdigit():
                seen += 1
                out.append(c if seen > digits - 2 else "*")
            else:
                out.append(c)
        return "".join(out)

    return FORMER_PHONE.sub(mask, text)


ADVERSARIAL = {
    "the probe's Id": "1- " * 40_000,
    "spaced digits before a letter": "1 " * 60_000 + "a",
    "plus signs": "+1 " * 40_000,
    "dashes and spaces": " 1-1" * 30_000,
    "digits then a word": "1" * 119_999 + "a",
    "dashed": "1-" * 60_000,
}


@pytest.mark.parametrize("text", list(ADVERSARIAL.values()), ids=list(ADVERSARIAL))
def test_redacting_120_kb_of_adversarial_text_takes_linear_time(text: str) -> None:
    """About 10 ms here; the former, quadratic pattern took 75 s for the probe's Id. The bound
    is far from both, so a busy machine cannot fail it and a quadratic scan cannot pass it."""
    assert len(text) >= 119_999
    started = time.perf_counter()
    redact_phone_numbers(text)
    took = time.perf_counter() - started
    assert took < 2.0, f"{took:.3f} s"


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="0123456789 -+a._\n\u0663", max_size=40))
def test_redaction_masks_what_the_former_pattern_masked(text: str) -> None:
    assert redact_phone_numbers(text) == former_redaction(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+358 50 123 1234 and 040-123 4567", "+*** ** *** **34 and ***-*** **67"),
        ("tel:+358501231234.", "tel:+**********34."),
        ("v 1.2345678 and 1-2-3-4-5-6-7", "v 1.2345678 and *-*-*-*-*-6-7"),  # not a decimal
        ("123 4567 89ab", "*** **67 89ab"),  # the last digit before a word is not the end
    ],
)
def test_redaction_of_real_numbers(text: str, expected: str) -> None:
    assert redact_phone_numbers(text) == former_redaction(text) == expected


def record(message: str, *args: object) -> logging.LogRecord:
    """A log record as a logger makes it."""
    return logging.LogRecord("x", logging.INFO, __file__, 1, message, args, None)


def test_the_filter_escapes_control_characters_in_every_record() -> None:
    forged = "x\n2024-01-01 00:00:00,000 WARNING receiver: forged\x1b[2J\x1b]0;title\x07"
    entry = record("event %s handled", forged)
    try:
        raise ValueError(forged)
    except ValueError:
        entry.exc_info = sys.exc_info()
    RedactingFilter(phone_numbers=False).filter(entry)
    message = entry.getMessage()
    assert message == (
        "event x\\n2024-01-01 00:00:00,000 WARNING receiver: forged\\x1b[2J\\x1b]0;title\\x07 "
        "handled"
    )
    assert entry.exc_text is not None
    assert "\x1b" not in entry.exc_text and "\x07" not in entry.exc_text
    assert entry.exc_text.count("\n") >= 2  # a traceback keeps its lines
    assert "\\nforged" not in entry.exc_text


def test_printable_cuts_and_escapes() -> None:
    assert printable("a\nb" * 100, 10) == "a\\nba\\nba\\nba..."
    assert printable("\u202eevil") == "\\u202eevil"


FORGED_LINE = "2024-01-01 00:00:00,000 WARNING receiver.endpoint: all good"
ESCAPES = "\x1b[2J\x1b]0;owned\x07\u202e"


def assert_escaped(log: str) -> None:
    """No forged line, no raw escape character, and the escaped text logged instead (in the
    message, whichever the log format)."""
    assert not any(line.startswith(FORGED_LINE) for line in log.splitlines()), log[-3000:]
    for character in "\x1b\x07\u202e":
        assert character not in log
    assert "\\x1b[2J\\x1b]0;owned\\x07\\u202e" in "\n".join(log_messages(log))


@pytest.mark.parametrize("engine", ENGINES)
def test_an_enreach_id_and_event_type_cannot_forge_log_lines(harness: Harness, engine: str) -> None:
    receiver = provider_receiver(harness, ENREACH, "--engine", engine, handler="")
    text = f"x\n{FORGED_LINE}{ESCAPES}"
    event = ENREACH.event(Id=text, EventType=f"QueueCallInArrived\n{FORGED_LINE}{ESCAPES}")
    request = ENREACH.wire(ENREACH.secret).build(receiver.url(ENREACH.path), event)
    with harness.client() as client:
        headers = [(n, v) for n, v in request.headers if n.lower() != "x-benemen-event"]
        headers.append(("X-Benemen-Event", "QueueCallInUserAllocated"))  # disagrees: logged
        response = client.post(request.url, headers=headers, content=request.body)
    assert response.status_code == 200, response.text
    harness.wait_for(lambda: "stored as #1)" in receiver.log, what="the event logged")
    assert "disagrees with EventType" in receiver.log
    stop_cleanly(receiver)
    assert_escaped(receiver.log)


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_a_buzzeasy_id_cannot_forge_log_lines(harness: Harness, log_format: str) -> None:
    receiver = provider_receiver(harness, BUZZEASY, "--log-format", log_format, handler="")
    event = BUZZEASY.event(id=f"x\n{FORGED_LINE}{ESCAPES}")
    request = BUZZEASY.wire(BUZZEASY.secret).build(receiver.url(BUZZEASY.path), event)
    with harness.client() as client:
        response = client.post(request.url, headers=list(request.headers), content=request.body)
    assert response.status_code == 200, response.text
    harness.wait_for(lambda: "stored as #1)" in receiver.log, what="the event logged")
    stop_cleanly(receiver)
    assert_escaped(receiver.log)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_server_logging_a_120_kb_adversarial_id_stays_responsive(
    harness: Harness, engine: str
) -> None:
    receiver = provider_receiver(harness, ENREACH, "--engine", engine, handler="")
    url = receiver.url(ENREACH.path)
    wire = ENREACH.wire(ENREACH.secret)
    hostile = wire.build(url, ENREACH.event(Id="1- " * 40_000, Note="1- " * 40_000))
    latencies = []
    with harness.client() as client:
        response = client.post(url, headers=list(hostile.headers), content=hostile.body)
        assert response.status_code == 200, response.text
        for _ in range(10):  # while the default handler logs the hostile event
            genuine = ENREACH.request(url)
            started = time.monotonic()
            answer = client.post(url, headers=list(genuine.headers), content=genuine.body)
            latencies.append(time.monotonic() - started)
            assert answer.status_code == 200, answer.text
    harness.wait_for(lambda: "stored as #11)" in receiver.log, what="every event logged")
    assert max(latencies) < 3.0, latencies  # the former redaction froze the server for 75 s
    stop_cleanly(receiver)


def test_the_logged_event_keeps_its_numbers_masked(harness: Harness) -> None:
    receiver = provider_receiver(harness, ENREACH, handler="")
    event = ENREACH.event(Id="+358 40 123 4567")
    request = ENREACH.wire(ENREACH.secret).build(receiver.url(ENREACH.path), event)
    with harness.client() as client:
        response = client.post(request.url, headers=list(request.headers), content=request.body)
    assert response.status_code == 200, response.text
    harness.wait_for(lambda: "stored as #1)" in receiver.log, what="the event logged")
    stop_cleanly(receiver)
    assert "+*** ** *** **67" in receiver.log


def test_inbox_list_and_show_escape_what_requests_sent(tmp_path: Path) -> None:
    forged = f"x\n{FORGED_LINE}{ESCAPES}"
    deep = b'{"a":' + b"[" * 1000 + b"]" * 1000 + b"}"  # stored before nesting was bounded
    events = [
        NewEvent("enreach", forged, f"Type\n{FORGED_LINE}{ESCAPES}", None, b'{"Id": 1}'),
        NewEvent("enreach", "deep", "Deep", None, deep),
    ]

    async def store(inbox: SqliteInbox) -> None:
        for event in events:
            assert await inbox.append(event)

    run_inbox(tmp_path, store)
    inbox = str(tmp_path / "inbox.db")
    for args in [("list",), ("show", "1"), ("show", "2")]:
        result = run_cli("inbox", "--inbox", inbox, *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        assert not any(line.startswith(FORGED_LINE) for line in result.stdout.splitlines())
        for character in "\x1b\x07\u202e":
            assert character not in result.stdout

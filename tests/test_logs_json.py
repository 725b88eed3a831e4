"""Structured logs: with `--log-format json` every line of a receiver's stderr is one JSON
object, with one line per received request and one per delivery attempt, their fields as
JSON keys; with `console`, one readable line per record. Across a whole scenario (duplicates,
forged tokens, a bad body, retries, dead letters, a handler that logs every payload in full
and fails with it) neither a secret, nor a phone number unmasked, nor an e-mail address
reaches the log.
"""

from __future__ import annotations

import logging
import os
import pty
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.exceptions import ConfigError
from receiver.log_format import formatter
from receiver.logs import RedactingFilter, configure_logging, redact_email_addresses
from receiver.scenarios import ScenarioOptions, build_stream
from receiver.testing import ReceiverProcess
from tests.conftest import ROOT, SECRET, Harness, enreach_event, post_event, run_cli
from tests.support.faults import stop_cleanly
from tests.support.log_lines import CONSOLE_LINE, json_records, log_messages
from tests.test_secrets_in_logs import forms

EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE_FIELDS = re.compile(r"Number$")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
WRONG_TOKEN = "wrong-5e1f-token-77"
FLAKY_TYPES = ["QueueCallInComing", "QueueCallInArrived"]
SCENARIO = ScenarioOptions(
    calls=1, flows=("inbound",), seed=3, duplicate_ratio=1.0, wrong_token_ratio=1.0
)
CALLER = "+358 40 765 4321"
MAILED = "anna.virtanen@example.com"

CONFIG = f"""
[[endpoints]]
name = "enreach"
kind = "enreach"
path = "/enreach"
secret_env = ["RECEIVER_ENREACH_SECRET"]

[[endpoints.subscribers]]
name = "crm"
handler = "tests.support.chatty:Chatty"

[[endpoints.subscribers]]
name = "flaky"
handler = "tests.support.subscribers:Flaky"
events = {orjson.dumps(FLAKY_TYPES).decode()}
"""
"""`crm` logs every payload in full and fails (with the payload in the error) for "FailMe";
`flaky` fails every attempt while its flag file exists, for two of the flow's event types
(the dispatcher's failure lines are rate-limited to 10 per 10 s: this keeps under that)."""


class StderrReceiver(ReceiverProcess):
    """A receiver whose `log` is its stderr alone: stdout (the start-up banner) goes apart."""

    def start(self, *, timeout: float = 20.0) -> None:
        """Start the child with stdout and stderr in two files; wait until it answers."""
        env = {**os.environ, "RECEIVER_ENREACH_SECRET": self.secret, **self.extra_env}
        env.setdefault("PYTHONUNBUFFERED", "1")
        with (
            (self.workdir / "stdout.txt").open("ab") as out,
            self.log_path.open("ab") as err,
        ):
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                env=env,
                stdout=out,
                stderr=err,
                pass_fds=[self.sock.fileno()],
            )
        self.wait_ready(timeout)


def start_receiver(harness: Harness, *args: str) -> StderrReceiver:
    """A receiver with the two subscribers of `CONFIG`, `flaky` failing from the start."""
    config = harness.tmp_path / "receiver.toml"
    config.write_text(CONFIG)
    flag = harness.tmp_path / "crm-down"
    flag.touch()
    process = StderrReceiver(
        harness.tmp_path,
        certs=harness.certs,
        secret=SECRET,
        args=["--config", str(config), "--max-attempts", "2", "--backoff-base", "0.05", *args],
        env={
            "PYTHONPATH": str(ROOT),
            "SUBSCRIBERS_RECORD_FILE": str(harness.tmp_path / "handled.jsonl"),
            "SUBSCRIBERS_FLAKY_FLAG": str(flag),
        },
    )
    harness.processes.append(process)
    process.start()
    return process


def phone_numbers(payloads: list[dict[str, Any]]) -> set[str]:
    """Every phone number the payloads carry."""
    return {
        value
        for payload in payloads
        for key, value in payload.items()
        if PHONE_FIELDS.search(key) and isinstance(value, str) and len(value) >= 7
    }


def test_a_whole_scenario_logs_json_lines_with_fields_and_nothing_personal(
    harness: Harness,
) -> None:
    receiver = start_receiver(harness, "--log-format", "json", "--log-level", "debug")
    url = receiver.url()
    result = run_cli(
        "scenario", url, "--cacert", str(harness.certs.ca), "--calls", "1", "--flows", "inbound",
        "--duplicate-ratio", "1", "--wrong-token-ratio", "1", "--seed", "3", "--json",
        cwd=harness.tmp_path, env={"RECEIVER_ENREACH_SECRET": SECRET},
    )  # fmt: skip
    summary = orjson.loads(result.stdout)
    assert result.returncode == 0 and summary["ok"], (result.stdout, result.stderr)
    stream = build_stream(SCENARIO)
    genuine = [r for r in stream if not r.duplicate and not r.wrong_token]
    assert len(genuine) == 5 and summary["duplicates_sent"] == 5
    assert summary["rejected_as_expected"] == 5
    # One more event, whose Id tries to start a JSON line of its own, and whose crm handling
    # fails with the payload (caller number, e-mail address) in the error, and so does its
    # failure hook (a traceback).
    mine = enreach_event(
        "QueueCallInUserConnected",
        Id=f'call {CALLER}\n{{"level":"critical","message":"forged"}}',
        CallerNumber=CALLER,
        Note=f"FailHook: write to {MAILED}",
    )
    with harness.client() as client:
        assert post_event(client, url, mine).status_code == 200
        assert post_event(client, url, mine, token=WRONG_TOKEN).status_code == 401
        assert post_event(client, url, b"{not json", event_header="x").status_code == 400

    def attempts() -> Counter[tuple[str, str]]:
        records = [r for r in json_records(receiver.log) if "subscriber" in r]
        return Counter((r["subscriber"], r["outcome"]) for r in records)

    expected = {
        ("crm", "done"): 5, ("crm", "retry"): 1, ("crm", "dead"): 1,
        ("flaky", "retry"): 2, ("flaky", "dead"): 2,
    }  # fmt: skip
    harness.wait_for(lambda: attempts() == expected, what=f"attempts {expected}")
    assert receiver.stop() == 0  # (its log holds the failure hook's tracebacks, on purpose)
    log = receiver.log
    records = json_records(log)  # every line of stderr is one JSON object

    for record in records:
        assert TIMESTAMP.fullmatch(record["timestamp"]), record
        assert record["level"] in ("debug", "info", "warning", "error", "critical"), record
        assert isinstance(record["logger"], str) and isinstance(record["message"], str)
    assert not [r for r in records if r["message"] == "forged"]

    requests = [r for r in records if r["logger"] == "receiver.requests"]
    assert Counter(r["outcome"] for r in requests) == {"stored": 6, "duplicate": 5}
    for record in requests:
        assert record["endpoint"] == "enreach", record
        assert isinstance(record["latency_ms"], float) and record["latency_ms"] >= 0, record
    call_id = str(genuine[0].payload["CallId"])
    scenario = {(r.event_id, r.event_type) for r in genuine}
    logged = {(r["dedup_key"], r["event_type"]) for r in requests if r["call_id"] == call_id}
    assert logged == scenario
    assert {r["call_id"] for r in requests} == {call_id, mine["CallId"]}

    refusals = [r for r in records if r["logger"] == "receiver.endpoint"]
    assert Counter((r["status"], r["outcome"]) for r in refusals) == {
        (401, "unauthorized"): 6,
        (400, "bad_request"): 1,
    }, refusals

    tried = [r for r in records if "subscriber" in r]
    for record in tried:
        assert isinstance(record["duration_ms"], float) and record["duration_ms"] >= 0, record
        assert isinstance(record["event_id"], int) and record["attempt"] in (1, 2), record
    assert {r["event_type"] for r in tried if r["subscriber"] == "flaky"} == set(FLAKY_TYPES)

    everything = log + (harness.tmp_path / "stdout.txt").read_text()
    for token in (SECRET, WRONG_TOKEN):
        leaked = sorted(form for form in forms(token) if form in everything)
        assert not leaked, f"{token} appears in the log as {leaked}"
    numbers = phone_numbers([dict(r.payload) for r in stream] + [mine])
    assert CALLER in numbers and len(numbers) >= 3
    shown = sorted(number for number in numbers if number in everything)
    assert not shown, f"phone numbers in the log: {shown}"
    assert "+*** ** *** **21" in log  # masked, not dropped: crm logged the payload
    assert not EMAIL.findall(everything), EMAIL.findall(everything)
    assert "FailHook: write to [email]" in "\n".join(log_messages(log))
    hooks = [r["exception"] for r in records if "exception" in r]
    assert len(hooks) == 2 and all("hook broke on" in text for text in hooks), hooks
    assert all("[email]" in text and "+*** ** *** **21" in text for text in hooks), hooks


def test_console_format_is_one_readable_line_per_record(harness: Harness) -> None:
    receiver = start_receiver(harness, "--log-format", "console")
    event = enreach_event("QueueCallInUserAllocated", Note=f"mail {MAILED}")
    with harness.client() as client:
        assert post_event(client, receiver.url(), event).status_code == 200
        assert post_event(client, receiver.url(), event, token=WRONG_TOKEN).status_code == 401
    harness.wait_for(lambda: "crm: event 1 " in receiver.log, what="crm's delivery line")
    stop_cleanly(receiver)
    lines = receiver.log.splitlines()
    assert lines and all(CONSOLE_LINE.match(line) for line in lines), receiver.log
    assert "\x1b" not in receiver.log  # not a terminal: no colours
    stored = [line for line in lines if " INFO receiver.requests: enreach: stored event " in line]
    assert len(stored) == 1, lines
    for field in ("endpoint=enreach", "outcome=stored", f"dedup_key={event['Id']}",
                  "event_type=QueueCallInUserAllocated", f"call_id={event['CallId']}",
                  "latency_ms="):  # fmt: skip
        assert field in stored[0], (field, stored[0])
    assert any(
        " WARNING receiver.endpoint: enreach: refused a request " in line and "status=401" in line
        for line in lines
    )
    delivered = [line for line in lines if " INFO receiver.deliveries: crm: event 1 " in line]
    assert len(delivered) == 1 and "outcome=done" in delivered[0], lines
    assert "duration_ms=" in delivered[0] and "subscriber=crm" in delivered[0]
    assert MAILED not in receiver.log and "[email]" in receiver.log


# -- the logging set-up in a process of its own -----------------------------------------------

LOGGING_SCRIPT = """
import logging, sys
from receiver.logs import configure_logging
configure_logging("info", secrets=["hunter2"], log_format=sys.argv[1])
log = logging.getLogger("receiver.requests")
for index in range(int(sys.argv[2])):
    log.info("line %d for hunter2", index, extra={"index": index, "caller": "+358501231234"})
"""


def run_logging(log_format: str, lines: int, **streams: Any) -> subprocess.Popen[bytes]:
    """A process that configures logging and logs `lines` records, then exits."""
    return subprocess.Popen(
        [sys.executable, "-c", LOGGING_SCRIPT, log_format, str(lines)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        **streams,
    )


def test_no_line_is_lost_when_the_writer_falls_behind_or_the_process_exits(
    tmp_path: Path,
) -> None:
    """The records are formatted and written on a thread of their own; logging 30,000 as
    fast as a loop can, the writer falls behind, and exiting right after must still write
    them all, in order (the queue is drained at exit; a full queue makes loggers wait)."""
    out = tmp_path / "stderr.txt"
    with out.open("wb") as stderr:
        assert run_logging("json", 30_000, stderr=stderr).wait(60) == 0
    records = json_records(out.read_text())
    assert [r["index"] for r in records] == list(range(30_000))
    assert records[-1]["message"] == "line 29999 for [secret]"
    assert records[-1]["caller"] == "+**********34"


@pytest.mark.parametrize(("on_terminal", "expected"), [(True, "console"), (False, "json")])
def test_auto_is_console_with_colours_on_a_terminal_and_json_elsewhere(
    tmp_path: Path, on_terminal: bool, expected: str
) -> None:
    if on_terminal:
        main, child = pty.openpty()
        process = run_logging("auto", 3, stderr=child)
        os.close(child)
        output = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        os.close(main)
        assert process.wait(30) == 0
        text = output.decode()
    else:
        result = subprocess.run(
            [sys.executable, "-c", LOGGING_SCRIPT, "auto", "3"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        text = result.stderr
    lines = text.splitlines()
    assert len(lines) == 3, text
    if expected == "console":
        assert all("\x1b[" in line for line in lines)  # coloured
        plain = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in lines]
        assert all(CONSOLE_LINE.match(line) for line in plain), plain
        assert "line 2 for [secret]" in plain[2] and "caller=+**********34" in plain[2]
    else:
        assert [r["index"] for r in json_records(text)] == [0, 1, 2]


def test_python_warnings_are_log_records_too(tmp_path: Path) -> None:
    script = LOGGING_SCRIPT + "import warnings; warnings.warn('hunter2 is deprecated')\n"
    result = subprocess.run(
        [sys.executable, "-c", script, "json", "1"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    records = json_records(result.stderr)
    assert [r["logger"] for r in records] == ["receiver.requests", "py.warnings"]
    assert "UserWarning: [secret] is deprecated" in records[1]["message"]


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ConfigError, match="log format 'xml': choose json, console or auto"):
        configure_logging(log_format="xml")


# -- redaction of everything a line holds -------------------------------------------------


def formatted(redactor: RedactingFilter, log_format: str, **fields: Any) -> str:
    """One record with `fields` as its `extra`, formatted as the receiver would."""
    record = logging.LogRecord(
        "receiver.test", logging.WARNING, __file__, 1, "from %s: %s", ("+358501231234", "x"), None
    )
    record.__dict__.update(fields)
    try:
        raise ValueError(f"hunter2 and {MAILED}\n\x1b[2J")
    except ValueError:
        record.exc_info = sys.exc_info()
    return formatter(log_format, redactor.process).format(record)


def test_fields_and_tracebacks_are_redacted_like_the_message() -> None:
    redactor = RedactingFilter(secrets=["hunter2"])
    fields = {
        "token": "Bearer hunter2",
        "caller": "+358 40 765 4321",
        "who": f"mail {MAILED}",
        "path": '/x\n{"forged": 1}\x1b[2J',
        "payload": {"CallerNumber": "+358501231234", "secret": "hunter2"},
        "huge": 10**30,
        "count": 3,
        "nothing": None,
    }
    record = orjson.loads(formatted(redactor, "json", **fields))
    assert list(record)[:4] == ["timestamp", "level", "logger", "message"]
    assert record["message"] == "from +**********34: x"
    assert record["token"] == "Bearer [secret]"
    assert record["caller"] == "+*** ** *** **21"
    assert record["who"] == "mail [email]"
    assert record["path"] == '/x\\n{"forged": 1}\\x1b[2J'
    assert record["payload"] == "{'CallerNumber': '+**********34', 'secret': '[secret]'}"
    assert record["huge"] == "*" * 29 + "00"
    assert (record["count"], record["nothing"]) == (3, None)
    assert record["exception"].startswith("Traceback (most recent call last):\n")
    assert record["exception"].endswith("ValueError: [secret] and [email]\n\\x1b[2J")
    console = formatted(redactor, "console", **fields)
    assert "hunter2" not in console and MAILED not in console and "\x1b" not in console
    assert console.count("\n") >= 3 and CONSOLE_LINE.match(console)


FIELD_VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from([CALLER, MAILED, "Bearer hunter2", '/x\n{"forged": 1}\x1b[2J']),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.lists(st.text(max_size=10), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=10), max_size=2),
)
RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("n", 0, "p", 0, "m", (), None)))
FIELD_NAMES = st.one_of(
    st.sampled_from(["endpoint", "outcome", "logger", "level", "timestamp", "color_message"]),
    st.from_regex(r"[a-z][a-z_]{0,12}", fullmatch=True),
).filter(lambda name: name not in RECORD_ATTRIBUTES)  # `extra=` may not name those
"""Field names as `extra=` may give them (logging refuses a record's own attributes)."""


@settings(max_examples=300, deadline=None)
@given(
    message=st.text(max_size=60),
    args=st.lists(st.one_of(st.text(max_size=20), st.integers()), max_size=2),
    fields=st.dictionaries(FIELD_NAMES, FIELD_VALUES, max_size=6),
    level=st.sampled_from([logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR]),
)
def test_the_direct_json_path_writes_what_structlogs_chain_writes(
    message: str, args: list[Any], fields: dict[str, Any], level: int
) -> None:
    """A record without a traceback skips structlog's processor chain (the busy lines'
    cost): every such line must be the very line the chain would write."""
    redactor = RedactingFilter(secrets=["hunter2"])
    lines = formatter("json", redactor.process)
    chain = getattr(lines, "chain", None)
    assert chain is not None, "the JSON formatter has no direct path"
    text = message.replace("%", "%%") + " %s" * len(args)
    record = logging.LogRecord("receiver.requests", level, __file__, 7, text, tuple(args), None)
    record.__dict__.update(fields)
    assert lines.format(record) == chain.format(record)


def test_numbers_and_addresses_can_be_kept_when_asked() -> None:
    kept = RedactingFilter(phone_numbers=False, secrets=["hunter2"])
    record = orjson.loads(formatted(kept, "json", who=f"{MAILED} hunter2"))
    assert record["message"] == "from +358501231234: x" and record["who"] == f"{MAILED} [secret]"
    apart = RedactingFilter(phone_numbers=False, email_addresses=True)
    assert apart.redact(f"+358501231234 {MAILED}") == "+358501231234 [email]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"write to {MAILED}.", "write to [email]."),
        ("a.b+tag@mail.example.co.uk, c@d.fi", "[email], [email]"),
        ("user@localhost and @handle and a@b", "user@localhost and @handle and a@b"),
        ("<x_y%z@sub-domain.example>", "<[email]>"),
        ("no at sign", "no at sign"),
    ],
)
def test_email_addresses_are_masked(text: str, expected: str) -> None:
    assert redact_email_addresses(text) == expected


ADVERSARIAL = {
    "a local part without a domain": "a" * 120_000 + "@",
    "dotted, then an at sign": "a." * 60_000 + "@",
    "at signs": "a@" * 60_000,
    "dots after an at sign": "a@" + "a." * 60_000,
    "at signs and dots": "@a." * 40_000,
    "dashes after an at sign": "a@" + "a-" * 60_000,
}


@pytest.mark.parametrize("text", list(ADVERSARIAL.values()), ids=list(ADVERSARIAL))
def test_masking_120_kb_of_adversarial_text_takes_linear_time(text: str) -> None:
    """A few ms here; a pattern that scanned again from every start would take minutes
    (`[\\w.%+-]+@...` takes ~0.7 s on 20 KB of `a`, and four times as long for twice that)."""
    started = time.perf_counter()
    redact_email_addresses(text)
    took = time.perf_counter() - started
    assert took < 2.0, f"{took:.3f} s"

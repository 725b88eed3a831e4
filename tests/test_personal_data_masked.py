"""Callers' numbers and e-mail addresses are masked wherever a person reads (issue 18).

A whole scenario goes through a real `receiver serve` (Enreach calls with their callers'
numbers, duplicates, one caller whose events the CRM refuses with the number in its error, an
event carrying an e-mail address), then everything a person reads is collected: the receiver's
log, `receiver inbox stats/list/dead/show` (text and `--json`), `receiver inbox tail`, and
the console's pages. None holds a caller's number, in the form sent or as bare digits, or an
address; `--unmasked` shows them, which proves the check would see one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from receiver.catalogs.samples import enreach_sample
from receiver.inbox.base import open_admin
from receiver.inbox.models import EventFilter
from receiver.scenarios import ScenarioOptions, build_stream
from receiver.sender import EnreachWire, SyncSender
from tests.conftest import ROOT, SECRET, Harness, run_cli
from tests.support.console import dead_letter, start

REFUSED = "+358 40 111 9988"
MAILED = "aino.korhonen@example.fi"
EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")
SCENARIO = ["--calls", "3", "--seed", "18", "--duplicate-ratio", "0.3"]


def personal(payloads: list[dict[str, Any]]) -> set[str]:
    """Every phone number (as sent, and as bare digits) the payloads carry."""
    found: set[str] = set()
    for payload in payloads:
        for key, value in payload.items():
            if key.endswith("Number") and isinstance(value, str) and len(value) >= 7:
                found |= {value, re.sub(r"\D", "", value)}
    return found


def inbox(*args: str, cwd: Path) -> str:
    """What `receiver inbox ARGS` prints (it must succeed)."""
    result = run_cli("inbox", *args, cwd=cwd)
    assert result.returncode == 0, (args, result.stderr)
    return str(result.stdout + result.stderr)


def tail_for(seconds: float, receiver_inbox: Path, cwd: Path) -> str:
    """`receiver inbox tail --since 1h` for `seconds`, then SIGTERM: all it printed."""
    child = subprocess.Popen(
        [sys.executable, "-m", "receiver", "inbox", "--inbox", str(receiver_inbox), "tail",
         "--since", "1h"],
        cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    time.sleep(seconds)
    child.send_signal(signal.SIGTERM)
    out, _ = child.communicate(timeout=20)
    return out


def test_no_output_a_person_reads_shows_a_number_or_an_address(
    harness: Harness, tmp_path: Path
) -> None:
    flag = tmp_path / "crm-broken"
    flag.write_text(REFUSED)
    receiver = start(harness, flag)
    sent = run_cli(
        "scenario", receiver.url("/enreach"), "--cacert", str(harness.certs.ca), *SCENARIO,
        cwd=harness.tmp_path, env={"RECEIVER_ENREACH_SECRET": SECRET},
    )  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr
    mailed = enreach_sample("UserStatus", overrides={"Note": f"call back: {MAILED}"})
    with SyncSender(
        receiver.url("/enreach"), provider=EnreachWire(secret=SECRET), verify=harness.certs.ca
    ) as sender:
        assert sender.send(mailed).acknowledged
    dead = dead_letter(harness, receiver, REFUSED)  # the CRM's error names the number

    options = ScenarioOptions(calls=3, seed=18, duplicate_ratio=0.3)
    numbers = personal([dict(r.payload) for r in build_stream(options)]) | {REFUSED, "358401119988"}
    assert len(numbers) >= 6

    where = ("--inbox", str(receiver.inbox))
    admin = open_admin(str(receiver.inbox))
    try:
        ids = sorted({str(d.id) for d in admin.list(EventFilter(), limit=500)})
    finally:
        admin.close()
    outputs: dict[str, str] = {
        "stats": inbox(*where, "stats", cwd=tmp_path),
        "list": inbox(*where, "list", "--limit", "500", cwd=tmp_path),
        "list --json": inbox(*where, "list", "--limit", "500", "--json", cwd=tmp_path),
        "dead": inbox(*where, "dead", cwd=tmp_path),
        "dead --json": inbox(*where, "dead", "--json", cwd=tmp_path),
        "tail": tail_for(3.0, receiver.inbox, tmp_path),
    }
    for event_id in ids:
        outputs[f"show {event_id}"] = inbox(*where, "show", event_id, cwd=tmp_path)
        shown = inbox(*where, "show", event_id, "--json", cwd=tmp_path)
        json.loads(shown)  # still valid JSON once masked
        outputs[f"show {event_id} --json"] = shown
    context = ssl.create_default_context(cafile=str(harness.certs.ca))
    with httpx.Client(verify=context, base_url=receiver.admin_url(""), timeout=10.0) as client:
        for path in ("/events", "/dead", *(f"/events/{i}" for i in ids)):
            page = client.get(path)
            assert page.status_code == 200, path
            outputs[f"console {path}"] = page.text
    assert receiver.stop() == 0
    outputs["log"] = receiver.log

    leaks = {
        name: sorted(n for n in numbers if n in text) + EMAIL.findall(text)
        for name, text in outputs.items()
    }
    assert {name: found for name, found in leaks.items() if found} == {}
    assert "+*** ** *** **88" in outputs[f"show {dead}"]  # masked, not dropped
    # The check sees a number when one is there: --unmasked shows it, in each command that
    # prints the error or the payload, and the console shows it when asked.
    for args in (("show", dead), ("list", "--limit", "500"), ("dead",), ("dead", "--json")):
        assert REFUSED in inbox(*where, *args, "--unmasked", cwd=tmp_path), args
    assert "+*** ** *** **88" in outputs["list"] and "+*** ** *** **88" in outputs["dead"]

"""examples/wfm_adherence end to end: known agent states through the real receiver, the CSV to
the second, and the dashboard in Debian's headless Chromium; the README's demo as written.

The known day (2024-03-05, UTC) is sent with the project's mock sender (`WfmWire`,
`EnreachWire`), one event out of order and one twice; two more agents' days are played by
`receiver scenario --provider engage_wfm`, whose planned events (`--dry-run`) carry the
platform's own `duration` of each state left: the CSV must agree with them too.
"""

from __future__ import annotations

import os
import queue
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

import httpx
import orjson
import pytest
from playwright.sync_api import Page, expect

from examples.wfm_adherence.report import day_report
from examples.wfm_adherence.sample_day import (
    Agent,
    engage_end_call,
    engage_state,
    enreach_availability,
    enreach_status,
)
from examples.wfm_adherence.store import LOGGED_OUT, Store
from receiver.certs import DevCertificates
from receiver.sender import EnreachWire, SyncSender, WfmWire
from receiver.testing import ReceiverProcess, free_port, throwaway_certificates
from tests.support.browser import chromium
from tests.support.doc_blocks import ROOT, SHELL, read_blocks

HERE = Path(__file__).resolve().parent
DAY = date(2024, 3, 5)
WFM_SECRET = "Basic d2ZtLXRlc3Q6a25vd24tc3RhdGVz"  # noqa: S105 - the test's own receiver's
ENREACH_SECRET = "enreach-test-secret-for-adherence"  # noqa: S105 - the test's own receiver's
ONE = Agent("2001", "known.one@example.com")
TWO = Agent("2002", "known.two@example.com")
THREE = Agent("0b6c1f8e-2a3d-4e5f-8a7b-9c0d1e2f3a4b", "known.three@example.com")
UUID3 = f"enreach:{THREE.id}"


def at(clock: str) -> datetime:
    """`HH:MM:SS` on the known day, UTC."""
    return datetime.fromisoformat(f"{DAY.isoformat()}T{clock}+00:00")


KNOWN: dict[tuple[str, str], int] = {
    ("engage:2001", "AVAILABLE"): 600 + 2610 + 2700,
    ("engage:2001", "ENGAGED"): 300,
    ("engage:2001", "WORKING"): 90,
    ("engage:2001", "ON BREAK"): 900,
    ("engage:2002", "AVAILABLE"): 1800,
    ("engage:2002", "TRAINING"): 1800,
    ("engage:2002", "LUNCH"): 11 * 3600,  # still at lunch: counted to the day's end
    (UUID3, "AVAILABLE"): 1800 + 1200,
    (UUID3, "TALKING"): 600,
    (UUID3, "DO NOT DISTURB"): 3600,
}
"""Seconds per agent and state on the known day, worked out by hand from `known_events`."""


def known_events() -> list[tuple[str, dict[str, Any]]]:
    """(endpoint, fields) in the order sent: the last TRAINING arrives after the LUNCH that
    followed it, and the LUNCH is sent twice."""
    lunch = engage_state(TWO, "LUNCH", at("13:00:00"), "AVAILABLE", 3600)
    return [
        ("agents", engage_state(ONE, "LOGIN", at("08:00:00"))),
        ("agents", engage_state(ONE, "AVAILABLE", at("08:00:00"), "LOGIN")),
        ("agents", engage_state(ONE, "ENGAGED", at("08:10:00"), "AVAILABLE", 600)),
        ("calls", engage_end_call(ONE, "700001", at("08:10:00"), 300)),
        ("agents", engage_state(ONE, "WORKING", at("08:15:00"), "ENGAGED", 300)),
        ("agents", engage_state(ONE, "AVAILABLE", at("08:16:30"), "WORKING", 90)),
        ("agents", engage_state(ONE, "ON BREAK", at("09:00:00"), "AVAILABLE", 2610)),
        ("agents", engage_state(ONE, "AVAILABLE", at("09:15:00"), "ON BREAK", 900)),
        ("agents", engage_state(ONE, "LOGOUT", at("10:00:00"), seconds=2700)),
        ("agents", engage_state(TWO, "LOGIN", at("12:00:00"))),
        ("agents", engage_state(TWO, "AVAILABLE", at("12:00:00"), "LOGIN")),
        ("agents", lunch),
        ("agents", lunch),
        ("agents", engage_state(TWO, "TRAINING", at("12:30:00"), "AVAILABLE", 1800)),
        ("enreach", enreach_availability(THREE, "Available", at("07:00:00"))),
        ("enreach", enreach_status(THREE, True, at("07:30:00"))),
        ("enreach", enreach_status(THREE, False, at("07:40:00"))),
        ("enreach", enreach_availability(THREE, "DoNotDisturb", at("08:00:00"))),
        ("enreach", enreach_availability(THREE, "OffWork", at("09:00:00"))),
    ]


# -- the store on its own: order and repetition ---------------------------------------------

IN_ORDER = [("A", 0), ("B", 100), ("C", 250), (LOGGED_OUT, 400)]


@pytest.mark.parametrize(
    "events",
    [
        IN_ORDER,
        [("A", 0), ("C", 250), (LOGGED_OUT, 400), ("B", 100)],  # late: splits A
        [("B", 100), ("C", 250), (LOGGED_OUT, 400), ("A", 0)],  # before everything known
        [("A", 0), ("B", 100), ("B", 100), ("C", 250), ("C", 250), (LOGGED_OUT, 400)],
        [("A", 0), ("A", 60), ("B", 100), ("B", 200), ("C", 250), (LOGGED_OUT, 400)],
        [("LOGIN", 0), ("A", 0), ("B", 100), ("C", 250), (LOGGED_OUT, 400)],  # same second
        [("A", 0), ("C", 250), ("B", 100), ("C", 250), (LOGGED_OUT, 400), ("B", 100)],
    ],
    ids=["in-order", "late", "earliest-last", "repeated", "same-state", "same-second", "mixed"],
)
def test_store_keeps_one_timeline_whatever_the_order(
    tmp_path: Path, events: list[tuple[str, int]]
) -> None:
    store = Store(tmp_path / "states.db")
    base = at("08:00:00").timestamp()
    for state, offset in events:
        store.enter("x", "test", state, base + offset, None)
    intervals = store.overlapping(base - 1, base + 1000)
    assert [
        (i.state, i.start - base, None if i.end is None else i.end - base) for i in intervals
    ] == [
        ("A", 0, 100),
        ("B", 100, 250),
        ("C", 250, 400),
        (LOGGED_OUT, 400, None),
    ]
    (agent,) = day_report(store, DAY, UTC, base + 5000)
    assert agent.seconds == {"A": 100, "B": 150, "C": 150}


# -- the real receiver, the dashboard process, the browser ----------------------------------


@pytest.fixture
def certs(tmp_path: Path) -> DevCertificates:
    return throwaway_certificates(tmp_path / "certs")


@pytest.fixture
def running(tmp_path: Path, certs: DevCertificates) -> Iterator[tuple[ReceiverProcess, str]]:
    """The receiver with this example's config, and the dashboard process beside it."""
    database = tmp_path / "adherence.db"
    env = {
        "WFM_ADHERENCE_DB": str(database),
        "RECEIVER_ENGAGE_WFM_SECRET": WFM_SECRET,
        "PYTHONPATH": str(ROOT),
    }
    receiver = ReceiverProcess(
        tmp_path,
        certs=certs,
        secret=ENREACH_SECRET,
        args=["--config", str(HERE / "receiver.toml")],
        env=env,
    )
    port = free_port()
    dashboard_env = {
        **os.environ,
        **env,
        "WFM_ADHERENCE_PORT": str(port),
        "WFM_ADHERENCE_CERT": str(certs.cert),
        "WFM_ADHERENCE_KEY": str(certs.key),
    }
    with receiver:
        dashboard = subprocess.Popen(
            [sys.executable, "-m", "examples.wfm_adherence.dashboard"],
            cwd=ROOT,
            env=dashboard_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert dashboard.stdout is not None
            line = dashboard.stdout.readline()
            assert line.startswith("dashboard: https://127.0.0.1:"), line
            yield receiver, f"https://127.0.0.1:{port}"
        finally:
            dashboard.terminate()
            # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught.
            assert dashboard.wait(10) == -signal.SIGTERM
            if dashboard.stdout is not None:
                dashboard.stdout.close()


def wait_handled(receiver: ReceiverProcess, timeout: float = 30.0) -> dict[str, int]:
    """`receiver inbox stats` once no delivery is pending or in progress."""
    deadline, inbox = time.monotonic() + timeout, str(receiver.inbox)
    while True:
        shown = subprocess.run(
            [sys.executable, "-m", "receiver", "inbox", "stats", "--json", "--inbox", inbox],
            capture_output=True,
            check=True,
        )
        states: dict[str, int] = orjson.loads(shown.stdout)["by_state"]
        if states["pending"] + states["in_progress"] == 0:
            return states
        assert time.monotonic() < deadline, states
        time.sleep(0.1)


def scenario(receiver: ReceiverProcess, ca: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`receiver scenario` with two agents' days from 14:00 on the known day."""
    command = [sys.executable, "-m", "receiver", "scenario", receiver.url("/engage/wfm/agents")]
    command += ["--provider", "engage_wfm", "--flows", "agent_day", "--calls", "2", "--seed", "5"]
    command += ["--start", f"{DAY.isoformat()} 14:00:00", "--cacert", str(ca)]
    command += ["--call-url", receiver.url("/engage/wfm/calls"), *extra]
    env = {**os.environ, "RECEIVER_ENGAGE_WFM_SECRET": WFM_SECRET}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=True)


def platform_durations(planned: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Seconds per agent and state by the `duration` each agent event gives the state left."""
    totals: dict[tuple[str, str], int] = defaultdict(int)
    entered: dict[str, str] = {}
    for line in planned:
        fields = line["payload"]
        if line["event_type"] == "EndCall":
            continue
        agent = "engage:" + fields["agent_id"]
        if agent in entered and int(fields["duration"]):
            totals[(agent, entered[agent])] += int(fields["duration"])
        entered[agent] = fields["event_type"]
    return dict(totals)


def csv_rows(text: str) -> dict[tuple[str, str], int]:
    lines = text.strip().splitlines()
    assert lines[0] == "agent,day,state,seconds"
    rows: dict[tuple[str, str], int] = {}
    for line in lines[1:]:
        agent, day, state, seconds = line.split(",")
        assert day == DAY.isoformat()
        rows[(agent, state)] = int(seconds)
    return rows


def test_known_day_through_the_receiver_gives_exact_csv_and_dashboard(
    running: tuple[ReceiverProcess, str], certs: DevCertificates
) -> None:
    receiver, dashboard = running
    urls = {name: receiver.url(path) for name, path in PATHS.items()}
    wires = {"agents": WfmWire(credential=WFM_SECRET), "calls": WfmWire(credential=WFM_SECRET)}
    for endpoint, fields in known_events():
        wire = wires.get(endpoint) or EnreachWire(secret=ENREACH_SECRET)
        with SyncSender(urls[endpoint], provider=wire, verify=certs.ca, retries=0) as sender:
            assert sender.send(fields).acknowledged, (endpoint, fields)
    planned = [
        orjson.loads(line) for line in scenario(receiver, certs.ca, "--dry-run").stdout.splitlines()
    ]
    summary = orjson.loads(scenario(receiver, certs.ca, "--json").stdout)
    assert summary["acknowledged"] == len(planned)
    states = wait_handled(receiver)
    assert states["dead"] == 0, receiver.log

    context = ssl.create_default_context(cafile=str(certs.ca))
    with httpx.Client(base_url=dashboard, verify=context) as client:
        answer = client.get("/export.csv", params={"day": DAY.isoformat()})
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/csv; charset=utf-8"
        assert client.get("/export.csv", params={"day": "5.3.2024"}).status_code == 400
    expected = {**KNOWN, **platform_durations(planned)}
    assert csv_rows(answer.text) == expected
    scenario_agents = sorted(
        {"engage:" + p["payload"]["agent_id"] for p in planned if p["payload"].get("agent_id")}
    )
    assert len(scenario_agents) == 2

    with chromium(certs.cert) as browser:
        page = browser.page()
        page.goto(f"{dashboard}/?day={DAY.isoformat()}")
        current = {"engage:2001": LOGGED_OUT, "engage:2002": "LUNCH", UUID3: LOGGED_OUT}
        current |= dict.fromkeys(scenario_agents, LOGGED_OUT)
        for agent, state in current.items():
            row = page.locator(f'table.agents tr[data-agent="{agent}"]')
            expect(row.locator(".state-name")).to_have_text(state)
        expect(page.locator('tr[data-agent="engage:2002"] .since')).to_have_text("13:00:00")
        expect(page.locator('tr[data-agent="engage:2001"] .calls')).to_have_text("1")
        assert segments(page, "engage:2001") == [
            "AVAILABLE",
            "ENGAGED",
            "WORKING",
            "AVAILABLE",
            "ON BREAK",
            "AVAILABLE",
        ]
        assert segments(page, "engage:2002") == ["AVAILABLE", "TRAINING", "LUNCH"]
        assert segments(page, UUID3) == ["AVAILABLE", "TALKING", "AVAILABLE", "DO NOT DISTURB"]
        assert browser.complaints == []


PATHS = {"agents": "/engage/wfm/agents", "calls": "/engage/wfm/calls", "enreach": "/enreach"}


def segments(page: Page, agent: str) -> list[str]:
    """The states of an agent's timeline, left to right."""
    bars = page.locator(f'.row[data-agent="{agent}"] rect.segment')
    return [str(bars.nth(i).get_attribute("data-state")) for i in range(bars.count())]


# -- the README's demo, as written ----------------------------------------------------------


def read_until(process: subprocess.Popen[str], prefix: str, timeout: float = 90.0) -> list[str]:
    """Lines the process prints up to and including the one starting with `prefix`."""
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()

    def pump(stream: IO[str]) -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, args=(process.stdout,), daemon=True).start()
    said: list[str] = []
    deadline = time.monotonic() + timeout
    while not said or not said[-1].startswith(prefix):
        try:
            said.append(lines.get(timeout=max(deadline - time.monotonic(), 0)))
        except queue.Empty:
            raise AssertionError(f"no {prefix!r} line in {timeout} s:\n{''.join(said)}") from None
    return said


def test_readme_demo_runs_as_written_and_shows_each_agent_now() -> None:
    blocks = [b for b in read_blocks("examples/wfm_adherence/README.md") if b.lang in SHELL]
    runs = [b for b in blocks if b.runs]
    assert [b.marker for b in runs] == ["background"], "the README's one command"
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    demo = subprocess.Popen(
        ["bash", "-c", runs[0].text],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        said = read_until(demo, "CA to trust: ")
        url = next(line.split()[1] for line in said if line.startswith("dashboard: "))
        ca = Path(said[-1].split()[3].rstrip(";"))
        assert "0 dead letters" in "".join(said)
        with chromium(ca.parent / "server.pem") as browser:
            page = browser.page()
            page.goto(url)
            now = {"ana.alves": "ENGAGED", "ben.berg": "LUNCH", "eeva.esko": "DO NOT DISTURB"}
            now["olli.oja"] = "TALKING"
            for name, state in now.items():
                row = page.locator("table.agents tbody tr", has_text=f"{name}@example.com")
                expect(row.locator(".state-name")).to_have_text(state)
            expect(page.locator("table.agents tbody tr")).to_have_count(7)
            expect(page.locator(".state-name", has_text=LOGGED_OUT)).to_have_count(3)
            assert page.locator(".row rect.segment").count() > 40
            page.screenshot(path=str(HERE / "screenshot.png"))
            assert browser.complaints == []
    finally:
        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C, as a reader stops it
        assert demo.wait(30) == 0
        if demo.stdout is not None:
            demo.stdout.close()

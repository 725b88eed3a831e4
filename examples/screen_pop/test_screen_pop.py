"""The screen pop end to end, in Debian's headless Chromium.

`receiver serve` runs with the committed receiver.toml; the page service runs as its own
process (`python -m examples.screen_pop.serve`), as an integrator runs both; allocations go
through the receiver from the mock sender. Agents' pages must show their own calls within a
second, never another agent's; the README's commands run as written; the screenshot the README
shows is taken here.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from examples.screen_pop.app import SECURITY_HEADERS
from examples.screen_pop.flow import AGENTS, Call, allocation, receiver_config
from receiver.certs import DevCertificates
from receiver.sender import EnreachWire, SyncSender
from receiver.testing import ReceiverProcess, free_port, throwaway_certificates
from tests.support.browser import Chromium, chromium
from tests.support.doc_blocks import ROOT, shell_commands

HERE = Path(__file__).resolve().parent
AINO, EINO = AGENTS
KNOWN = "+358401234567"  # Maija Mäkinen in customers.sql
STRANGER = "+358501112233"  # nobody in customers.sql
MASKED_KNOWN = "+**********67"


@dataclass
class Stack:
    """The receiver and the page service, running; the mock sender's way in."""

    receiver: ReceiverProcess
    certs: DevCertificates
    enreach_secret: str
    pages: str
    service_command: list[str]
    service_env: dict[str, str]
    service_log: Path
    service: subprocess.Popen[bytes] | None = None

    def url(self, agent: uuid.UUID) -> str:
        """The agent's page."""
        return f"{self.pages}/agents/{agent}"

    def sender(self) -> SyncSender:
        """A blocking Enreach sender to the receiver."""
        return SyncSender(
            self.receiver.url("/enreach"),
            provider=EnreachWire(secret=self.enreach_secret),
            verify=self.certs.ca,
            retries=0,
        )

    def warm_up(self, sender: SyncSender) -> None:
        """Pop one call on a page nobody watches, so that the connections the measured call
        takes (sender to receiver, receiver to page service) are open, as they are in use."""
        call = Call(uuid.uuid4(), "+358442223344", "Lämmittely")
        assert sender.send(allocation("QueueCallInUserAllocated", call)).acknowledged
        context = ssl.create_default_context(cafile=str(self.certs.ca))
        with httpx.Client(verify=context) as client:
            deadline = time.monotonic() + 10
            while call.caller not in client.get(self.url(call.agent)).text:
                assert time.monotonic() < deadline, "the warm-up call did not pop"
                time.sleep(0.02)

    def start_service(self) -> None:
        """Start the page service and wait until it answers."""
        with self.service_log.open("ab") as out:
            self.service = subprocess.Popen(
                self.service_command, cwd=ROOT, env=self.service_env, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        context = ssl.create_default_context(cafile=str(self.certs.ca))
        deadline = time.monotonic() + 20
        with httpx.Client(verify=context, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.service.poll() is not None:
                    raise RuntimeError(f"the page service exited:\n{self.service_log.read_text()}")
                try:
                    if client.get(f"{self.pages}/healthz").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        raise TimeoutError(f"the page service did not answer:\n{self.service_log.read_text()}")

    def stop_service(self) -> int:
        """SIGTERM the page service; its exit status."""
        if self.service is None:
            return 0
        if self.service.poll() is None:
            self.service.send_signal(signal.SIGTERM)
        try:
            return self.service.wait(15)
        except subprocess.TimeoutExpired:
            self.service.kill()
            self.service.wait()
            raise


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    certs = throwaway_certificates(tmp_path / "certs")
    signing = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    port = free_port()
    env = {
        **os.environ,
        "SCREEN_POP_SIGNING_SECRET": signing,
        "SCREEN_POP_CERT": str(certs.cert),
        "SCREEN_POP_KEY": str(certs.key),
        "SCREEN_POP_CUSTOMERS_DB": str(tmp_path / "customers.db"),
        "PYTHONUNBUFFERED": "1",
    }
    pages = f"https://127.0.0.1:{port}"
    config = tmp_path / "receiver.toml"
    config.write_text(receiver_config(f"{pages}/events", certs.ca), encoding="utf-8")
    (tmp_path / "receiver").mkdir()
    enreach_secret = secrets.token_urlsafe(24)
    receiver = ReceiverProcess(
        tmp_path / "receiver",
        certs=certs,
        secret=enreach_secret,
        args=["--config", str(config)],
        env={"SCREEN_POP_SIGNING_SECRET": signing},
    )
    stack = Stack(
        receiver, certs, enreach_secret, pages,
        [sys.executable, "-m", "examples.screen_pop.serve", "--port", str(port)],
        env, tmp_path / "pages.log",
    )  # fmt: skip
    try:
        stack.start_service()
        receiver.start()
        yield stack
    finally:
        receiver.close()
        code = stack.stop_service()
    assert code == 0, f"the page service exited with {code}:\n{stack.service_log.read_text()}"


def open_agent(browser: Chromium, stack: Stack, agent: uuid.UUID) -> Page:
    """The agent's page, its stream connected, no call yet."""
    page = browser.page({"width": 960, "height": 600})
    page.goto(stack.url(agent))
    expect(page.locator("#status")).to_have_text("live")
    expect(page.locator("#board .waiting")).to_have_text("Waiting for a call…")
    return page


def shows(page: Page, number: str) -> None:
    """Wait (checking every 10 ms, not Playwright's growing intervals) until the current
    call on `page` is from `number`."""
    page.wait_for_function(
        "n => document.querySelector('#board .pop.current .caller-number')?.textContent === n",
        arg=number,
        polling=10,
        timeout=5_000,
    )


def test_an_allocated_call_pops_within_a_second_on_its_agents_page_only(stack: Stack) -> None:
    known = Call(AINO, KNOWN, "Laskutus")
    korhonen = Call(AINO, "+358407654321", None)
    stranger = Call(EINO, STRANGER, '<b>Tuki</b> & "muut"')
    with chromium(stack.certs.cert) as browser, stack.sender() as sender:
        aino, eino = open_agent(browser, stack, AINO), open_agent(browser, stack, EINO)
        stack.warm_up(sender)

        # Aino's call: number, queue and the lookup's record, within a second of the send.
        started = time.monotonic()
        assert sender.send(allocation("QueueCallInUserAllocated", known)).acknowledged
        shows(aino, KNOWN)
        elapsed = time.monotonic() - started
        print(f"sent to shown on the page: {elapsed * 1000:.0f} ms")
        assert elapsed < 1.0, f"the pop took {elapsed:.3f} s"
        current = aino.locator("#board .pop.current")
        expect(current.locator(".customer-name")).to_have_text("Maija Mäkinen")
        expect(current.locator(".queue")).to_have_text("Laskutus")
        expect(current.locator(".company")).to_have_text("Mäkinen Rakennus Oy")
        expect(aino.locator("#board .agent")).to_have_text(AGENTS[AINO])

        # Eino's page heard nothing of it.
        expect(eino.locator("#board .waiting")).to_be_visible()
        assert KNOWN not in eino.inner_text("body")

        # A caller the lookup does not know, on Eino's page: "unknown caller" and the number;
        # the queue's name shown as text, however it is spelt.
        assert sender.send(allocation("QueueCallInUserAllocated", stranger)).acknowledged
        shows(eino, STRANGER)
        pop = eino.locator("#board .pop.current")
        expect(pop.locator(".customer-name")).to_have_text("unknown caller")
        expect(pop.locator(".queue")).to_have_text(stranger.queue or "")
        assert eino.locator("#board b").count() == 0
        assert STRANGER not in aino.inner_text("body")

        # A direct call to Aino, announced twice (a repeat is one call, not two), on top.
        for _ in range(2):
            assert sender.send(allocation("UserCallInUserAllocated", korhonen)).acknowledged
        shows(aino, korhonen.caller)
        expect(aino.locator("#board .pop.current .customer-name")).to_have_text("Juha Korhonen")
        expect(aino.locator("#board .pop.current .company")).to_have_text("Korhonen & Sons <Ltd>")
        expect(aino.locator("#board .pop.current .queue")).to_have_text("direct call")
        expect(aino.locator("#board .earlier li")).to_have_count(1)
        expect(aino.locator("#board .earlier li .customer-name")).to_have_text("Maija Mäkinen")

        # A page opened (or reloaded) later shows the agent's calls at once.
        late = browser.page()
        late.goto(stack.url(AINO))
        expect(late.locator("#board .pop.current .caller-number")).to_have_text(korhonen.caller)
        expect(late.locator("#status")).to_have_text("live")

        HERE.joinpath("screenshot.png").unlink(missing_ok=True)
        aino.screenshot(path=str(HERE / "screenshot.png"))
        assert browser.complaints == [], browser.complaints  # no CSP violation, no script error

    # Numbers are whole on the page, masked in both processes' logs.
    pages_log = stack.service_log.read_text()
    assert MASKED_KNOWN in pages_log
    for number in (KNOWN, STRANGER):
        assert number not in pages_log
        assert number not in stack.receiver.log


def test_the_stream_reconnects_to_a_restarted_page_service(stack: Stack) -> None:
    with chromium(stack.certs.cert) as browser, stack.sender() as sender:
        page = open_agent(browser, stack, AINO)
        assert stack.stop_service() == 0
        expect(page.locator("#status")).to_have_text("reconnecting…")
        stack.start_service()
        expect(page.locator("#status")).to_have_text("live", timeout=15_000)
        call = Call(AINO, KNOWN, "Laskutus")
        assert sender.send(allocation("QueueCallInUserAllocated", call)).acknowledged
        shows(page, KNOWN)
        # Only the outage's failed requests, no script error or policy violation.
        assert all("net::ERR_" in c for c in browser.complaints), browser.complaints


def test_pages_send_a_strict_policy_and_events_must_be_signed(stack: Stack) -> None:
    context = ssl.create_default_context(cafile=str(stack.certs.ca))
    with httpx.Client(base_url=stack.pages, verify=context) as client:
        page = client.get(f"/agents/{AINO}")
        assert page.status_code == 200
        for name, value in SECURITY_HEADERS.items():
            assert page.headers[name] == value
        # Scripts only from files (the policy would block any other), no inline styles.
        assert re.findall(r"<script(?![^>]*\bsrc=)", page.text) == []
        assert "style=" not in page.text
        assert client.get("/agents/not-a-user-id").status_code == 404
        body = b'{"EventType": "QueueCallInUserAllocated"}'
        forged = {
            "webhook-id": "msg_1",
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": "v1," + base64.b64encode(b"0" * 32).decode(),
        }
        answer = client.post("/events", content=body, headers=forged)
        assert answer.status_code == 401
        assert answer.text.startswith("signature does not verify")
        assert client.post("/events", content=body).status_code == 401


def test_readme_commands_run_as_written() -> None:
    commands = shell_commands("examples/screen_pop/README.md")
    assert commands, "the README has no commands"
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        assert KNOWN not in done.stdout + done.stderr

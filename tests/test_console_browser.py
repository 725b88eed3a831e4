"""The admin console in Debian's headless Chromium, against a real `receiver serve`.

An operator's morning: a scenario's events appear live on the events page; the CRM subscriber
fails every event of one caller; the operator finds that call by the caller's number, reads
the dead letter's traceback, fixes the handler and replays the dead letters, which then
succeed. With a token configured, the console asks for it, and a form POSTed without its CSRF
token, or from another site, is refused. The screenshots the README shows are taken here.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from playwright.sync_api import Page, expect

from receiver.inbox.base import open_admin
from receiver.scenarios import PlannedRequest, ScenarioOptions, Summary, build_stream, run_stream
from receiver.sender import EnreachWire, Sender
from receiver.testing import ReceiverProcess
from tests.conftest import SECRET, Harness
from tests.support.browser import PHONE, Chromium, chromium
from tests.support.picky import CONTACT_ERROR
from tests.support.subscribers import read_handled

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
ADMIN_TOKEN = "console-test-admin-token-7f3c9a"

CONFIG = """
[[endpoints]]
name = "enreach"
kind = "enreach"
path = "/enreach"
secret_env = ["RECEIVER_ENREACH_SECRET"]

[[endpoints.subscribers]]
name = "crm"
handler = "tests.support.picky:Picky"

[[endpoints.subscribers]]
name = "audit"
handler = "tests.support.subscribers:Recorder"
"""
"""Two subscribers: `crm` fails one caller's events while the flag file names them."""


def start(harness: Harness, flag: Path, env: dict[str, str] | None = None) -> ReceiverProcess:
    """`receiver serve` with the crm and audit subscribers; two attempts make a dead letter."""
    config = harness.tmp_path / "receiver.toml"
    config.write_text(CONFIG)
    environment = {
        "PICKY_FLAG": str(flag),
        "SUBSCRIBERS_RECORD_FILE": str(harness.tmp_path / "handled.jsonl"),
        **(env or {}),
    }
    return harness.receiver(
        "--config", str(config), "--max-attempts", "2", env=environment, handler=None
    )


def play(receiver: ReceiverProcess, ca: Path, stream: list[PlannedRequest]) -> Summary:
    """Send `stream` as Enreach would; the sender's summary."""

    async def main() -> Summary:
        async with Sender(
            receiver.url("/enreach"),
            provider=EnreachWire(secret=SECRET),
            verify=ca,
            retries=2,
            retry_delay=0.1,
            timeout=5.0,
        ) as sender:
            return await run_stream(stream, sender, rate=40.0, concurrency=4)

    # Playwright's sync API keeps an event loop in this thread: the sender runs in another.
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, main()).result()


def crm_states(receiver: ReceiverProcess) -> dict[str, int]:
    """The crm subscriber's deliveries by state."""
    admin = open_admin(str(receiver.inbox))
    try:
        return admin.stats().by_subscriber.get("crm", {})
    finally:
        admin.close()


def screenshot(page: Page, name: str) -> None:
    """Save what the page shows now as docs/images/`name` (the README's pictures)."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    # New rows flash for a moment; the picture is of the page at rest.
    page.wait_for_function("() => !document.getAnimations().some(a => a.animationName === 'fresh')")
    page.screenshot(path=str(IMAGES / name))


def rows(page: Page) -> list[str]:
    """The event types in the list, top to bottom."""
    return page.locator("table.events tbody tr a.type").all_inner_texts()


def test_operator_finds_a_failing_call_by_number_fixes_it_and_replays(
    harness: Harness, tmp_path: Path
) -> None:
    stream = build_stream(ScenarioOptions(calls=4, seed=11))
    calls: dict[str, list[str]] = {}
    for planned in stream:
        if planned.payload.get("CallId"):
            calls.setdefault(str(planned.payload["CallId"]), []).append(planned.event_type)
    bad = next(p.payload for p in stream if p.payload.get("CallerNumber"))
    bad_call, bad_number = str(bad["CallId"]), str(bad["CallerNumber"])
    failing = [
        p
        for p in stream
        if bad_number in (p.payload.get("CallerNumber"), p.payload.get("TargetNumber"))
    ]
    flag = tmp_path / "crm-broken"
    flag.write_text(bad_number)
    receiver = start(harness, flag)

    with chromium(harness.certs.cert) as browser:
        page = browser.page()
        page.goto(receiver.admin_url("/events"))
        expect(page.locator("p.empty")).to_contain_text("No events")
        expect(page.locator("#live-status")).to_have_text("live")
        page.evaluate("window.sameDocument = true")

        # The scenario's events appear while the page stays as it is (no reload).
        summary = play(receiver, harness.certs.ca, stream)
        assert summary.acknowledged == len(stream), summary
        expect(page.locator("table.events tbody tr")).to_have_count(len(stream), timeout=15_000)
        harness.wait_for(
            lambda: (
                crm_states(receiver).get("dead", 0) == len(failing)
                and crm_states(receiver).get("done", 0) == len(stream) - len(failing)
            ),
            what="the crm deliveries to settle",
        )
        expect(page.locator("table.events .chip.s-dead")).to_have_count(len(failing))
        assert page.evaluate("window.sameDocument === true"), "the page was reloaded"
        dead_counts = page.locator("table.counts tbody td.s-dead").all_inner_texts()
        assert sum(int(n) for n in dead_counts) == len(failing)
        screenshot(page, "console-events.png")
        phone_screenshot(browser, receiver)

        # Find the failing call by the caller's number: exactly its failing events.
        page.fill("input[name=phone]", bad_number)
        page.click("form.filters button[type=submit]")
        expect(page.locator("table.events tbody tr")).to_have_count(len(failing))
        assert page.locator("table.events tbody tr.s-dead").count() == len(failing)

        # Filter by the call id (as pasted, in capitals): its events, in the order sent.
        page.goto(receiver.admin_url("/events"))
        page.fill("input[name=call]", bad_call.upper())
        page.click("form.filters button[type=submit]")
        expect(page.locator("table.events tbody tr")).to_have_count(len(calls[bad_call]))
        assert rows(page) == calls[bad_call]

        # A dead letter's page: the error and its traceback; the number masked unless asked.
        page.locator("table.events tbody tr.s-dead a.type").first.click()
        dead = page.locator("article.delivery.s-dead")
        expect(dead.locator("h3")).to_have_text("crm")
        expect(dead.locator(".error-line").last).to_contain_text(f"LookupError: {CONTACT_ERROR}")
        traceback = dead.locator("details.traceback[open] pre")
        expect(traceback).to_contain_text("Traceback (most recent call last)")
        expect(traceback).to_contain_text("in lookup_contact")
        shown = page.inner_text("main")
        assert bad_number not in shown and bad_number[-2:] in shown
        assert SECRET not in page.content()
        page.set_viewport_size({"width": 1280, "height": 1000})
        screenshot(page, "console-event.png")
        page.click("text=Show them")
        expect(page.locator("#fields")).to_contain_text(bad_number)
        expect(dead.locator(".error-line").last).to_contain_text(bad_number)
        page.click("text=Mask them again")
        assert bad_number not in page.inner_text("main")

        # Fix the handler, replay this dead letter: it succeeds, and the page shows it live.
        flag.unlink()
        event_url = page.url
        dead.locator("button", has_text="Replay").click()
        expect(page.locator("p.done")).to_contain_text("Replayed 1 delivery")
        crm = page.locator('article.delivery[data-id$=":crm"] header .badge')
        expect(crm).to_have_text("done", timeout=10_000)
        assert page.url.startswith(event_url)

        # The call's other dead letters: replay all that match, from the dead letters page.
        page.goto(receiver.admin_url(f"/dead?call={bad_call}"))
        left = len(failing) - 1
        expect(page.locator("table.dead tbody tr")).to_have_count(left)
        page.once("dialog", lambda dialog: dialog.accept())
        page.locator(".bulk button", has_text=f"Replay all {left}").click()
        expect(page.locator("p.done")).to_contain_text(f"Replayed {left} delivery")
        expect(page.locator("p.empty")).to_contain_text("No dead letters")
        assert browser.complaints == [], browser.complaints

    harness.wait_for(
        lambda: crm_states(receiver).get("done", 0) == len(stream),
        what="every crm delivery done after the replays",
    )
    handled = sorted(h.key for h in read_handled(tmp_path / "handled.jsonl", "crm"))
    assert handled == sorted(p.event_id.lower() for p in stream)


def phone_screenshot(browser: Chromium, receiver: ReceiverProcess) -> None:
    """The events page on a phone: no sideways scrolling; saved for the README."""
    page = browser.page(PHONE)
    page.goto(receiver.admin_url("/events"))
    expect(page.locator("table.events tbody tr").first).to_be_visible()
    expect(page.locator("details#counts")).not_to_have_attribute("open", "")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "console-phone.png")
    page.context.close()

"""The admin console in Debian's headless Chromium, against a real `receiver serve`.

An operator's morning: a scenario's events appear live on the events page; the CRM subscriber
fails every event of one caller; the operator finds that call by the caller's number, reads
the dead letter's traceback, fixes the handler and replays the dead letters, which then
succeed. With a token configured, the console asks for it, and a form POSTed without its CSRF
token, or from another site, is refused. The screenshots the README shows are taken here.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from receiver.scenarios import PlannedRequest, ScenarioOptions, Summary, build_stream, run_stream
from receiver.sender import EnreachWire, Sender
from receiver.testing import ReceiverProcess
from tests.conftest import SECRET, Harness
from tests.support.browser import PHONE, Chromium, chromium
from tests.support.console import crm_states, dead_letter, start
from tests.support.picky import CONTACT_ERROR
from tests.support.subscribers import read_handled

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
ADMIN_TOKEN = "console-test-admin-token-7f3c9a"


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


# -- with a token: signing in, and forms refused without their CSRF token ---------------------


@pytest.fixture
def guarded(harness: Harness, tmp_path: Path) -> tuple[ReceiverProcess, str]:
    """A receiver whose console asks for ADMIN_TOKEN, and the id of its one dead letter."""
    number = "+358401112233"
    flag = tmp_path / "crm-broken"
    flag.write_text(number)
    receiver = start(harness, flag, env={"RECEIVER_ADMIN_TOKEN": ADMIN_TOKEN})
    return receiver, dead_letter(harness, receiver, number)


def dead_count(receiver: ReceiverProcess) -> int:
    """How many dead letters the crm subscriber has."""
    return crm_states(receiver).get("dead", 0)


def test_the_console_asks_for_the_token_and_refuses_forms_without_csrf(
    harness: Harness, guarded: tuple[ReceiverProcess, str]
) -> None:
    receiver, event_id = guarded
    with chromium(harness.certs.cert) as browser:
        page = browser.page()
        page.goto(receiver.admin_url(f"/events/{event_id}"))
        assert page.url == receiver.admin_url(f"/login?next=/events/{event_id}")
        page.fill("input[name=token]", "not-the-token")
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.click("form.login button")
        assert answer.value.status == 401
        expect(page.locator("p.problem")).to_have_text("That token is not valid.")

        page.fill("input[name=token]", ADMIN_TOKEN)
        page.click("form.login button")
        assert page.url == receiver.admin_url(f"/events/{event_id}")
        expect(page.locator("article.delivery.s-dead h3")).to_have_text("crm")
        (cookie,) = page.context.cookies()
        assert cookie["name"] == "receiver_admin" and ADMIN_TOKEN not in cookie["value"]
        assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (True, True, "Strict")

        # A form whose CSRF token was taken out is refused, and nothing is replayed.
        page.evaluate("document.querySelectorAll('input[name=csrf]').forEach(i => i.remove())")
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.locator("article.delivery.s-dead button", has_text="Replay").click()
        assert answer.value.status == 403
        expect(page.locator("p.problem")).to_contain_text("CSRF token is missing")
        assert dead_count(receiver) == 1

        # Signed in, a sign-in page sends the browser on, but only to a path of this site.
        page.goto(receiver.admin_url("/login?next=https://elsewhere.example/"))
        assert page.url == receiver.admin_url("/events")
        page.click("text=Sign out")
        assert page.url == receiver.admin_url("/login")
        assert page.context.cookies() == []
        page.goto(receiver.admin_url("/dead"))
        assert page.url == receiver.admin_url("/login?next=/dead")
        refusals = [f"status of {n} " for n in (401, 403)]  # the wrong token, the bare form
        unexpected = [c for c in browser.complaints if not any(r in c for r in refusals)]
        assert unexpected == [], unexpected


def csrf_of(html: str) -> str:
    """The CSRF token in a page's forms."""
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no CSRF token in the page"
    return found[1]


def test_a_post_without_its_csrf_token_or_from_another_site_is_refused(
    harness: Harness, guarded: tuple[ReceiverProcess, str]
) -> None:
    receiver, event_id = guarded
    replay = f"/events/{event_id}/replay"
    form = {"subscriber": "crm", "back": f"/events/{event_id}"}
    context = ssl.create_default_context(cafile=str(harness.certs.ca))
    base = receiver.admin_url("")
    with httpx.Client(verify=context, base_url=base, timeout=5.0) as client:
        assert client.post(replay, data=form).status_code == 401  # no token, no session
        bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        refused = client.post(replay, data=form, headers=bearer)
        assert refused.status_code == 403 and "CSRF token is missing" in refused.text

        # Sign in as a browser would: the sign-in form's own token, then a session cookie.
        sign_in = csrf_of(client.get("/login").text)
        signed = client.post("/login", data={"csrf": sign_in, "token": ADMIN_TOKEN})
        assert signed.status_code == 303 and signed.headers["location"] == "/events"
        set_cookie = signed.headers["set-cookie"].lower()
        assert all(a in set_cookie for a in ("httponly", "secure", "samesite=strict"))
        csrf = csrf_of(client.get(f"/events/{event_id}").text)
        assert csrf != sign_in  # bound to the session

        own = {"Origin": base}
        for data, headers in [
            (form, own),  # no CSRF token
            ({**form, "csrf": "0" * 64}, own),  # a wrong one
            ({**form, "csrf": sign_in}, own),  # one made for no session
            ({**form, "csrf": csrf}, {"Origin": "https://elsewhere.example"}),
            ({**form, "csrf": csrf}, {"Origin": "null"}),  # a sandboxed frame
            ({**form, "csrf": csrf}, {"Sec-Fetch-Site": "cross-site"}),
            ({**form, "csrf": csrf}, {"Sec-Fetch-Site": "same-site"}),  # another port
        ]:
            answer = client.post(replay, data=data, headers=headers)
            assert answer.status_code == 403, (data, headers, answer.status_code)
        assert dead_count(receiver) == 1

        done = client.post(replay, data={**form, "csrf": csrf}, headers=own)
        assert done.status_code == 303
        assert done.headers["location"] == f"/events/{event_id}?done=replay&n=1"

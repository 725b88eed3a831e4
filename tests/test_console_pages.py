"""The console's pages over HTTPS from a real `receiver serve` (no token: loopback only): what
each answers, to good and bad input, and what it never shows."""

from __future__ import annotations

import html
import re
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from receiver.admin.console import LIST_LIMIT
from receiver.catalogs.samples import enreach_sample
from receiver.sender import EnreachWire, SyncSender
from receiver.testing import ReceiverProcess
from tests.conftest import SECRET, Harness
from tests.support.console import dead_letter, start

NUMBER = "+358401119988"


@pytest.fixture
def console(harness: Harness, tmp_path: Path) -> Iterator[tuple[httpx.Client, str]]:
    """A client of the console of a receiver with one dead letter, and that letter's id."""
    flag = tmp_path / "crm-broken"
    flag.write_text(NUMBER)
    receiver: ReceiverProcess = start(harness, flag)
    event_id = dead_letter(harness, receiver, NUMBER)
    context = ssl.create_default_context(cafile=str(harness.certs.ca))
    with httpx.Client(verify=context, base_url=receiver.admin_url(""), timeout=5.0) as client:
        yield client, event_id


def test_pages_answer_with_what_they_show_and_refuse_bad_input_with_a_reason(
    console: tuple[httpx.Client, str],
) -> None:
    client, event_id = console
    for path in ("/", "/events", "/dead", f"/events/{event_id}", "/events?phone=358401119988"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert page.headers["content-type"].startswith("text/html")
        assert NUMBER not in page.text and SECRET not in page.text
    assert "LookupError" in client.get("/dead").text
    assert NUMBER in client.get(f"/events/{event_id}?unmask=1").text
    assert SECRET not in client.get(f"/events/{event_id}?unmask=1").text
    live = client.get("/live/events").json()
    assert (
        set(live["parts"]) == {"rows", "counts"}
        and f'data-id="{event_id}"' in live["parts"]["rows"]
    )
    assert set(client.get(f"/live/events/{event_id}").json()["parts"]) == {"deliveries"}
    assert set(client.get("/live/dead").json()["parts"]) == {"dead"}

    for path, status, said in [
        ("/events?since=yesterday", 400, "ISO 8601"),
        ("/dead?until=soon", 400, "ISO 8601"),
        ("/events?state=lost", 400, "unknown state"),
        ("/events?phone=call+me", 400, "not a phone number"),
        ("/events/999999", 404, "no event 999999"),
        ("/events/not-an-id", 404, "no event not-an-id"),
    ]:
        answer = client.get(path)
        assert (answer.status_code, said in answer.text) == (status, True), path
    assert client.get("/live/events?since=yesterday").status_code == 400
    assert client.get("/live/events/999999").status_code == 404

    # The console's own files; the script runs only where a page asks for it.
    assert client.get("/static/console.css").headers["content-type"].startswith("text/css")
    assert "data-live" in client.get("/static/console.js").text
    csp = client.get("/events").headers["content-security-policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp


def test_forms_refuse_unknown_actions_other_encodings_and_large_bodies(
    console: tuple[httpx.Client, str],
) -> None:
    client, event_id = console
    csrf = client.get("/dead").text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    form = {"csrf": csrf, "subscriber": "crm"}
    assert client.post(f"/events/{event_id}/explode", data=form).status_code == 404
    assert client.post(f"/events/{event_id}/replay", json=form).status_code == 415
    big = {**form, "padding": "x" * 70_000}
    assert client.post(f"/events/{event_id}/replay", data=big).status_code == 413
    back = {**form, "back": "https://elsewhere.example/"}
    answer = client.post(f"/events/{event_id}/discard", data=back)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/events/{event_id}?done=discard&n=1"
    assert "Discarded 1 dead letter" in client.get(answer.headers["location"]).text
    assert "No dead letters" in client.get("/dead").text


def test_a_long_list_pages_back_to_older_events_without_losing_any(
    harness: Harness, console: tuple[httpx.Client, str]
) -> None:
    client, first = console
    receiver = harness.processes[0]
    with SyncSender(
        receiver.url("/enreach"), provider=EnreachWire(secret=SECRET), verify=harness.certs.ca
    ) as sender:
        for n in range(LIST_LIMIT // 2 + 5):
            assert sender.send(enreach_sample("UserAvailability", seed=n)).acknowledged
    newest = client.get("/events")
    shown = set(re.findall(r'<tr data-id="([^"]+)"', newest.text))
    assert len(shown) == LIST_LIMIT // 2 and first not in shown
    older = re.search(r'<a href="([^"]+)">Older events', newest.text)
    assert older, "no link to older events"
    rest = set(re.findall(r'<tr data-id="([^"]+)"', client.get(html.unescape(older[1])).text))
    assert first in rest and len(shown | rest) == LIST_LIMIT // 2 + 6

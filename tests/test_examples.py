"""The example CRM bridge end to end: receiver process → typed handler → a fake CRM."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import Harness, enreach_event, post_event


class FakeCrm:
    """A CRM REST API on loopback (the external boundary): records POSTs, can fail."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.failures = 0
        crm = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if crm.failures:
                    crm.failures -= 1
                    self.send_response(503)
                else:
                    crm.records.append(json.loads(body))
                    self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def crm() -> Iterator[FakeCrm]:
    fake = FakeCrm()
    yield fake
    fake.close()


def test_crm_bridge_logs_answered_and_missed_calls(harness: Harness, crm: FakeCrm) -> None:
    crm.failures = 1  # the CRM is briefly down: the first attempt is retried
    receiver = harness.receiver(handler="examples.crm_bridge:CrmBridge", env={"CRM_URL": crm.url})
    answered = enreach_event("QueueCallInUserConnected", UserName="agent@customer.com",
                             QueueName="Sales")  # fmt: skip
    ended = enreach_event("QueueCallInDisconnected", CallId=answered["CallId"], QueueName="Sales")
    missed = enreach_event("QueueCallInDisconnected", CallerNumber="+358409998887",
                           QueueName="Sales", Reason="remote")  # fmt: skip
    not_queue = enreach_event("UserAvailability", EntityType="User")
    with harness.client() as client:
        for event in (answered, ended, missed, not_queue):
            assert post_event(client, receiver.url(), event).status_code == 200
    harness.wait_for(lambda: len(crm.records) == 2, what="two CRM records")
    receiver.stop()
    call, missed_call = sorted(crm.records, key=lambda r: r["type"])
    assert call == {
        "type": "call",
        "call_id": answered["CallId"],
        "from": "+358501231234",
        "agent": "agent@customer.com",
        "queue": "Sales",
        "at": "2018-01-01T08:01:23.450000",
    }
    assert missed_call["type"] == "missed_call"
    assert missed_call["from"] == "+358409998887"
    assert missed_call["reason"] == "remote"
    # on_error heard about the 503 and logged the caller, redacted as every log line is.
    assert "failed to reach the CRM" in receiver.log
    assert "+**********34" in receiver.log or "+**********87" in receiver.log
    assert "358501231234" not in receiver.log and "358409998887" not in receiver.log

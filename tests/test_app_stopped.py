"""The app once a part it cannot work without has stopped: the admin listener's `/healthz` says
which part with a 503 (and `/readyz` fails its `process` check), webhooks get 503 at once
(nothing could be stored), and whoever runs the app is told once.

`receiver serve` then exits with status 1 (tests/test_faults_fatal.py); here the app and the
admin app on its runtime are driven through ASGI directly, the app's lifespan included, so the
state between the fault and the exit can be looked at.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from receiver.admin.app import build_admin_app
from receiver.admin.context import AdminContext
from receiver.app import ReceiverApp
from receiver.auth import SecretSet
from receiver.config import EndpointConfig, Settings
from tests.conftest import enreach_event
from tests.support.inbox import writer_that_dies

SECRET = "app-stopped-secret"


@asynccontextmanager
async def lifespan(app: ReceiverApp) -> AsyncIterator[None]:
    """Run the ASGI lifespan of `app`: started inside, shut down on leaving."""
    inbound: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
    outbound: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, inbound.get, outbound.put))
    await inbound.put({"type": "lifespan.startup"})
    assert (await outbound.get())["type"] == "lifespan.startup.complete"
    try:
        yield
    finally:
        await inbound.put({"type": "lifespan.shutdown"})
        assert (await outbound.get())["type"] == "lifespan.shutdown.complete"
        await task


def test_a_dead_writer_makes_healthz_and_webhooks_answer_503_and_is_reported_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dying = writer_that_dies(monkeypatch)
    endpoint = EndpointConfig("enreach", "enreach", "/enreach", secrets=SecretSet([SECRET]))
    settings = Settings(inbox=str(tmp_path / "inbox.db"), endpoints=(endpoint,))
    app = ReceiverApp(settings)
    stopped: list[tuple[str, str]] = []
    app.on_stopped = lambda part, reason: stopped.append((part, reason))
    headers = {"X-Benemen-Token": SECRET, "Content-Type": "application/json"}

    admin_context = AdminContext(app.runtime, role="serve")
    admin_transport = httpx.ASGITransport(app=build_admin_app(admin_context))

    async def main() -> None:
        async with (
            lifespan(app),
            httpx.AsyncClient(transport=admin_transport, base_url="https://test") as admin,
        ):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="https://test") as client:
                health = await admin.get("/healthz")
                assert (health.status_code, health.json()["status"]) == (200, "ok")
                assert (await client.get("/healthz")).status_code == 404  # not the webhooks'
                body = orjson.dumps(enreach_event())
                assert (await client.post("/enreach", content=body, headers=headers)).is_success
                dying.set()
                answers = []
                for _ in range(3):
                    body = orjson.dumps(enreach_event())
                    started = time.monotonic()
                    response = await client.post("/enreach", content=body, headers=headers)
                    answers.append((response.status_code, time.monotonic() - started < 1.0))
                assert answers == [(503, True)] * 3
                # The writer thread tells the loop it stopped as it ends, which on a loaded
                # machine may come a moment after its writes began to fail.
                deadline = time.monotonic() + 5.0
                health = await admin.get("/healthz")
                while health.status_code == 200 and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                    health = await admin.get("/healthz")
                assert health.status_code == 503
                assert health.json() == {"status": "stopped", "stopped": "inbox writer"}
                ready = await admin.get("/readyz")
                assert ready.status_code == 503
                assert "process" in ready.json()["failed"], ready.json()
        assert stopped == [("inbox writer", "MemoryError: out of memory outside any write")]

    try:
        asyncio.run(asyncio.wait_for(main(), 30))
    finally:
        admin_context.close()

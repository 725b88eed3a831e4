"""Shared fixtures: trustme certificates, receiver processes, the spec's example payload."""

from __future__ import annotations

import os
import ssl
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trustme

from receiver.certs import DevCertificates
from receiver.testing import ReceiverProcess
from tests.support.recorder import read_records

# Every `receiver serve` and `receiver worker` a test starts has an admin listener: on any free
# port unless the test names one, so that processes running side by side never collide.
os.environ.setdefault("RECEIVER_ADMIN_PORT", "0")
# Processes log readable lines, which tests read as an operator would; tests of the JSON lines
# (the default off a terminal) ask for them (tests/test_logs_json.py).
os.environ.setdefault("RECEIVER_LOG_FORMAT", "console")

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = Path(__file__).parent / "payloads"
SECRET = "MySecretString"


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory: pytest.TempPathFactory) -> DevCertificates:
    """A trustme CA with a server certificate for localhost, 127.0.0.1 and ::1."""
    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1", "::1")
    paths = DevCertificates.in_dir(directory)
    ca.cert_pem.write_to_path(str(paths.ca))
    paths.cert.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(paths.key))
    return paths


@pytest.fixture
def spec_body() -> bytes:
    """The body of the example request in the Enreach spec (line breaks removed)."""
    return (PAYLOADS / "enreach" / "spec-example-request.json").read_bytes()


def enreach_event(event_type: str = "QueueCallInUserAllocated", **fields: Any) -> dict[str, Any]:
    """A small Enreach payload with a fresh Id; `fields` override or add properties."""
    payload: dict[str, Any] = {
        "RootEntityType": "Organization",
        "RootEntityId": "fd434d24-f685-431d-8df5-386b5d5ffa73",
        "EventType": event_type,
        "EntityType": "Queue",
        "EntityId": "6cb31d7d-9cd9-41dc-a096-62cf31fd0281",
        "CallId": str(uuid.uuid4()),
        "CallerNumber": "+358501231234",
        "Id": str(uuid.uuid4()),
        "Timestamp": "2018-01-01T08:01:23.45",
    }
    payload.update(fields)
    return payload


def post_event(
    client: httpx.Client,
    url: str,
    payload: dict[str, Any] | bytes,
    *,
    token: str | None = SECRET,
    event_header: str | None = None,
) -> httpx.Response:
    """POST one event the way Enreach does."""
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if token is not None:
        headers["X-Benemen-Token"] = token
    if event_header is None and isinstance(payload, dict):
        event_header = str(payload.get("EventType", ""))
    if event_header:
        headers["X-Benemen-Event"] = event_header
    return client.post(url, content=body, headers=headers)


class Harness:
    """Starts receivers with the recording handler and waits for what they handle."""

    def __init__(self, tmp_path: Path, certs: DevCertificates) -> None:
        self.tmp_path = tmp_path
        self.certs = certs
        self.record_file = tmp_path / "handled.jsonl"
        self.processes: list[ReceiverProcess] = []

    def receiver(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        handler: str | None = "tests.support.recorder:Recorder",
        workdir: Path | None = None,
    ) -> ReceiverProcess:
        """A started receiver; stopped at the end of the test."""
        environment = {
            "RECORD_FILE": str(self.record_file),
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        process = ReceiverProcess(
            workdir or self.tmp_path,
            certs=self.certs,
            secret=SECRET,
            handler=handler,
            args=["--backoff-base", "0.05", "--backoff-max", "0.2", *args],
            env=environment,
        )
        self.processes.append(process)
        process.start()
        return process

    def client(self) -> httpx.Client:
        """An HTTPS client that trusts the test CA."""
        return httpx.Client(verify=ssl.create_default_context(cafile=str(self.certs.ca)))

    def records(self) -> list[dict[str, Any]]:
        """Every line the recording handler wrote."""
        return read_records(self.record_file)

    def handled_keys(self) -> list[str]:
        """Dedup keys of completed handlings, in completion order (with repeats)."""
        return [str(r["key"]) for r in self.records() if r["phase"] == "end"]

    def wait_for(
        self, condition: Callable[[], bool], *, timeout: float = 20.0, what: str = "condition"
    ) -> None:
        """Poll `condition` until true or fail with the receivers' logs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.05)
        logs = "\n".join(p.log for p in self.processes)
        pytest.fail(f"timed out waiting for {what}\n{logs}")

    def close(self) -> None:
        """Stop every receiver this harness started."""
        for process in self.processes:
            process.close()


@pytest.fixture
def harness(tmp_path: Path, tls_ca: DevCertificates) -> Iterator[Harness]:
    """Receivers on ephemeral ports with the recording handler; cleaned up after the test."""
    h = Harness(tmp_path, tls_ca)
    try:
        yield h
    finally:
        h.close()


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
    """Run `python -m receiver ARGS` and return the completed process."""
    import os
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "receiver", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

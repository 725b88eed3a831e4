"""Helpers for the provider end-to-end tests: a receiver from a config file, its senders, counts."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from receiver.certs import DevCertificates
from receiver.sender import SyncSender, WireFormat, WireRequest
from receiver.testing import ReceiverProcess
from tests.conftest import Harness, run_cli

__all__ = [
    "ConfiguredReceiver",
    "load_payload",
    "module_receiver",
    "start_configured",
]

PAYLOADS = Path(__file__).resolve().parent.parent / "payloads"


def load_payload(provider: str, name: str) -> dict[str, Any]:
    """A payload fixture from tests/payloads/<provider>/<name>.json."""
    data = orjson.loads((PAYLOADS / provider / f"{name}.json").read_bytes())
    assert isinstance(data, dict)
    return data


class ConfiguredReceiver:
    """A receiver process started from a config file, with what its tests ask of it."""

    def __init__(self, harness: Harness, process: ReceiverProcess) -> None:
        self.harness = harness
        self.process = process

    def url(self, path: str) -> str:
        """The full URL of `path`."""
        return self.process.url(path)

    def sender(self, path: str, wire: WireFormat) -> SyncSender:
        """A blocking sender to `path` that trusts the test CA and never retries."""
        return SyncSender(self.url(path), provider=wire, verify=self.harness.certs.ca, retries=0)

    def deliver(self, request: WireRequest) -> httpx.Response:
        """Send a built request once and return the raw response."""
        context = ssl.create_default_context(cafile=str(self.harness.certs.ca))
        with httpx.Client(verify=context) as client:
            return client.request(
                request.method, request.url, headers=list(request.headers), content=request.body
            )

    def by_source(self) -> dict[str, int]:
        """Stored events per endpoint name, from `receiver inbox stats`."""
        stats = run_cli(
            "inbox",
            "--inbox",
            str(self.process.inbox),
            "stats",
            "--json",
            cwd=self.harness.tmp_path,
        )
        counts: dict[str, int] = orjson.loads(stats.stdout)["by_source"]
        return counts

    def typed(self) -> list[dict[str, Any]]:
        """Every typed handler call recorded so far."""
        return [r for r in self.harness.records() if r["phase"] == "typed"]

    def ended(self, source: str | None = None) -> list[dict[str, Any]]:
        """Every handled event recorded so far (optionally of one endpoint)."""
        return [
            r
            for r in self.harness.records()
            if r["phase"] == "end" and (source is None or r.get("source") == source)
        ]

    def wait_for_handled(self, count: int, source: str | None = None) -> None:
        """Wait until `count` events (of `source`) were handled."""
        self.harness.wait_for(
            lambda: len(self.ended(source)) >= count, what=f"{count} handled event(s)"
        )


def start_configured(
    harness: Harness, config: str, env: dict[str, str], *args: str
) -> ConfiguredReceiver:
    """A receiver serving the endpoints of `config` (TOML text); secrets come from `env`."""
    path = harness.tmp_path / "receiver.toml"
    path.write_text(config)
    process = harness.receiver("--config", str(path), *args, env=env)
    return ConfiguredReceiver(harness, process)


def module_receiver(
    factory: pytest.TempPathFactory, certs: DevCertificates, config: str, env: dict[str, str]
) -> Iterator[ConfiguredReceiver]:
    """A receiver for a whole test module (yield from a module-scoped fixture)."""
    harness = Harness(factory.mktemp("receiver"), certs)
    try:
        yield start_configured(harness, config, env)
    finally:
        harness.close()

"""One provider's endpoint on a running receiver, on every engine, for request-path tests."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from receiver.certs import DevCertificates
from receiver.sender import WireRequest
from receiver.testing import ReceiverProcess
from tests.conftest import Harness
from tests.support.faults import provider_receiver, stop_cleanly
from tests.support.memory import peak_memory, reset_peak_memory
from tests.support.provider_cases import ENGINES, PROVIDER_CASES, ProviderCase

__all__ = ["PROVIDERS_ON_ENGINES", "Served", "serving"]

PROVIDERS_ON_ENGINES = [
    pytest.param((case, engine), id=f"{case.name}-{engine}")
    for case in PROVIDER_CASES
    for engine in ENGINES
]
"""`(provider, engine)` for every provider on every engine, as fixture parameters."""


@dataclass
class Served:
    """One provider's endpoint on a running receiver, and what its inbox holds."""

    harness: Harness
    provider: ProviderCase
    receiver: ReceiverProcess

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.receiver.proc is not None
        return self.receiver.proc.pid

    def genuine(self) -> WireRequest:
        """A fresh genuine request to the provider's endpoint."""
        return self.provider.request(self.receiver.url(self.provider.path))

    def post(
        self,
        request: WireRequest,
        body: bytes,
        coding: str | None = None,
        *,
        client: httpx.Client | None = None,
    ) -> httpx.Response:
        """`request` with `body` in place of its own, under `Content-Encoding: coding`."""
        headers = list(request.headers)
        if coding is not None:
            headers.append(("Content-Encoding", coding))
        with contextlib.ExitStack() as stack:
            if client is None:
                client = stack.enter_context(self.harness.client())
            return client.request(
                request.method, request.url, headers=headers, content=body, timeout=60
            )

    def expected_payload(self, request: WireRequest) -> bytes:
        """What the receiver stores for `request` sent as built (no BOM, no coding)."""
        url = httpx.URL(request.url)
        headers = {name.lower().encode(): value.encode() for name, value in request.headers}
        source = self.provider.source(self.provider.path)
        return source.decode(request.method, headers, url.query, request.body).payload

    def stored(self, key: str) -> list[bytes]:
        """The payloads stored under dedup key `key` (one, or none)."""
        with contextlib.closing(sqlite3.connect(self.receiver.inbox, timeout=10)) as conn:
            rows = conn.execute("SELECT payload FROM events WHERE dedup_key = ?", (key,))
            return [bytes(row[0]) for row in rows]

    def count(self) -> int:
        """How many events the inbox holds."""
        with contextlib.closing(sqlite3.connect(self.receiver.inbox, timeout=10)) as conn:
            (count,) = conn.execute("SELECT count(*) FROM events").fetchone()
            return int(count)

    def peak_memory(self) -> int:
        """The server's peak resident memory in bytes since `reset_peak_memory`."""
        return peak_memory(self.pid)

    def reset_peak_memory(self) -> int:
        """Make the server's peak memory its current memory; returns it."""
        return reset_peak_memory(self.pid)


@contextlib.contextmanager
def serving(
    case: tuple[ProviderCase, str],
    tmp_path_factory: pytest.TempPathFactory,
    tls_ca: DevCertificates,
) -> Iterator[Served]:
    """A receiver serving `case`'s provider on its engine with the default 1 MiB limit,
    stopped cleanly (no unhandled error in its log) at the end."""
    provider, engine = case
    harness = Harness(tmp_path_factory.mktemp(f"{provider.name}-{engine}"), tls_ca)
    try:
        receiver = provider_receiver(harness, provider, "--engine", engine)
        yield Served(harness, provider, receiver)
        stop_cleanly(receiver)
    finally:
        harness.close()

"""`InProcessReceiver` serves with the engine `receiver serve` uses: a connection that never
starts TLS is closed after the handshake deadline, not asyncio's default minute."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import time

from receiver.inbox.models import StoredEvent
from receiver.testing import InProcessReceiver


class Quiet:
    async def handle(self, event: StoredEvent) -> None:
        pass

    async def failed(self, event: StoredEvent, error: BaseException, *, final: bool) -> None:
        pass


def test_a_connection_that_never_starts_tls_is_closed_at_the_handshake_deadline() -> None:
    receiver = InProcessReceiver(Quiet())
    receiver.settings = dataclasses.replace(receiver.settings, tls_handshake_timeout=0.5)
    with receiver, socket.create_connection(("127.0.0.1", receiver.port), timeout=10) as idle:
        started = time.monotonic()
        with contextlib.suppress(ConnectionResetError):  # aborted, or else
            assert idle.recv(1) == b""  # closed
        took = time.monotonic() - started
        assert took < 3, f"an idle connection was kept {took:.1f}s (deadline 0.5 s)"
        receiver.send("QueueCallInArrived")  # and genuine senders are served as ever

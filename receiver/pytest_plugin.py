"""pytest fixtures for end-to-end tests of webhook handlers, active once the package is installed.

`webhook_receiver(handler)` starts the real receiver in the test process and stops it after
the test; `webhook_sender(url, secret=...)` opens a sender to any receiver. Imports of the
receiver machinery wait until a fixture is used, so test runs that use neither pay nothing.
Disable with `-p no:receiver`.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    from receiver.certs import DevCertificates
    from receiver.handling import EventHandler
    from receiver.sender import SyncSender, Verify
    from receiver.testing import InProcessReceiver

__all__ = [
    "ReceiverFactory",
    "SenderFactory",
    "webhook_receiver",
    "webhook_receiver_certs",
    "webhook_sender",
]


class ReceiverFactory(Protocol):
    """The `webhook_receiver` fixture: start a receiver for a handler."""

    def __call__(self, handler: EventHandler, /, **options: Any) -> InProcessReceiver:
        """A started `InProcessReceiver` for `handler`; `options` go to its constructor."""
        ...


class SenderFactory(Protocol):
    """The `webhook_sender` fixture: open a sender to a receiver's URL."""

    def __call__(
        self,
        url: str,
        /,
        *,
        secret: str | None,
        verify: Verify = True,
        retries: int = 0,
        retry_delay: float = 0.05,
        timeout: float = 5.0,
    ) -> SyncSender:
        """A blocking Enreach sender to `url` (`secret=None` sends no token)."""
        ...


@pytest.fixture(scope="session")
def webhook_receiver_certs(tmp_path_factory: pytest.TempPathFactory) -> DevCertificates:
    """A throwaway CA and a certificate for 127.0.0.1, shared by the session's receivers."""
    from receiver.testing import throwaway_certificates

    return throwaway_certificates(tmp_path_factory.mktemp("webhook-receiver-certs"))


@pytest.fixture
def webhook_receiver(
    tmp_path: Path, webhook_receiver_certs: DevCertificates
) -> Iterator[ReceiverFactory]:
    """Start the real receiver for a handler object: `rx = webhook_receiver(MyHandler())`."""
    from receiver.testing import InProcessReceiver

    numbers = itertools.count(1)
    with contextlib.ExitStack() as started:

        def start(handler: EventHandler, /, **options: Any) -> InProcessReceiver:
            workdir = tmp_path / f"webhook-receiver-{next(numbers)}"
            workdir.mkdir()
            options.setdefault("certs", webhook_receiver_certs)
            receiver = InProcessReceiver(handler, workdir=workdir, **options)
            started.callback(receiver.stop)
            return receiver.start()

        yield start


@pytest.fixture
def webhook_sender() -> Iterator[SenderFactory]:
    """Open a blocking sender to any receiver: `webhook_sender(url, secret=..., verify=ca)`."""
    from receiver.sender import EnreachWire, SyncSender

    with contextlib.ExitStack() as opened:

        def open_sender(
            url: str,
            /,
            *,
            secret: str | None,
            verify: Verify = True,
            retries: int = 0,
            retry_delay: float = 0.05,
            timeout: float = 5.0,
        ) -> SyncSender:
            sender = SyncSender(
                url,
                provider=EnreachWire(secret=secret),
                verify=verify,
                retries=retries,
                retry_delay=retry_delay,
                timeout=timeout,
            )
            return opened.enter_context(sender)

        yield open_sender

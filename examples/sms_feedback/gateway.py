"""The SMS gateway behind a small Protocol: another gateway is one class with a `send` method.

`HttpSmsGateway` speaks a plain JSON API (the one `standin.py` serves for tests): `POST
/messages` with a bearer token, `{"to", "from", "text"}`, and an `Idempotency-Key` header.
A gateway that honours that key answers a repeated key with the message it already has
instead of sending again, which is what lets the sender retry after a crash without texting
anyone twice. Most commercial gateways take some client reference; whether they deduplicate
on it is what `idempotent` says, and what the sender relies on.
"""

from __future__ import annotations

from typing import Protocol

import httpx

__all__ = ["GatewayRefused", "GatewayUnavailable", "HttpSmsGateway", "SmsGateway"]


class GatewayRefused(Exception):
    """The gateway said no (a bad number, a bad token): sending again cannot help."""


class GatewayUnavailable(Exception):
    """The gateway could not be reached or did not answer; try again later.

    `maybe_sent` is True when the request may have reached it (no answer came): only a gateway
    that deduplicates on the idempotency key may then be asked again.
    """

    def __init__(self, message: str, *, maybe_sent: bool) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


class SmsGateway(Protocol):
    """What the sender needs of an SMS gateway."""

    @property
    def idempotent(self) -> bool:
        """Whether a repeated `key` is answered without sending a second message."""
        ...

    def send(self, *, to: str, text: str, key: str) -> str:
        """Send one SMS and return the gateway's message id.

        Raise `GatewayRefused` for an answer no retry can change, `GatewayUnavailable` for
        one a later try may.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class HttpSmsGateway:
    """A JSON-over-HTTPS SMS gateway that deduplicates on an `Idempotency-Key` header."""

    idempotent = True

    def __init__(self, url: str, token: str, *, sender: str, timeout: float = 10.0) -> None:
        self.sender = sender
        self.http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    def send(self, *, to: str, text: str, key: str) -> str:
        """POST the message; its id, or the error that says whether to try again."""
        try:
            response = self.http.post(
                "/messages",
                json={"to": to, "from": self.sender, "text": text},
                headers={"Idempotency-Key": key},
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise GatewayUnavailable(
                f"cannot reach the gateway: {exc!r}", maybe_sent=False
            ) from exc
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(
                f"no answer from the gateway: {exc!r}", maybe_sent=True
            ) from exc
        status = response.status_code
        if status in (200, 201):
            message_id = response.json().get("id")
            if not isinstance(message_id, str):
                raise GatewayRefused(f"the gateway answered {status} without a message id")
            return message_id
        reason = f"the gateway answered {status}: {response.text[:200]}"
        if status in (408, 429, 503):  # not taken: it says so
            raise GatewayUnavailable(reason, maybe_sent=False)
        if status >= 500:
            raise GatewayUnavailable(reason, maybe_sent=True)
        raise GatewayRefused(reason)

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

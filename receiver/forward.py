"""The forwarding subscriber: POST each stored event to an HTTPS URL, signed as Standard Webhooks.

What the integrator's service at the URL receives, once per attempt:

- `POST` with the event's payload as the body, unchanged (`content-type: application/json`):
  the request body as the provider sent it for JSON sources, the decoded fields for query and
  form sources.
- Standard Webhooks headers (https://www.standardwebhooks.com/): `webhook-id`, the same for the
  event on every attempt, replay and receiver; `webhook-timestamp`, the attempt's time in unix
  seconds; `webhook-signature`, one `v1,<base64 HMAC-SHA256>` per configured secret (old and
  new during a rotation). Verify them with any Standard Webhooks library, for example
  `standardwebhooks.webhooks.Webhook(secret).verify(body, headers)` in Python.
- `webhook-source` (the endpoint's name), `webhook-event-type` and `webhook-attempt` (1 for the
  first attempt), percent-encoded where a character is not visible ASCII.

How to answer:

- 2xx, quickly: the event is done. Do slow work after answering; an answer that takes longer
  than the timeout (the subscriber's `timeout`, else `--handler-timeout`: 30 s by default)
  counts as a failure and the event is sent again.
- 408, 429 and 5xx, or no answer: the event is retried with backoff, not before the answer's
  `Retry-After` (seconds or an HTTP date) when it has one, up to the receiver's longest
  backoff (`--backoff-max`, 300 s by default).
- 3xx and any other 4xx: the event becomes a dead letter at once (`receiver inbox replay`
  sends it again). Redirects are not followed: configure the final URL.

Delivery is at least once: an event can arrive again after an answer that was lost, or after
a replay. Deduplicate on `webhook-id`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import importlib.metadata
import math
import ssl
import time
from collections.abc import AsyncGenerator, Sequence
from datetime import UTC
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import cast
from urllib.parse import quote

import httpx

from receiver.access import outbound_url
from receiver.exceptions import ConfigError, PermanentError, RetryLater
from receiver.inbox.models import StoredEvent
from receiver.logs import printable
from receiver.sender.engine import client_tls_context

__all__ = ["ForwardHandler", "webhook_id"]

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
"""How a Standard Webhooks secret starts; the rest is the base64 of the HMAC key."""
BODY_LIMIT = 4096
"""Bytes of an answer's body read at most; the rest is never read."""
REASON_LIMIT = 200
"""Characters of an answer's body quoted in an error."""
# Visible ASCII but `%`: kept as is in a header value; anything else is percent-encoded, so an
# event type from a request can neither break the header nor fail to encode.
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")


def _version() -> str:
    try:
        return importlib.metadata.version("cc-webhook-receiver")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


USER_AGENT = f"cc-webhook-receiver/{_version()}"


def webhook_id(event: StoredEvent) -> str:
    """The event's `webhook-id`: derived from its source and dedup key only, so it is the same
    on every attempt, every replay and every receiver that stores the event."""
    key = f"{event.source}\0{event.dedup_key}".encode()
    return "msg_" + hashlib.blake2b(key, digest_size=16).hexdigest()


class ForwardHandler:
    """A subscriber that POSTs each event to `url`, signed with each of `secrets`.

    `secrets` are Standard Webhooks secrets (`whsec_<base64 key>`); give the old and the new
    one while the service at `url` switches. `ca_file` replaces the system's trusted CAs;
    `timeout` bounds each attempt's connect, write, read and wait for a pooled connection;
    `concurrency` is how many connections to `url` are open at most.
    """

    def __init__(
        self,
        name: str,
        url: str,
        secrets: Sequence[str],
        *,
        ca_file: Path | None = None,
        timeout: float = 10.0,
        concurrency: int = 16,
    ) -> None:
        self.name = name
        self.url = url
        self.shown_url = _check_url(name, url)
        self._keys = _keys(name, secrets)
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ConfigError(f"subscriber {name!r}: timeout must be more than 0 seconds")
        if concurrency < 1:
            raise ConfigError(f"subscriber {name!r}: concurrency must be 1 or more")
        self.timeout = timeout
        self.concurrency = concurrency
        try:
            self._tls = client_tls_context(ca_file if ca_file is not None else True)
        except ConfigError as exc:
            raise ConfigError(f"subscriber {name!r}: {exc}") from exc
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"ForwardHandler(name={self.name!r}, url={self.shown_url!r})"

    async def handle(self, event: StoredEvent) -> None:
        """POST the event; return on 2xx, raise `RetryLater` or `PermanentError` otherwise."""
        body = event.payload
        headers = self.headers(event, body, int(time.time()))
        client = self.client()
        request = client.build_request("POST", self.url, content=body, headers=headers)
        try:
            response = await client.send(request, stream=True)
            try:
                start = await _read_start(response)
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            raise RetryLater(
                f"timed out after {self.timeout:g}s posting to {self.shown_url}"
            ) from exc
        except httpx.TransportError as exc:
            raise RetryLater(self._transport_failure(exc)) from exc
        self._judge(response, start)

    async def failed(self, event: StoredEvent, error: BaseException, *, final: bool) -> None:
        """Nothing to add: the dispatcher logs failures."""

    async def aclose(self) -> None:
        """Close the pooled connections."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def client(self) -> httpx.AsyncClient:
        """The subscriber's pooled client, made on first use inside the running loop."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                verify=self._tls,
                timeout=httpx.Timeout(self.timeout),
                limits=httpx.Limits(
                    max_connections=self.concurrency,
                    max_keepalive_connections=self.concurrency,
                ),
                follow_redirects=False,
                # What is sent is what the config says: no proxy from the environment.
                trust_env=False,
            )
        return self._client

    def headers(self, event: StoredEvent, body: bytes, timestamp: int) -> dict[str, str]:
        """The request's headers for `event` with `body`, signed at `timestamp`."""
        msg_id = webhook_id(event)
        signed = f"{msg_id}.{timestamp}.".encode() + body
        signatures = " ".join(
            "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            for key in self._keys
        )
        return {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            # The error body is read in part only: a compressed one could expand without bound.
            "accept-encoding": "identity",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signatures,
            "webhook-source": _header_value(event.source),
            "webhook-event-type": _header_value(event.event_type),
            "webhook-attempt": str(event.attempts + 1),
        }

    def _judge(self, response: httpx.Response, start: bytes) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        where = f"HTTP {status} from {self.shown_url}"
        if 300 <= status < 400:
            location = printable(response.headers.get("location", "nowhere"), REASON_LIMIT)
            raise PermanentError(
                f"{where}: redirect to {location} not followed; set forward to the final URL"
            )
        reason = _reason(response, start)
        message = f"{where}: {reason}" if reason else where
        if status in (408, 429) or status >= 500:
            raise RetryLater(message, retry_after=retry_after(response.headers))
        raise PermanentError(message)

    def _transport_failure(self, exc: httpx.TransportError) -> str:
        tls = _ssl_error(exc)
        if tls is not None:
            if isinstance(tls, ssl.SSLCertVerificationError):
                detail = f"certificate verify failed: {tls.verify_message}"
            elif tls.reason:  # WRONG_VERSION_NUMBER: wrong version number
                detail = tls.reason.replace("_", " ").lower()
            else:
                detail = str(tls)
            return f"TLS error with {self.shown_url}: {printable(detail, REASON_LIMIT)}"
        reason = printable(str(exc) or type(exc).__name__, REASON_LIMIT)
        if isinstance(exc, httpx.ConnectError):
            return f"cannot connect to {self.shown_url}: {reason}"
        return f"connection to {self.shown_url} failed: {reason}"


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or HTTP date), or None when it is
    missing, unparseable or in the past."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # "-0000": a time in UTC
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - time.time()
    return seconds if 0 <= seconds < math.inf else None


def _check_url(name: str, url: str) -> str:
    """The URL without its query, for messages; `ConfigError` unless the receiver may send
    to it (`receiver.access.outbound_url`)."""
    parts = outbound_url(url, f"subscriber {name!r}", "the forward URL")
    return f"{parts.scheme.lower()}://{parts.netloc}{parts.path or '/'}"


def _keys(name: str, secrets: Sequence[str]) -> tuple[bytes, ...]:
    """The HMAC keys of Standard Webhooks secrets; the messages never quote a secret."""
    if isinstance(secrets, str):
        raise ConfigError(f"subscriber {name!r}: secrets must be a list of whsec_ secrets")
    if not secrets:
        raise ConfigError(f"subscriber {name!r}: no secret: give at least one whsec_ secret")
    keys = []
    for number, secret in enumerate(secrets, 1):
        where = f"subscriber {name!r}: secret {number} of {len(secrets)}"
        if not secret.startswith(SECRET_PREFIX):
            raise ConfigError(f"{where} is not a Standard Webhooks secret (whsec_<base64>)")
        encoded = secret.removeprefix(SECRET_PREFIX)
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            # `from None`: the decoder's reason adds nothing, and no text of a secret may reach
            # a message or traceback.
            raise ConfigError(f"{where} is not valid base64 after whsec_") from None
        if not key:
            raise ConfigError(f"{where} is empty after whsec_")
        keys.append(key)
    return tuple(keys)


def _header_value(text: str) -> str:
    return quote(text, safe=_HEADER_SAFE)


async def _read_start(response: httpx.Response) -> bytes:
    """At most `BODY_LIMIT` bytes of the answer's body, as sent (a short body read whole lets
    the connection be reused; a long one is cut and its connection closed)."""
    start = bytearray()
    # The cast: httpx types aiter_raw as an AsyncIterator, but it is an async generator, and
    # leaving it early must close it now rather than whenever it is collected.
    chunks = cast(AsyncGenerator[bytes, None], response.aiter_raw())
    async with contextlib.aclosing(chunks):
        async for chunk in chunks:
            start += chunk[: BODY_LIMIT - len(start)]
            if len(start) >= BODY_LIMIT:
                break
    return bytes(start)


def _reason(response: httpx.Response, start: bytes) -> str:
    coding = response.headers.get("content-encoding", "identity").strip().lower()
    if coding not in ("", "identity"):
        return f"({printable(coding, 40)}-encoded body not shown)"
    return printable(start.decode("utf-8", "replace").strip(), REASON_LIMIT)


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error under an httpx error, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None

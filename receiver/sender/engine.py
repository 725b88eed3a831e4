"""Deliver wire requests the way the platforms do: verify TLS, retry, never follow redirects."""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from receiver.exceptions import ConfigError
from receiver.logs import printable
from receiver.sender.base import Attempt, Delivery, WireFormat, WireRequest

__all__ = ["Sender", "SyncSender", "Verify", "client_tls_context"]

Verify = bool | str | os.PathLike[str] | ssl.SSLContext
"""True: the system's CA store; a path: that CA file; False: no verification (InsecureSSL)."""

# httpx adds these to every request; the platforms send none of them.
_CLIENT_DEFAULT_HEADERS = ("Accept", "Accept-Encoding", "Connection", "User-Agent")

REASON_LIMIT = 200
"""Characters of an answer's body shown as its reason; the rest is cut."""


def client_tls_context(verify: Verify) -> ssl.SSLContext:
    """The client TLS context for `verify`: TLS 1.2 or newer, hostname checked unless insecure."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if isinstance(verify, bool):
        ctx = ssl.create_default_context()
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
    else:
        try:
            ctx = ssl.create_default_context(cafile=os.fspath(verify))
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(f"cannot load CA file {os.fspath(verify)}: {reason}") from exc
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _check_url(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ConfigError(f"invalid URL {url!r}: {exc}") from exc
    if parsed.scheme not in ("https", "http") or not parsed.host:
        raise ConfigError(f"invalid URL {url!r}: expected https://host[:port]/path")
    return url


def _check_policy(retries: int, retry_delay: float, timeout: float) -> None:
    if retries < 0:
        raise ConfigError(f"retries must be 0 or more, got {retries}")
    if retry_delay < 0:
        raise ConfigError(f"retry delay must be 0 or more seconds, got {retry_delay}")
    if timeout <= 0:
        raise ConfigError(f"timeout must be more than 0 seconds, got {timeout}")


def _client_options(verify: Verify, timeout: float, max_connections: int) -> dict[str, Any]:
    return {
        "verify": client_tls_context(verify),
        "timeout": httpx.Timeout(timeout),
        "limits": httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        "follow_redirects": False,
        "trust_env": False,
    }


def _strip_default_headers(client: httpx.Client | httpx.AsyncClient) -> None:
    for name in _CLIENT_DEFAULT_HEADERS:
        del client.headers[name]


def _answered(number: int, started: float, response: httpx.Response) -> Attempt:
    latency = time.perf_counter() - started
    status = response.status_code
    if status == 200:
        return Attempt(number, status, latency)
    error = f"HTTP {status}"
    if response.is_redirect:
        location = printable(response.headers.get("Location", "?"), REASON_LIMIT)
        error += f" redirect to {location} (not followed)"
    else:
        reason = _reason(response)
        if reason:
            error += f": {reason}"
    return Attempt(number, status, latency, error)


def _reason(response: httpx.Response) -> str:
    """The answer's body as one bounded line (the receiver puts its reason there)."""
    # One more character than is shown, so that `printable` marks the cut.
    head = response.content[: (REASON_LIMIT + 1) * 4]
    return printable(head.decode("utf-8", "replace").strip(), REASON_LIMIT)


def _failed(number: int, started: float, exc: httpx.HTTPError, timeout: float) -> Attempt:
    latency = time.perf_counter() - started
    if isinstance(exc, httpx.TimeoutException):
        return Attempt(number, None, latency, f"timed out after {timeout:g} s", timed_out=True)
    reason = _root_reason(exc)
    if isinstance(exc, httpx.ConnectError):
        if "certificate verify failed" in reason:
            reason = reason.split("certificate verify failed:")[-1].split("(_ssl")[0].strip()
            return Attempt(number, None, latency, f"TLS certificate verify failed: {reason}")
        return Attempt(number, None, latency, f"cannot connect: {reason}")
    return Attempt(number, None, latency, f"{type(exc).__name__}: {reason}")


def _root_reason(exc: BaseException) -> str:
    """The innermost OS or TLS reason behind `exc` (httpx wraps it two or three times)."""
    reason = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        if isinstance(cause, ssl.SSLError) and cause.reason:
            reason = str(cause)
        elif isinstance(cause, OSError) and cause.strerror:
            # asyncio words a refused connection differently from the socket module
            errno = cause.errno
            reason = os.strerror(errno) if errno is not None and errno > 0 else cause.strerror
        cause = cause.__cause__ or cause.__context__
    return reason


class _Policy:
    """The settings the async and the blocking sender share, checked once."""

    def __init__(
        self,
        url: str,
        provider: WireFormat,
        retries: int,
        retry_delay: float,
        timeout: float,
    ) -> None:
        _check_policy(retries, retry_delay, timeout)
        self.url = _check_url(url)
        self.provider = provider
        self.retries = retries
        self.retry_delay = retry_delay
        self.timeout = timeout

    def tries(self, retries: int | None) -> int:
        return 1 + (self.retries if retries is None else max(retries, 0))


class Sender:
    """Deliver events to one URL over kept-alive connections, as the platform would.

    Anything but a 200, and a timeout, is a failed attempt; a failed request is retried
    `retries` times `retry_delay` seconds apart, then discarded. Redirects are never followed.
    """

    def __init__(
        self,
        url: str,
        *,
        provider: WireFormat,
        verify: Verify = True,
        retries: int = 3,
        retry_delay: float = 1.0,
        timeout: float = 5.0,
        max_connections: int = 10,
    ) -> None:
        self._policy = _Policy(url, provider, retries, retry_delay, timeout)
        self._client = httpx.AsyncClient(**_client_options(verify, timeout, max_connections))
        _strip_default_headers(self._client)

    @property
    def url(self) -> str:
        """Where events go."""
        return self._policy.url

    @property
    def provider(self) -> WireFormat:
        """The wire format requests are built with."""
        return self._policy.provider

    async def send(
        self,
        payload: Mapping[str, Any],
        *,
        retries: int | None = None,
        event_type: str | None = None,
    ) -> Delivery:
        """Build the provider's request for `payload` (of `event_type`) and deliver it."""
        request = self.provider.build(self.url, payload, event_type=event_type)
        return await self.deliver(request, retries=retries)

    async def deliver(self, request: WireRequest, *, retries: int | None = None) -> Delivery:
        """Send `request` until a 200 or until the retries (default: the sender's) run out."""
        attempts: list[Attempt] = []
        for number in range(1, self._policy.tries(retries) + 1):
            if number > 1:
                await asyncio.sleep(self._policy.retry_delay)
            built = self._client.build_request(
                request.method, request.url, headers=list(request.headers), content=request.body
            )
            started = time.perf_counter()
            try:
                response = await self._client.send(built)
            except httpx.HTTPError as exc:
                attempts.append(_failed(number, started, exc, self._policy.timeout))
            else:
                attempts.append(_answered(number, started, response))
            if attempts[-1].acknowledged:
                break
        return Delivery(request, tuple(attempts))

    async def aclose(self) -> None:
        """Close the kept-alive connections."""
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class SyncSender:
    """The blocking twin of `Sender`, for scripts and synchronous tests."""

    def __init__(
        self,
        url: str,
        *,
        provider: WireFormat,
        verify: Verify = True,
        retries: int = 3,
        retry_delay: float = 1.0,
        timeout: float = 5.0,
        max_connections: int = 10,
    ) -> None:
        self._policy = _Policy(url, provider, retries, retry_delay, timeout)
        self._client = httpx.Client(**_client_options(verify, timeout, max_connections))
        _strip_default_headers(self._client)

    @property
    def url(self) -> str:
        """Where events go."""
        return self._policy.url

    @property
    def provider(self) -> WireFormat:
        """The wire format requests are built with."""
        return self._policy.provider

    def send(
        self,
        payload: Mapping[str, Any],
        *,
        retries: int | None = None,
        event_type: str | None = None,
    ) -> Delivery:
        """Build the provider's request for `payload` (of `event_type`) and deliver it."""
        request = self.provider.build(self.url, payload, event_type=event_type)
        return self.deliver(request, retries=retries)

    def deliver(self, request: WireRequest, *, retries: int | None = None) -> Delivery:
        """Send `request` until a 200 or until the retries (default: the sender's) run out."""
        attempts: list[Attempt] = []
        for number in range(1, self._policy.tries(retries) + 1):
            if number > 1:
                time.sleep(self._policy.retry_delay)
            built = self._client.build_request(
                request.method, request.url, headers=list(request.headers), content=request.body
            )
            started = time.perf_counter()
            try:
                response = self._client.send(built)
            except httpx.HTTPError as exc:
                attempts.append(_failed(number, started, exc, self._policy.timeout))
            else:
                attempts.append(_answered(number, started, response))
            if attempts[-1].acknowledged:
                break
        return Delivery(request, tuple(attempts))

    def close(self) -> None:
        """Close the kept-alive connections."""
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

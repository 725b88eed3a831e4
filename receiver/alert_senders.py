"""Where `on_dead` alerts go: a URL that gets a JSON POST, or a Python callable.

The POST is `content-type: application/json`, the body `DeadLetter.as_json()` or
`DeadLettersSuppressed.as_json()` (their `kind` tells them apart). The certificate is verified
(the system's CAs, or `on_dead_ca_file`); no redirect is followed and no proxy is taken from
the environment, as for forwarding subscribers. A 2xx answer is success; no answer, 408, 429
or 5xx is tried again twice (after 1 s, then 5 s); any other answer is a failure at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from receiver.alerts import Alert, check_url
from receiver.exceptions import ConfigError
from receiver.logs import printable

__all__ = ["RETRY_DELAYS", "TIMEOUT", "CallableAlert", "WebhookAlert", "load_callable"]

TIMEOUT = 10.0
"""Seconds one POST (or one call of a callable) may take."""
RETRY_DELAYS = (1.0, 5.0)
"""Seconds before each try of a POST after the first."""


class AlertFailed(Exception):
    """An alert that could not be delivered; its message is one line."""


class WebhookAlert:
    """POSTs each alert to `url` as JSON."""

    def __init__(
        self,
        url: str,
        where: str,
        *,
        ca_file: Path | None = None,
        timeout: float = TIMEOUT,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        from receiver.sender.engine import client_tls_context

        self.url = url
        self.shown = check_url(url, where)
        self.timeout = timeout
        self.retry_delays = retry_delays
        try:
            self._tls = client_tls_context(ca_file if ca_file is not None else True)
        except ConfigError as exc:
            raise ConfigError(f"{where}: on_dead_ca_file: {exc}") from exc
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"WebhookAlert({self.shown!r})"

    async def notify(self, alert: Alert) -> None:
        """POST `alert`; AlertFailed once every try failed."""
        from receiver.forward import USER_AGENT

        if self._client is None:
            self._client = httpx.AsyncClient(
                verify=self._tls,
                timeout=httpx.Timeout(self.timeout),
                follow_redirects=False,
                trust_env=False,
            )
        body = orjson.dumps(alert.as_json())
        headers = {"content-type": "application/json", "user-agent": USER_AGENT}
        problem = ""
        for delay in (0.0, *self.retry_delays):
            if delay:
                await asyncio.sleep(delay)
            try:
                response = await self._client.post(self.url, content=body, headers=headers)
            except httpx.TimeoutException:
                problem = f"timed out after {self.timeout:g}s posting to {self.shown}"
                continue
            except httpx.TransportError as exc:
                reason = printable(str(exc) or type(exc).__name__, 200)
                problem = f"cannot post to {self.shown}: {reason}"
                continue
            status = response.status_code
            if 200 <= status < 300:
                return
            problem = f"HTTP {status} from {self.shown}"
            if not (status in (408, 429) or status >= 500):
                break
        raise AlertFailed(problem)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class CallableAlert:
    """Calls a Python function with each alert: awaited when it is async, else run on a
    thread of its own (so that a slow or stuck one holds up neither the event loop nor the
    process's stop)."""

    def __init__(self, spec: str, where: str, *, timeout: float = TIMEOUT) -> None:
        self.function = load_callable(spec, where)
        self.shown = spec
        self.timeout = timeout
        self._is_async = inspect.iscoroutinefunction(self.function) or (
            inspect.iscoroutinefunction(getattr(self.function, "__call__", None))  # noqa: B004
        )

    async def notify(self, alert: Alert) -> None:
        """Call the function with `alert`, waiting at most `timeout` seconds."""
        async with asyncio.timeout(self.timeout):
            if self._is_async:
                result = self.function(alert)
            else:
                result = await _on_thread(self.function, alert)
            if inspect.isawaitable(result):
                await result

    async def aclose(self) -> None:
        """Nothing to release."""


async def _on_thread(function: Callable[[Any], Any], argument: Any) -> Any:
    """`function(argument)` on a daemon thread: a call that never returns is left behind
    rather than waited for when the process stops (the loop's executor would wait)."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if answer.done():
            return
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(result)

    def call() -> None:
        result, error = None, None
        try:
            result = function(argument)
        except Exception as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=call, name="on-dead", daemon=True).start()
    return await answer


def load_callable(spec: str, where: str) -> Callable[[Any], Any]:
    """The function `module:name` names (`name` may be dotted); ConfigError (one line) when
    it cannot be imported or is not callable."""
    module_name, _, attr = spec.rpartition(":")
    if os.getcwd() not in sys.path:  # as for handlers: modules beside the config
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        reason = printable(f"{type(exc).__name__}: {exc}".split("\n", 1)[0], 200)
        raise ConfigError(
            f"{where}: cannot import on_dead module {module_name!r}: {reason}"
        ) from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(
                f"{where}: on_dead {spec!r}: module {module_name!r} has no {attr!r}"
            ) from None
    if not callable(obj):
        raise ConfigError(f"{where}: on_dead {spec!r} is not callable")
    function: Callable[[Any], Any] = obj
    return function

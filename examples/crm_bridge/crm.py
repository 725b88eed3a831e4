"""The CRM's REST API as the bridge uses it: create a call activity, once, and say what failed.

One call: `POST {CRM_URL}/activities` with the API key as a bearer token and an
`Idempotency-Key` header. The key is derived from the event's source and dedup key, so every
attempt at one event (a retry after a lost answer, a replayed dead letter) carries the same
key and the CRM answers with the activity it already has instead of making a second one.

What an answer means for the event, in the receiver's terms:

- 2xx: done (201 a new activity, 200 the one this key already made).
- 429, 408, 5xx, no answer: `RetryLater`, not before the answer's `Retry-After`; the
  receiver's dispatcher retries with backoff, then keeps a dead letter.
- any other 3xx or 4xx (a wrong API key, a field the CRM refuses): `PermanentError`, a dead
  letter at once: no retry can fix it; fix the cause, then `receiver inbox replay`.
"""

from __future__ import annotations

import hashlib
import math
import time
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from receiver.exceptions import PermanentError, RetryLater

__all__ = ["CrmClient", "idempotency_key", "retry_after"]

REASON_LIMIT = 200
"""Characters of an error answer's body quoted in the error."""


def idempotency_key(source: str, dedup_key: str) -> str:
    """The `Idempotency-Key` of the event `dedup_key` from endpoint `source`: the same for
    every attempt at that event, different for any other."""
    digest = hashlib.sha256(f"{source}\n{dedup_key}".encode()).hexdigest()
    return f"cc-webhook-{digest[:40]}"


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date); None when
    there is none, it does not parse, or it is in the past."""
    value = headers.get("retry-after", "").strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": a time in UTC
        when = when.replace(tzinfo=UTC)
    seconds = when.timestamp() - time.time()
    return seconds if 0 <= seconds < math.inf else None


class CrmClient:
    """Creates call activities in the CRM at `base_url`, authenticated with `api_key`."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            follow_redirects=False,
        )

    async def create_activity(self, activity: dict[str, Any], *, key: str) -> None:
        """Create `activity` unless the CRM has one with `key`; raise `RetryLater` or
        `PermanentError` (one line, the status and the start of the answer) otherwise."""
        where = f"{self.base_url}/activities"
        try:
            response = await self.http.post(
                "/activities", json=activity, headers={"Idempotency-Key": key}
            )
        except httpx.TransportError as exc:
            raise RetryLater(
                f"cannot reach the CRM at {where}: {exc or type(exc).__name__}"
            ) from exc
        status = response.status_code
        if 200 <= status < 300:
            return
        reason = " ".join(response.text[:REASON_LIMIT].split())
        message = f"HTTP {status} from {where}" + (f": {reason}" if reason else "")
        if status in (408, 429) or status >= 500:
            raise RetryLater(message, retry_after=retry_after(response.headers))
        raise PermanentError(message)

"""Buzzeasy service hooks on the wire: a JSON POST with the integrator's key in `x-api-key`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

from receiver.catalogs.buzzeasy import canonical_event_type, url_slug
from receiver.sender.base import WireRequest, forged_credential

__all__ = ["API_KEY_HEADER", "BuzzeasyWire"]

API_KEY_HEADER = "x-api-key"


@dataclass(frozen=True, slots=True)
class BuzzeasyWire:
    """The request a Buzzeasy service hook sends: one callback URL per hook.

    `event_type` is the hook this wire sends for (`build` may name another); with
    `url_per_type`, the URL given to `build` is a base and each hook goes to
    `<base>/<url_slug(hook)>` (`/work-item-closed`), as the example config lays them out.
    """

    provider: ClassVar[str] = "buzzeasy"

    api_key: str | None = field(default=None, repr=False)
    event_type: str = "WorkItemClosed"
    url_per_type: bool = False

    def build(
        self, url: str, payload: Mapping[str, Any], *, event_type: str | None = None
    ) -> WireRequest:
        """POST `payload` as compact JSON, with the API key when there is one."""
        hook = canonical_event_type(event_type or self.event_type)
        if self.url_per_type:
            url = f"{url.rstrip('/')}/{url_slug(hook)}"
        headers: list[tuple[str, str]] = []
        if self.api_key:
            headers.append((API_KEY_HEADER, self.api_key))
        headers.append(("Content-Type", "application/json; charset=utf-8"))
        event_id = next((v for k, v in payload.items() if k.lower() == "id"), None)
        return WireRequest(
            method="POST",
            url=url,
            headers=tuple(headers),
            body=orjson.dumps(dict(payload)),
            event_type=hook,
            event_id=str(event_id) if event_id is not None else None,
            sensitive=frozenset({API_KEY_HEADER}),
        )

    def forged(self) -> BuzzeasyWire:
        """The same wire with a key no receiver configured with `api_key` accepts."""
        return BuzzeasyWire(
            api_key=forged_credential(self.api_key),
            event_type=self.event_type,
            url_per_type=self.url_per_type,
        )

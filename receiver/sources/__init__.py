"""Sources: one module per provider wire format, chosen by an endpoint's `kind`."""

from __future__ import annotations

from receiver.config import EndpointConfig
from receiver.exceptions import ConfigError
from receiver.sources.base import Headers, Source, find_key

__all__ = ["Headers", "Source", "build_source", "find_key"]


def build_source(endpoint: EndpointConfig) -> Source:
    """The source object that decodes requests for `endpoint`."""
    if endpoint.kind == "enreach":
        from receiver.sources.enreach import EnreachSource

        if endpoint.secrets is None:
            raise ConfigError(f"endpoint {endpoint.name!r} has no secret")
        return EnreachSource(endpoint.name, endpoint.secrets)
    raise ConfigError(f"endpoint {endpoint.name!r}: unknown kind {endpoint.kind!r}")

"""Sources: one module per provider wire format, chosen by an endpoint's `kind`."""

from __future__ import annotations

from receiver.auth import HeaderAuth
from receiver.config import EndpointConfig
from receiver.exceptions import ConfigError
from receiver.kinds import DEFAULT_AUTH_HEADER
from receiver.sources.base import Headers, Source, find_key

__all__ = ["Headers", "Source", "build_source", "find_key"]


def build_source(endpoint: EndpointConfig) -> Source:
    """The source object that decodes requests for `endpoint`."""
    kind, options = endpoint.kind, endpoint.options
    if kind == "enreach":
        from receiver.sources.enreach import EnreachSource

        if endpoint.secrets is None:
            raise ConfigError(f"endpoint {endpoint.name!r} has no secret")
        return EnreachSource(endpoint.name, endpoint.secrets)
    if endpoint.secrets is None and endpoint.basic is None:
        raise ConfigError(f"endpoint {endpoint.name!r} has no secret")
    if kind not in DEFAULT_AUTH_HEADER:
        raise ConfigError(f"endpoint {endpoint.name!r}: unknown kind {kind!r}")
    header = str(options.get("auth_header", DEFAULT_AUTH_HEADER[kind]))
    auth = HeaderAuth(header, endpoint.secrets, endpoint.basic)
    if kind == "engage_wfm":
        from receiver.sources.engage_wfm import EngageWfmSource

        return EngageWfmSource(
            endpoint.name,
            auth,
            family=options.get("family", "both"),
            time_zone=options.get("time_zone", "UTC"),
        )
    if kind == "engage_web_services":
        from receiver.sources.engage_web_services import EngageWebServicesSource

        return EngageWebServicesSource(
            endpoint.name,
            auth,
            methods=options.get("methods", ("POST",)),
            body=options.get("body", "json"),
            dedup_fields=options.get("dedup_fields", ()),
            fields=options.get("fields"),
            event_type=options.get("event_type", "CallDetails"),
            time_zone=options.get("time_zone", "UTC"),
        )
    from receiver.sources.buzzeasy import BuzzeasySource

    event_type = options.get("event_type")
    if not event_type:
        raise ConfigError(f"endpoint {endpoint.name!r}: a buzzeasy endpoint needs event_type")
    return BuzzeasySource(endpoint.name, auth, event_type=str(event_type))

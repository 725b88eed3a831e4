"""One entry per provider for the fault and abuse suite: how to configure, call and decode it.

A provider is added to every fault, fuzz, TLS and secrets test by appending one
`ProviderCase` to `PROVIDER_CASES`: its `[[endpoints]]` tables, the secrets they name, the
wire format that builds its requests, and a sample event with a phone number and a free-text
field (where tests put markers the fault-injecting handlers react to).
"""

from __future__ import annotations

import functools
import random
import secrets
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from receiver.catalogs.buzzeasy_samples import buzzeasy_sample
from receiver.catalogs.engage_samples import web_service_sample, wfm_sample
from receiver.config import load_settings
from receiver.scenarios import PlannedRequest, ScenarioOptions, build_stream
from receiver.sender import (
    BuzzeasyWire,
    EnreachWire,
    WebServicesWire,
    WfmWire,
    WireFormat,
    WireRequest,
    basic_authorization,
)
from receiver.sources import Source, build_source

__all__ = [
    "ENGINES",
    "PROVIDERS",
    "PROVIDERS_ON_ENGINES",
    "PROVIDER_CASES",
    "ProviderCase",
]

ENGINES = ("uvicorn", "hypercorn")


@dataclass(frozen=True)
class ProviderCase:
    """Everything the suite needs to know about one provider's endpoint(s)."""

    name: str
    """The endpoint kind, and the pytest id."""
    endpoint_toml: str
    """`[[endpoints]]` tables serving this provider; secrets only by variable name."""
    secret_env: Mapping[str, str]
    """The variables the tables name, with the secret values the tests use (current first)."""
    path: str
    """The endpoint single requests go to."""
    wire: Callable[[str | None], WireFormat]
    """The provider's wire format carrying a credential (None: no credential at all)."""
    event: Callable[..., dict[str, Any]]
    """A fresh event (`seed`: the same one every time); keyword arguments override fields."""
    phone_field: str
    """A field of `event` that carries a phone number."""
    note_field: str
    """A free-text field of `event` that is stored as sent (tests put markers in it)."""
    order_field: str | None
    """The field of `event` whose value orders events (one lane per value), if any."""
    credential: Callable[[str], str] = str
    """The credential header's value for a secret (e.g. Basic for `user:password`)."""
    scenario_path: str | None = None
    """Where realistic flows are sent (with `scenario_wire`); None: no flows to play."""
    scenario_wire: Callable[[str | None], WireFormat] | None = None

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every accepted secret value (what must never reach a log)."""
        return tuple(self.secret_env.values())

    @property
    def secret(self) -> str:
        """The secret a genuine sender uses."""
        return self.secrets[0]

    def write_config(self, directory: Path) -> Path:
        """A `receiver.toml` in `directory` serving only this provider; returns its path."""
        path = directory / f"{self.name}.toml"
        path.write_text(self.endpoint_toml)
        return path

    @functools.cached_property
    def _sources(self) -> dict[str, Source]:
        with tempfile.TemporaryDirectory() as directory:
            config = self.write_config(Path(directory))
            settings = load_settings(config_file=config, env=self.secret_env)
        return {e.path: build_source(e) for e in settings.endpoints}

    def source(self, path: str | None = None) -> Source:
        """The source object the receiver builds for the endpoint at `path` (default `path`)."""
        return self._sources[path or self.path]

    def request(
        self, url: str, *, token: str | None = "", seed: int | None = None, **fields: Any
    ) -> WireRequest:
        """A genuine request for a fresh event (`seed`: a fixed one); `token` replaces the
        secret ("": the right one, None: no credential at all)."""
        wire = self.wire(self.secret if token == "" else token)
        return wire.build(url, self.event(seed=seed, **fields))

    def marked(self, url: str, marker: str) -> WireRequest:
        """A genuine request whose free-text field holds `marker`."""
        fields: dict[str, Any] = {self.note_field: f"note {marker}"}
        return self.request(url, **fields)

    def dedup_key(self, request: WireRequest) -> str:
        """The key the receiver stores `request`'s event under (decoded the way it does)."""
        url = httpx.URL(request.url)
        headers = {name.lower().encode(): value.encode() for name, value in request.headers}
        source = self.source(url.path.rstrip("/") or "/")
        return source.decode(request.method, headers, url.query, request.body).dedup_key

    def credential_headers(self) -> frozenset[str]:
        """Lower-case names of the headers that carry this provider's credential."""
        return self.request("https://localhost/").sensitive

    def stream(self, calls: int, seed: int) -> list[PlannedRequest]:
        """Realistic flows with duplicates and forged twins (needs `scenario_path`)."""
        options = ScenarioOptions(
            calls=calls, seed=seed, provider=self.name, duplicate_ratio=0.05, wrong_token_ratio=0.02
        )
        return build_stream(options)

    def planned_request(self, base_url: str, planned: PlannedRequest) -> WireRequest:
        """The genuine request the scenario sender builds for `planned`."""
        assert self.scenario_wire is not None and self.scenario_path is not None
        wire = self.scenario_wire(self.secret)
        return wire.build(
            base_url + self.scenario_path, planned.payload, event_type=planned.event_type
        )


def _seed(seed: int | None) -> int:
    # Not the `random` module's shared state: hypothesis strategies call these builders too.
    return secrets.randbits(48) if seed is None else seed


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _enreach_event(seed: int | None = None, **fields: Any) -> dict[str, Any]:
    rng = random.Random(_seed(seed))
    payload: dict[str, Any] = {
        "RootEntityType": "Organization",
        "RootEntityId": "fd434d24-f685-431d-8df5-386b5d5ffa73",
        "EventType": "QueueCallInUserAllocated",
        "EntityType": "Queue",
        "EntityId": "6cb31d7d-9cd9-41dc-a096-62cf31fd0281",
        "CallId": _uuid(rng),
        "CallerNumber": "+358501231234",
        "Id": _uuid(rng),
        "Timestamp": "2018-01-01T08:01:23.45",
        "Note": "",
    }
    payload.update(fields)
    return payload


def _wfm_event(seed: int | None = None, **fields: Any) -> dict[str, Any]:
    payload = wfm_sample("EndCall", seed=_seed(seed))
    payload["note"] = ""
    payload.update(fields)
    return payload


def _web_service_event(seed: int | None = None, **fields: Any) -> dict[str, Any]:
    payload = web_service_sample(seed=_seed(seed))
    payload["note"] = ""
    payload.update(fields)
    return payload


def _buzzeasy_event(seed: int | None = None, **fields: Any) -> dict[str, Any]:
    return buzzeasy_sample("WorkItemClosed", seed=_seed(seed), overrides=fields)


ENREACH = ProviderCase(
    name="enreach",
    endpoint_toml="""
[[endpoints]]
name = "enreach"
kind = "enreach"
path = "/enreach"
secret_env = ["FAULT_ENREACH_SECRET", "FAULT_ENREACH_SECRET_PREVIOUS"]
""",
    secret_env={
        "FAULT_ENREACH_SECRET": "Xq7-enreach-current-5b1e0c",
        "FAULT_ENREACH_SECRET_PREVIOUS": "Kd2-enreach-previous-93fa11",
    },
    path="/enreach",
    wire=lambda secret: EnreachWire(secret=secret),
    event=_enreach_event,
    phone_field="CallerNumber",
    note_field="Note",
    order_field="CallId",
    scenario_path="/enreach",
    scenario_wire=lambda secret: EnreachWire(secret=secret),
)

ENGAGE_WFM = ProviderCase(
    name="engage_wfm",
    endpoint_toml="""
[[endpoints]]
name = "engage-wfm"
kind = "engage_wfm"
path = "/engage/wfm"
family = "both"
secret_env = ["FAULT_WFM_AUTHORIZATION", "FAULT_WFM_AUTHORIZATION_PREVIOUS"]
""",
    secret_env={
        "FAULT_WFM_AUTHORIZATION": "Wf9-engage-wfm-current-2c7d",
        "FAULT_WFM_AUTHORIZATION_PREVIOUS": "Pm4-engage-wfm-previous-8e0b",
    },
    path="/engage/wfm",
    # "Send body as JSON": the body-carrying form, so body faults apply.
    wire=lambda secret: WfmWire(credential=secret, encoding="json"),
    event=_wfm_event,
    phone_field="ani",
    note_field="note",
    order_field="call_id",
    scenario_path="/engage/wfm",
    scenario_wire=lambda secret: WfmWire(credential=secret),  # the default query form, GET
)

ENGAGE_WEB_SERVICES = ProviderCase(
    name="engage_web_services",
    endpoint_toml="""
[[endpoints]]
name = "engage-call-details"
kind = "engage_web_services"
path = "/engage/call-details"
methods = ["POST"]
body = "json"
basic_users_env = ["FAULT_WS_USER", "FAULT_WS_USER_PREVIOUS"]
event_type = "AgentTermination"
dedup_fields = ["uii", "agent_id", "recording_url"]
""",
    secret_env={
        "FAULT_WS_USER": "ws-agent:Hs3-current-pw-77a1",
        "FAULT_WS_USER_PREVIOUS": "ws-old:Rt8-previous-pw-04c9",
    },
    path="/engage/call-details",
    wire=lambda secret: WebServicesWire(
        credential=basic_authorization(secret) if secret and ":" in secret else secret,
        event_type="AgentTermination",
    ),
    event=_web_service_event,
    phone_field="ani",
    note_field="note",
    order_field="uii",
    credential=basic_authorization,
    scenario_path="/engage/call-details",
    scenario_wire=lambda secret: WebServicesWire(
        credential=basic_authorization(secret) if secret else None,
        event_type="AgentTermination",
    ),
)

BUZZEASY = ProviderCase(
    name="buzzeasy",
    endpoint_toml="".join(
        f"""
[[endpoints]]
name = "buzzeasy-{slug}"
kind = "buzzeasy"
path = "/buzzeasy/{slug}"
event_type = "{hook}"
secret_env = ["FAULT_BUZZEASY_API_KEY", "FAULT_BUZZEASY_API_KEY_PREVIOUS"]
"""
        for slug, hook in [
            ("work-item-closed", "WorkItemClosed"),
            ("abandoned-conversation", "Abandoned Conversation"),
            ("outbound-call", "Outbound Call"),
        ]
    ),
    secret_env={
        "FAULT_BUZZEASY_API_KEY": "Bz5-buzzeasy-current-key-61fd",
        "FAULT_BUZZEASY_API_KEY_PREVIOUS": "Qa1-buzzeasy-previous-key-c3e2",
    },
    path="/buzzeasy/work-item-closed",
    wire=lambda secret: BuzzeasyWire(api_key=secret, event_type="WorkItemClosed"),
    event=_buzzeasy_event,
    phone_field="customerIdentifier",
    note_field="notes",
    order_field="primaryConversationId",
    scenario_path="/buzzeasy",
    scenario_wire=lambda secret: BuzzeasyWire(api_key=secret, url_per_type=True),
)

PROVIDER_CASES: tuple[ProviderCase, ...] = (ENREACH, ENGAGE_WFM, ENGAGE_WEB_SERVICES, BUZZEASY)
"""Every provider the receiver supports; one entry each."""

PROVIDERS = [pytest.param(case, id=case.name) for case in PROVIDER_CASES]
"""`PROVIDER_CASES` as parameters: `@pytest.mark.parametrize("provider", PROVIDERS)`."""

PROVIDERS_ON_ENGINES = [
    pytest.param(case, ENGINES[n % len(ENGINES)], id=f"{case.name}-{ENGINES[n % len(ENGINES)]}")
    for n, case in enumerate(PROVIDER_CASES)
]
"""Each provider once, on the engines in turn, for `("provider", "engine")`: every provider
and every engine is covered without running the whole product of the two (the engines
treat slow clients and shutdown alike whatever the path). Both engines are hardened alike
(a deadline per request, `Connection: close` after an early answer, a bounded stop; README,
"Engines"), so every fault, fuzz and shutdown case runs on both this way."""

"""examples/all_providers.toml: one listener serving all four providers, over real TLS."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from handlers import BuzzeasyHandler, WfmHandler
from handlers.buzzeasy import WorkItemClosed
from handlers.engage import AgentStateEvent
from receiver.auth import SecretSet
from receiver.certs import DevCertificates
from receiver.commands.providers import sample
from receiver.config import EndpointConfig
from receiver.exceptions import ConfigError
from receiver.pytest_plugin import ReceiverFactory
from receiver.sender import (
    BuzzeasyWire,
    EnreachWire,
    WebServicesWire,
    WfmWire,
    WireFormat,
    basic_authorization,
)
from tests.conftest import ROOT, run_cli
from tests.support.e2e import ConfiguredReceiver, load_payload, module_receiver

CONFIG = (ROOT / "examples" / "all_providers.toml").read_text()
ENV = {
    "RECEIVER_ENREACH_SECRET": "enreach-secret-31c9",
    "RECEIVER_ENGAGE_WFM_SECRET": basic_authorization("aladdin:opensesame"),
    "RECEIVER_ENGAGE_WEB_SERVICES_SECRET": "engage-ws:pa55-w0rd",
    "RECEIVER_BUZZEASY_SECRET": "buzzeasy-key-6e02",
}
# (endpoint, path, receiver send arguments, the sender's secret variable and value)
SENDS = [
    ("enreach", "/enreach", ["QueueCallInUserConnected"],
     {"RECEIVER_ENREACH_SECRET": ENV["RECEIVER_ENREACH_SECRET"]}),
    ("engage-wfm-agents", "/engage/wfm/agents",
     ["AgentState", "--provider", "engage_wfm", "--set", "event_type=COACHING"],
     {"RECEIVER_ENGAGE_WFM_SECRET": ENV["RECEIVER_ENGAGE_WFM_SECRET"]}),
    ("engage-wfm-agents", "/engage/wfm/agents",
     ["AgentLogin", "--provider", "engage_wfm", "--encoding", "json", "--method", "POST"],
     {"RECEIVER_ENGAGE_WFM_SECRET": ENV["RECEIVER_ENGAGE_WFM_SECRET"]}),
    ("engage-wfm-calls", "/engage/wfm/calls",
     ["EndCall", "--provider", "engage_wfm", "--encoding", "form"],
     {"RECEIVER_ENGAGE_WFM_SECRET": ENV["RECEIVER_ENGAGE_WFM_SECRET"]}),
    ("engage-call-details", "/engage/call-details",
     ["CallDetails", "--provider", "engage_web_services", "--basic",
      "--set", "callerNumber=+15550200123", "--set", "recordingUrl=#recording_url#"],
     {"RECEIVER_ENGAGE_WEB_SERVICES_SECRET": ENV["RECEIVER_ENGAGE_WEB_SERVICES_SECRET"]}),
    ("buzzeasy-work-item-closed", "/buzzeasy/work-item-closed",
     ["WorkItemClosed", "--provider", "buzzeasy"],
     {"RECEIVER_BUZZEASY_SECRET": ENV["RECEIVER_BUZZEASY_SECRET"]}),
    ("buzzeasy-abandoned-conversation", "/buzzeasy/abandoned-conversation",
     ["AbandonedConversation", "--provider", "buzzeasy"],
     {"RECEIVER_BUZZEASY_SECRET": ENV["RECEIVER_BUZZEASY_SECRET"]}),
    ("buzzeasy-outbound-call", "/buzzeasy/outbound-call",
     ["OutboundCall", "--provider", "buzzeasy", "--set", "targetPhoneNumber=+447700900001"],
     {"RECEIVER_BUZZEASY_SECRET": ENV["RECEIVER_BUZZEASY_SECRET"]}),
]  # fmt: skip

WIRES: dict[str, tuple[WireFormat, str]] = {
    "/enreach": (EnreachWire(secret=ENV["RECEIVER_ENREACH_SECRET"]), "QueueCallInArrived"),
    "/engage/wfm/agents": (WfmWire(credential=ENV["RECEIVER_ENGAGE_WFM_SECRET"]), "AgentState"),
    "/engage/wfm/calls": (WfmWire(credential=ENV["RECEIVER_ENGAGE_WFM_SECRET"]), "EndCall"),
    "/engage/call-details": (
        WebServicesWire(credential=basic_authorization(ENV["RECEIVER_ENGAGE_WEB_SERVICES_SECRET"])),
        "CallDetails",
    ),
    "/buzzeasy/work-item-closed": (
        BuzzeasyWire(api_key=ENV["RECEIVER_BUZZEASY_SECRET"]),
        "WorkItemClosed",
    ),
}


@pytest.fixture(scope="module")
def everything(
    tmp_path_factory: pytest.TempPathFactory, tls_ca: DevCertificates
) -> Iterator[ConfiguredReceiver]:
    """The receiver of examples/all_providers.toml, with the recording handler."""
    yield from module_receiver(tmp_path_factory, tls_ca, CONFIG, ENV)


def test_the_example_config_serves_every_provider_on_its_path(
    everything: ConfiguredReceiver,
) -> None:
    for _, path, arguments, secret in SENDS:
        for command in ("send", "trigger"):  # a retry of the same event under the alias
            result = run_cli(
                command, everything.url(path), *arguments, "--seed", "11",
                "--cacert", str(everything.harness.certs.ca), "--retries", "0",
                cwd=everything.harness.tmp_path, env=secret,
            )  # fmt: skip
            assert result.returncode == 0, (path, result.stdout, result.stderr)
            assert "acknowledged" in result.stdout
    expected = Counter(endpoint for endpoint, *_ in SENDS)
    everything.wait_for_handled(len(SENDS))
    assert everything.by_source() == dict(expected)
    assert len(everything.ended()) == len(SENDS)


@pytest.mark.parametrize("path", list(WIRES))
def test_each_endpoint_refuses_a_forged_credential(
    everything: ConfiguredReceiver, path: str
) -> None:
    wire, event_type = WIRES[path]
    payload = sample(wire.provider, event_type, seed=99)
    before = everything.by_source()
    response = everything.deliver(wire.forged().build(everything.url(path), payload))
    assert response.status_code == 401
    assert response.content == b""
    assert everything.by_source() == before


@pytest.mark.parametrize(
    ("arguments", "shown"),
    [
        (["AgentState", "--provider", "engage_wfm"], "GET "),
        (
            ["EndCall", "--provider", "engage_wfm", "--encoding", "json"],
            "Content-Type: application/json",
        ),
        (
            ["CallDetails", "--provider", "engage_web_services", "--body", "xml", "--basic"],
            "<call>",
        ),
        (["OutboundCall", "--provider", "buzzeasy"], "x-api-key: ***"),
    ],
)
def test_dry_runs_show_each_wire_format_with_the_credential_hidden(
    everything: ConfiguredReceiver, arguments: list[str], shown: str
) -> None:
    result = run_cli(
        "send", everything.url("/x"), *arguments, "--dry-run", cwd=everything.harness.tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert shown in result.stdout
    assert all(secret not in result.stdout for secret in ENV.values())


def test_a_provider_option_that_does_not_apply_is_refused(everything: ConfiguredReceiver) -> None:
    result = run_cli(
        "send", everything.url("/enreach"), "QueueCallInArrived", "--encoding", "json",
        "--dry-run", cwd=everything.harness.tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--encoding applies to engage_wfm, not enreach" in result.stderr


class Closed(BuzzeasyHandler):
    """Collects the work items it is handed."""

    def __init__(self) -> None:
        super().__init__()
        self.closed: list[WorkItemClosed] = []

    async def on_work_item_closed(self, event: WorkItemClosed) -> None:
        self.closed.append(event)


class States(WfmHandler):
    """Collects the agent states it is handed."""

    def __init__(self) -> None:
        super().__init__()
        self.states: list[str] = []

    async def on_agent_state(self, event: AgentStateEvent) -> None:
        self.states.append(f"{event.prev_state}>{event.event_type}")


def test_the_pytest_plugin_runs_a_buzzeasy_handler(webhook_receiver: ReceiverFactory) -> None:
    handler = Closed()
    endpoint = EndpointConfig(
        "hooks", "buzzeasy", "/hooks", secrets=SecretSet(["k1"]),
        options={"event_type": "WorkItemClosed"},
    )  # fmt: skip
    receiver = webhook_receiver(handler, endpoint=endpoint)
    with receiver.sender(BuzzeasyWire(api_key="k1")) as sender:
        assert sender.send(load_payload("buzzeasy", "work-item-closed")).acknowledged
    receiver.wait_for_handled(1)
    [event] = handler.closed
    assert event.primary_conversation_id == "48fad19d15104c8fbd7344853f35019e"


def test_the_pytest_plugin_runs_a_wfm_handler(webhook_receiver: ReceiverFactory) -> None:
    handler = States()
    credential = basic_authorization("wfm:pw")
    endpoint = EndpointConfig("wfm", "engage_wfm", "/wfm", secrets=SecretSet([credential]))
    receiver = webhook_receiver(handler, endpoint=endpoint)
    with receiver.sender(WfmWire(credential=credential, encoding="json")) as sender:
        for name in ("login-pair-1", "login-pair-2", "login-pair-1"):
            assert sender.send(load_payload("engage_wfm", name)).acknowledged
    receiver.wait_for_handled(2)
    assert sorted(handler.states) == ["AVAILABLE>AVAILABLE", "LOGIN>AVAILABLE"]
    with pytest.raises(ConfigError, match="handles engage_wfm events, not enreach"):
        webhook_receiver(States())

"""Start-up loads every handler and refuses, in one line, one that could not work.

Plain `def` methods (the dispatcher awaits them), `on_*` names no event type routes to, module
files given as paths, and whatever the handler module raises while it is imported.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SECRET, Harness, enreach_event, post_event
from tests.support.startup import assert_refused, serve

ENV = {"RECEIVER_ENREACH_SECRET": SECRET}
HEAD = "from handlers import EnreachHandler, WfmHandler\n\n\n"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (
            "class MyBridge(EnreachHandler):\n"
            "    def on_queue_call_in_user_connected(self, event):\n"
            "        print('a CRM call on every attempt')\n",
            "MyBridge.on_queue_call_in_user_connected must be defined with async def",
        ),
        (
            "class MyBridge(EnreachHandler):\n    def on_error(self, event, stored, error):\n"
            "        pass\n",
            "MyBridge.on_error must be defined with async def",
        ),
        (
            "class Base(EnreachHandler):\n    def on_any(self, event):\n        pass\n\n"
            "class MyBridge(Base):\n    pass\n",
            "Base.on_any must be defined with async def",
        ),
        (
            "class MyBridge:\n    def handle(self, event):\n        pass\n"
            "    async def failed(self, event, error, *, final):\n        pass\n",
            "MyBridge.handle must be defined with async def",
        ),
        (
            "class MyBridge(EnreachHandler):\n"
            "    async def on_queue_call_in_user_conected(self, event):\n        pass\n",
            "MyBridge.on_queue_call_in_user_conected matches no Enreach event type; "
            "did you mean on_queue_call_in_user_connected?",
        ),
        (
            "class MyBridge(EnreachHandler):\n    async def on_crm_ready(self):\n        pass\n",
            "MyBridge.on_crm_ready matches no Enreach event type (a helper method's name must "
            "not start with on_)",
        ),
        (
            "MyBridge = EnreachHandler()\n\n@MyBridge.on('QueueCallInUserConnected')\n"
            "def connected(event):\n    pass\n",
            "cannot import handler module 'bridge': bridge.py:6: TypeError: connected handles "
            "QueueCallInUserConnected: define it with async def",
        ),
    ],
    ids=[
        "plain-event-method",
        "plain-on-error",
        "plain-inherited-on-any",
        "plain-handle",
        "misspelt-event-method",
        "helper-named-on",
        "plain-decorated-function",
    ],
)
def test_refuses_a_handler_method_that_could_never_run(
    tmp_path: Path, source: str, reason: str
) -> None:
    (tmp_path / "bridge.py").write_text(HEAD + source)
    assert_refused(serve(tmp_path, "--handler", "bridge:MyBridge", env=ENV), reason)


@pytest.mark.parametrize(
    ("method", "reason"),
    [
        (
            "    def on_agent_state(self, event):\n        pass\n",
            "Agents.on_agent_state must be defined with async def",
        ),
        (
            "    async def on_agent_logon(self, event):\n        pass\n",
            "Agents.on_agent_logon matches no Engage WFM event type; did you mean on_agent_login?",
        ),
    ],
    ids=["plain", "misspelt"],
)
def test_checks_handlers_named_in_the_config_file(tmp_path: Path, method: str, reason: str) -> None:
    (tmp_path / "agents.py").write_text(HEAD + "class Agents(WfmHandler):\n" + method)
    (tmp_path / "receiver.toml").write_text(
        '[[endpoints]]\nname = "enreach"\nsecret_env = "RECEIVER_ENREACH_SECRET"\n\n'
        '[[endpoints]]\nname = "wfm"\nkind = "engage_wfm"\nsecret_env = "WFM_TOKEN"\n'
        'handler = "agents:Agents"\n'
    )
    result = serve(tmp_path, env={**ENV, "WFM_TOKEN": "t"})
    assert_refused(result, reason)


def test_an_unknown_method_where_event_types_are_configured_is_only_a_warning(
    harness: Harness,
) -> None:
    (harness.tmp_path / "calls.py").write_text(
        "from handlers import WebServicesHandler\n\n\n"
        "class Calls(WebServicesHandler):\n"
        "    async def on_agent_terminaton(self, event):\n        pass\n\n"
        "    async def on_supervisor_review(self, event):\n        pass\n"
    )
    config = harness.tmp_path / "receiver.toml"
    config.write_text(
        '[[endpoints]]\nname = "calls"\nkind = "engage_web_services"\nbasic_users_env = "WS"\n'
        'event_type = "AgentTermination"\nhandler = "calls:Calls"\n\n'
        '[[endpoints]]\nname = "reviews"\nkind = "engage_web_services"\nbasic_users_env = "WS"\n'
        'path = "/reviews"\nevent_type = "SupervisorReview"\nhandler = "calls:Calls"\n'
    )
    receiver = harness.receiver("--config", str(config), handler=None, env={"WS": "user:pw"})
    assert (
        "Calls.on_agent_terminaton matches no Engage Web Services event type documented or "
        "configured for its endpoints (AgentTermination, SupervisorReview); did you mean "
        "on_agent_termination?"
    ) in receiver.log
    assert "on_supervisor_review" not in receiver.log  # its endpoint names SupervisorReview


# -- loading the module ------------------------------------------------------------------------


def test_a_handler_file_given_as_a_path_is_loaded_with_its_folder_importable(
    harness: Harness,
) -> None:
    hooks = harness.tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "crm.py").write_text(
        "import json, os\n\n\ndef log_call(key, caller):\n"
        "    with open(os.environ['RECORD_FILE'], 'a') as f:\n"
        "        f.write(json.dumps({'phase': 'end', 'key': key, 'caller': caller}) + '\\n')\n"
    )
    (hooks / "bridge.py").write_text(
        "import crm\nfrom handlers import EnreachHandler\n\n\n"
        "class MyBridge(EnreachHandler):\n"
        "    async def on_queue_call_in_user_connected(self, event):\n"
        "        crm.log_call(str(event.id), event.caller_number)\n"
    )
    receiver = harness.receiver(handler="./hooks/bridge.py:MyBridge")
    event = enreach_event("QueueCallInUserConnected")
    with harness.client() as client:
        assert post_event(client, receiver.url(), event).status_code == 200
    harness.wait_for(lambda: harness.handled_keys() == [event["Id"]])
    assert harness.records()[0]["caller"] == "+358501231234"


@pytest.mark.parametrize(
    ("source", "spec", "reason"),
    [
        (
            HEAD + "class MyBridge(EnreachHandler)\n    pass\n",
            "bridge:MyBridge",
            "cannot import handler module 'bridge': bridge.py:4: SyntaxError: ",
        ),
        (
            HEAD + "class MyBridge(EnreachHandler)\n    pass\n",
            "./bridge.py:MyBridge",
            "cannot import handler module 'bridge': bridge.py:4: SyntaxError: ",
        ),
        (
            "import os\n\nCRM_URL = os.environ['CRM_URL']\n",
            "bridge:MyBridge",
            "cannot import handler module 'bridge': bridge.py:3: KeyError: 'CRM_URL'",
        ),
        (
            "import crm_client\n",
            "bridge.py:MyBridge",
            "bridge.py:1: ModuleNotFoundError: No module named 'crm_client'",
        ),
        (
            HEAD + "class MyBridge(EnreachHandler):\n    def __init__(self):\n"
            "        raise RuntimeError('no CRM token')\n",
            "bridge:MyBridge",
            "cannot create handler bridge:MyBridge: bridge.py:6: RuntimeError: no CRM token",
        ),
        ("", "./nope.py:MyBridge", "handler file ./nope.py not found"),
        ("", "./bridge:MyBridge", "handler file ./bridge must be a .py file"),
        ("", "hooks/json.py:MyBridge", "the module name 'json' is taken by "),
    ],
    ids=[
        "syntax-error",
        "syntax-error-path",
        "raises",
        "missing-dependency",
        "constructor-raises",
        "no-file",
        "not-a-py-file",
        "shadowed-name",
    ],
)
def test_refuses_a_handler_module_that_does_not_load(
    tmp_path: Path, source: str, spec: str, reason: str
) -> None:
    (tmp_path / "bridge.py").write_text(source)
    (tmp_path / "hooks").mkdir()
    (tmp_path / "hooks" / "json.py").write_text("MyBridge = None\n")
    assert_refused(serve(tmp_path, "--handler", spec, env=ENV), reason)

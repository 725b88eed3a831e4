"""A secret that reaches the log by any path comes out masked, and the stored dead letter that
`receiver inbox show` prints holds it masked too, while the secret is still accepted.

The handler (`tests.support.leaky`) leaks every configured secret of its endpoint, raw, as a
Basic `user:password`, its password alone and its base64 `Authorization` header: in its own
log calls, in the message of the exception it fails with (logged by the dispatcher and stored
as the dead letter's error) and in a traceback from its failure hook.
"""

from __future__ import annotations

import orjson
import pytest

from tests.conftest import Harness, run_cli
from tests.support.faults import deliver, provider_receiver
from tests.support.leaky import leaked_forms
from tests.support.provider_cases import PROVIDERS, ProviderCase


@pytest.mark.parametrize("provider", PROVIDERS)
def test_secrets_a_handler_leaks_are_masked_in_the_log_and_the_dead_letter(
    harness: Harness, provider: ProviderCase
) -> None:
    receiver = provider_receiver(
        harness, provider, "--max-attempts", "1",
        env={"LEAK_SECRETS": "\n".join(provider.secrets)},
        handler="tests.support.leaky:Leaky",
    )  # fmt: skip
    with harness.client() as client:
        for secret in provider.secrets:  # both still accepted
            request = provider.request(receiver.url(provider.path), token=secret)
            assert deliver(client, request).status_code == 200
    harness.wait_for(lambda: receiver.log.count("is a dead letter") == 2, what="dead letters")
    harness.wait_for(
        lambda: receiver.log.count("failure hook raised") == 2, what="the hooks' tracebacks"
    )
    inbox = ["inbox", "--inbox", str(receiver.inbox)]
    dead = orjson.loads(run_cli(*inbox, "dead", "--json", cwd=harness.tmp_path).stdout)
    assert len(dead) == 2
    shown = "".join(
        run_cli(*inbox, "show", str(letter["id"]), *extra, cwd=harness.tmp_path).stdout
        for letter in dead
        for extra in ([], ["--json"])
    )
    assert receiver.stop() == 0
    log = receiver.log
    for where, text in [("the log", log), ("`receiver inbox show`", shown)]:
        for secret in provider.secrets:
            leaked = [form for form in leaked_forms(secret) if form in text]
            assert not leaked, f"{where} shows {leaked}:\n{text[-3000:]}"
        assert "PermissionError: the CRM refused [secret]" in text
    assert "calling the CRM for event" in log and "could not report to the CRM with" in log

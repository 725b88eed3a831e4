"""A receiver for the console's tests: an Enreach endpoint with two subscribers, `crm`
(`tests.support.picky.Picky`: fails one caller's events while a flag file names the caller)
and `audit` (records everything), two attempts before a dead letter."""

from __future__ import annotations

from pathlib import Path

from receiver.catalogs.samples import enreach_sample
from receiver.inbox.base import open_admin
from receiver.inbox.models import EventFilter, State
from receiver.sender import EnreachWire, SyncSender
from receiver.testing import ReceiverProcess
from tests.conftest import SECRET, Harness

__all__ = ["CONFIG", "crm_states", "dead_letter", "start"]

CONFIG = """
[[endpoints]]
name = "enreach"
kind = "enreach"
path = "/enreach"
secret_env = ["RECEIVER_ENREACH_SECRET"]

[[endpoints.subscribers]]
name = "crm"
handler = "tests.support.picky:Picky"

[[endpoints.subscribers]]
name = "audit"
handler = "tests.support.subscribers:Recorder"
"""
"""Two subscribers: `crm` fails one caller's events while the flag file names them."""


def start(harness: Harness, flag: Path, env: dict[str, str] | None = None) -> ReceiverProcess:
    """`receiver serve` with the crm and audit subscribers; `flag` names the caller crm
    fails (PICKY_FLAG); handled events go to `handled.jsonl` in the test's folder."""
    config = harness.tmp_path / "receiver.toml"
    config.write_text(CONFIG)
    environment = {
        "PICKY_FLAG": str(flag),
        "SUBSCRIBERS_RECORD_FILE": str(harness.tmp_path / "handled.jsonl"),
        **(env or {}),
    }
    return harness.receiver(
        "--config", str(config), "--max-attempts", "2", env=environment, handler=None
    )


def crm_states(receiver: ReceiverProcess) -> dict[str, int]:
    """The crm subscriber's deliveries by state."""
    admin = open_admin(str(receiver.inbox))
    try:
        return admin.stats().by_subscriber.get("crm", {})
    finally:
        admin.close()


def dead_letter(harness: Harness, receiver: ReceiverProcess, number: str) -> str:
    """Send one call event from `number` (which the flag file names) and wait until crm gave
    up on it; its event id."""
    payload = enreach_sample("QueueCallInArrived", overrides={"CallerNumber": number})
    with SyncSender(
        receiver.url("/enreach"), provider=EnreachWire(secret=SECRET), verify=harness.certs.ca
    ) as sender:
        assert sender.send(payload).acknowledged
    harness.wait_for(lambda: crm_states(receiver).get("dead") == 1, what="a dead letter")
    admin = open_admin(str(receiver.inbox))
    try:
        (dead,) = admin.list(EventFilter(states=(State.DEAD,)))
    finally:
        admin.close()
    return str(dead.id)

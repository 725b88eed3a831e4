"""The example on this machine: the stand-in gateway and `receiver serve` with `SmsFeedback`.

`LocalStack` is what `python -m examples.sms_feedback` and the test both run: a fresh
folder (certificates, inbox, the SMS table), secrets made up on the spot, the stand-in gateway
on a free loopback port, and the real receiver as a child process with receiver.toml. It
can kill and start the receiver again on the same files, as a crash and a restart would.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from examples.sms_feedback.standin import StandInGateway
from examples.sms_feedback.store import FeedbackStore, Row
from receiver.catalogs.samples import enreach_sample
from receiver.sender import Delivery, EnreachWire, SyncSender
from receiver.testing import ReceiverProcess, throwaway_certificates

__all__ = ["ROOT", "LocalStack", "answered_call", "quiet_window"]

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).resolve().parent / "receiver.toml"
ZONE = "Europe/Helsinki"


def quiet_window(until: datetime, zone: str = ZONE) -> str:
    """`SMS_QUIET_HOURS` for quiet hours that began an hour ago and end at `until`."""
    end = until.astimezone(ZoneInfo(zone))
    start = end - timedelta(hours=1)
    return f"{start:%H:%M:%S}-{end:%H:%M:%S}"


class LocalStack:
    """The gateway stand-in and one receiver in `workdir`; `sms` overrides SMS_* settings."""

    def __init__(
        self, workdir: Path, *, sms: Mapping[str, str] | None = None, hold_first: float = 0.0
    ) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.enreach_secret = secrets.token_urlsafe(24)
        self.gateway = StandInGateway(secrets.token_urlsafe(24), hold_first=hold_first).start()
        self.certs = throwaway_certificates(workdir / "certs")
        self.database = workdir / "sms_feedback.db"
        self.env = {
            "PYTHONPATH": str(ROOT),
            "SMS_GATEWAY_URL": self.gateway.url,
            "SMS_GATEWAY_TOKEN": self.gateway.token,
            "SMS_DATABASE": str(self.database),
            "SMS_DELAY_SECONDS": "2",
            "SMS_QUIET_HOURS": "off",
            "SMS_TIME_ZONE": ZONE,
            "SMS_INTERNAL_PREFIXES": "+35810",
            "SMS_GATEWAY_TIMEOUT": "2",
            **(sms or {}),
        }
        self.receiver = self._receiver()
        self._sender: SyncSender | None = None

    def _receiver(self) -> ReceiverProcess:
        return ReceiverProcess(
            self.workdir,
            certs=self.certs,
            secret=self.enreach_secret,
            args=["--config", str(CONFIG)],
            env=self.env,
        )

    @property
    def url(self) -> str:
        """The Enreach endpoint's URL."""
        return self.receiver.url("/enreach")

    def start(self) -> LocalStack:
        """Start the receiver and wait until it answers."""
        self.receiver.start()
        return self

    def crash_and_restart(self) -> None:
        """SIGKILL the receiver, then start it again on the same port, inbox and table."""
        self.receiver.kill()
        self.receiver.start()

    def restart(self) -> None:
        """Stop the receiver gracefully, then start it again."""
        self.receiver.stop()
        self.receiver.start()

    def close(self) -> None:
        """Stop the receiver and the gateway."""
        if self._sender is not None:
            self._sender.close()
        try:
            self.receiver.close()
        finally:
            self.gateway.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def scenario(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `receiver scenario` at the endpoint with `args`; raise unless it exits 0."""
        command = [sys.executable, "-m", "receiver", "scenario", self.url]
        command += ["--cacert", str(self.certs.ca), *args]
        env = {**os.environ, "RECEIVER_ENREACH_SECRET": self.enreach_secret}
        return subprocess.run(command, env=env, check=True, capture_output=True, text=True)

    def send(self, payload: Mapping[str, Any]) -> Delivery:
        """Send one Enreach payload; raise unless it is acknowledged."""
        if self._sender is None:
            self._sender = SyncSender(
                self.url, provider=EnreachWire(self.enreach_secret), verify=self.certs.ca
            )
        delivery = self._sender.send(payload)
        if not delivery.acknowledged:
            raise RuntimeError(f"{payload['EventType']} was not acknowledged: {delivery.status}")
        return delivery

    def rows(self) -> list[Row]:
        """The SMS table as it is now."""
        return FeedbackStore(self.database).rows()


def answered_call(caller: str, *, queue: str = "Asiakaspalvelu") -> list[dict[str, Any]]:
    """The two events of a queue call an agent answered and that then ended (fresh Ids)."""
    call = {"CallId": str(uuid.uuid4()), "CallerNumber": caller, "QueueName": queue}
    now = datetime.now().replace(microsecond=0)
    connected = enreach_sample(
        "QueueCallInUserConnected", overrides={**call, "Timestamp": now.isoformat()}
    )
    ended = enreach_sample(
        "QueueCallInDisconnected",
        overrides={
            **call,
            "Timestamp": (now + timedelta(seconds=90)).isoformat(),
            "Reason": "remote",
        },
    )
    return [connected, ended]

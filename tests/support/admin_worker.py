"""`receiver worker` as a child process whose admin listener the test reads (tests/test_metrics.py,
tests/test_readiness.py): on a free loopback port of its own, with the test's certificate, in
an environment without the test session's RECEIVER_ variables.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import pytest

from receiver.certs import DevCertificates
from receiver.testing.process import free_port
from tests.conftest import ROOT

__all__ = ["AdminWorker"]


class AdminWorker:
    """`receiver worker ARGS` with its admin listener on 127.0.0.1:`admin_port`; stopped (by
    its PID) on leaving a `with` block."""

    def __init__(
        self,
        workdir: Path,
        args: Sequence[str],
        *,
        certs: DevCertificates,
        env: Mapping[str, str] | None = None,
        name: str = "worker",
    ) -> None:
        self.name = name
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self.admin_port = free_port()
        """The admin listener's port."""
        self.command = [sys.executable, "-m", "receiver", "worker", *args]
        self.command += ["--cert", str(certs.cert), "--key", str(certs.key)]
        self.command += ["--admin-host", "127.0.0.1", "--admin-port", str(self.admin_port)]
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("RECEIVER_")}
        self.env = {**inherited, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def admin_url(self, path: str) -> str:
        """The full URL of an admin listener path."""
        return f"https://127.0.0.1:{self.admin_port}{path}"

    @property
    def log(self) -> str:
        """Everything it wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, *, wait_for: str = "worker dispatching", timeout: float = 30) -> None:
        """Start it and wait until its output says `wait_for`."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while wait_for not in self.log:
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.proc.returncode}:\n{self.log}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {wait_for!r} from {self.name} after {timeout}s:\n{self.log}")
            time.sleep(0.05)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM; its exit status."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def __enter__(self) -> AdminWorker:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

"""`receiver serve` run to be refused: the one line and exit status 2 the README promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def serve(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run `receiver serve` expecting it to exit by itself (it refuses to start)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RECEIVER_")}
    # Any free admin port (unless `env` names one): never the default 9443, which another
    # receiver on this machine may hold, so that a refusal is for the reason the test gives.
    environment.update({"PYTHONPATH": str(ROOT), "RECEIVER_ADMIN_PORT": "0", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "receiver", "serve", "--host", "127.0.0.1", "--port", "0", *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_refused(result: subprocess.CompletedProcess[str], reason: str) -> None:
    """Exit status 2 and exactly one line on stderr, holding `reason`."""
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr  # one line, no traceback
    assert reason in lines[0], lines[0]

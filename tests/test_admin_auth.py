"""Who may use the admin listener, against real processes.

Off loopback the listener needs a token: without one `receiver serve` and `receiver worker`
refuse to start (one line, exit status 2). With one, a receiver whose admin listener is bound to
a non-loopback address, in a network namespace this test makes (`unshare --net`, the address
added to its loopback device, nothing reachable from outside), answers `/metrics` only to
`Authorization: Bearer <token>` (curl, from inside the namespace), leaves `/healthz` and
`/readyz` open, and never writes the token to its log or command line. The token may come from
RECEIVER_ADMIN_TOKEN or from the file RECEIVER_ADMIN_TOKEN_FILE names (one per line: a
rotation accepts both); a short one is refused.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from receiver.certs import DevCertificates
from tests.conftest import ROOT, SECRET

ADDRESS = "10.66.0.1"
"""The admin listener's address: on the namespace's own loopback device, reachable by nothing
outside it."""
PORT = 9443
"""`receiver serve`'s default admin port (free in a namespace of our own)."""


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without its RECEIVER_ variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECEIVER_")}
    return {**env, "PYTHONPATH": str(ROOT), "RECEIVER_ENREACH_SECRET": SECRET, **extra}


def receiver_command(role: str, tmp_path: Path, certs: DevCertificates, *args: str) -> list[str]:
    """`receiver serve` (on an ephemeral loopback port) or `receiver worker`, with `certs`."""
    command = [sys.executable, "-m", "receiver", role, "--inbox", str(tmp_path / "inbox.db")]
    command += ["--cert", str(certs.cert), "--key", str(certs.key)]
    if role == "serve":
        command += ["--host", "127.0.0.1", "--port", "0"]
    return [*command, *args]


def refused(command: list[str], env: dict[str, str], cwd: Path) -> str:
    """Run a command that must refuse to start; its one-line error."""
    result = subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("receiver: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("role", ["serve", "worker"])
@pytest.mark.parametrize("host", ["0.0.0.0", ADDRESS, "::"])  # noqa: S104 - refused, never bound
def test_a_non_loopback_admin_listener_without_a_token_is_refused(
    tmp_path: Path, tls_ca: DevCertificates, role: str, host: str
) -> None:
    command = receiver_command(role, tmp_path, tls_ca, "--admin-host", host, "--admin-port", "0")
    error = refused(command, environment(), tmp_path)
    assert error.startswith(
        f"receiver: the admin listener on {host} would be reachable from the network without a "
        "token: set RECEIVER_ADMIN_TOKEN or RECEIVER_ADMIN_TOKEN_FILE"
    ), error


@pytest.mark.parametrize("where", ["variable", "file"])
def test_a_short_admin_token_is_refused(
    tmp_path: Path, tls_ca: DevCertificates, where: str
) -> None:
    short = "too-short-token"  # 15 characters
    if where == "variable":
        env = environment(RECEIVER_ADMIN_TOKEN=short)
    else:
        (tmp_path / "admin-token").write_text(f"{secrets.token_hex(16)}\n{short}\n")
        env = environment(RECEIVER_ADMIN_TOKEN_FILE=str(tmp_path / "admin-token"))
    command = receiver_command("serve", tmp_path, tls_ca, "--admin-port", "0")
    error = refused(command, env, tmp_path)
    assert error == (
        "receiver: the admin token must be at least 16 characters (e.g. `openssl rand -hex 32`)"
    )
    assert short not in error


# -- a token, off loopback, in a network namespace --------------------------------------------


def unshare() -> list[str]:
    """A network namespace of its own (as root; else in a user namespace too)."""
    if os.geteuid() == 0:
        return ["unshare", "--net", "--"]
    return ["unshare", "--map-root-user", "--net", "--"]


class NamespacedReceiver:
    """`receiver serve` alone in a network namespace, its admin listener on ADDRESS:PORT;
    reached with curl run inside that namespace."""

    def __init__(self, tmp_path: Path, certs: DevCertificates, env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.certs = certs
        self.log_path = tmp_path / "receiver.log"
        script = f'ip link set lo up && ip addr add {ADDRESS}/24 dev lo && exec "$@"'
        command = receiver_command("serve", tmp_path, certs, "--admin-host", ADDRESS)
        command += ["--admin-port", str(PORT), "--log-level", "debug"]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*unshare(), "sh", "-c", script, "sh", *command],
                env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    @property
    def log(self) -> str:
        """Everything it wrote so far."""
        return self.log_path.read_text(errors="replace")

    def curl(self, path: str, *headers: str) -> tuple[int, str, str]:
        """GET `path` of the admin listener from inside the namespace: status, headers, body."""
        enter = ["nsenter", "--target", str(self.proc.pid), "--net"]
        if os.geteuid() != 0:
            enter += ["--user", "--preserve-credentials"]
        head, body = self.tmp_path / "head.txt", self.tmp_path / "body.txt"
        command = [*enter, "curl", "--silent", "--show-error", "--max-time", "10"]
        command += ["--cacert", str(self.certs.ca), "--resolve", f"localhost:{PORT}:{ADDRESS}"]
        command += [
            "--dump-header",
            str(head),
            "--output",
            str(body),
            "--write-out",
            "%{http_code}",
        ]
        for header in headers:
            command += ["--header", header]
        result = subprocess.run(
            [*command, f"https://localhost:{PORT}{path}"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            return 0, result.stderr, ""
        return int(result.stdout), head.read_text(), body.read_text()

    def wait_ready(self) -> None:
        """Wait until `/healthz` answers 200 inside the namespace."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"exited with {self.proc.returncode}:\n{self.log}"
            if self.curl("/healthz")[0] == 200:
                return
            time.sleep(0.2)
        pytest.fail(f"the admin listener never answered:\n{self.log}")

    def stop(self) -> int:
        """SIGTERM; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


@pytest.fixture
def namespaced(tmp_path: Path, tls_ca: DevCertificates) -> Iterator[list[NamespacedReceiver]]:
    """Receivers started in namespaces by the test; stopped after it."""
    started: list[NamespacedReceiver] = []
    try:
        yield started
    finally:
        for receiver in started:
            receiver.stop()


@pytest.mark.parametrize("where", ["variable", "file"])
def test_off_loopback_metrics_need_the_bearer_token_and_health_stays_open(
    tmp_path: Path, tls_ca: DevCertificates, namespaced: list[NamespacedReceiver], where: str
) -> None:
    token, previous = secrets.token_hex(32), secrets.token_urlsafe(24)
    if where == "variable":
        env = environment(RECEIVER_ADMIN_TOKEN=token)
        accepted = [token]
    else:  # a rotation: the new token and the old one, both accepted
        (tmp_path / "admin-token").write_text(f"{token}\n{previous}\n")
        env = environment(RECEIVER_ADMIN_TOKEN_FILE=str(tmp_path / "admin-token"))
        accepted = [token, previous]
    receiver = NamespacedReceiver(tmp_path, tls_ca, env)
    namespaced.append(receiver)
    receiver.wait_ready()
    assert f"admin: https://{ADDRESS}:{PORT}/" in receiver.log

    status, head, body = receiver.curl("/metrics")
    assert status == 401, body
    assert 'www-authenticate: bearer realm="receiver admin"' in head.lower()
    for wrong in (
        f"Authorization: Bearer {token[:-1]}",
        f"Authorization: Basic {token}",
        f"Authorization: {token}",
        f"X-Admin-Token: {token}",
    ):
        assert receiver.curl("/metrics", wrong)[0] == 401, wrong
    for good in accepted:
        status, _, body = receiver.curl("/metrics", f"Authorization: Bearer {good}")
        assert status == 200 and "receiver_inbox_up 1.0" in body
    # Health and readiness stay open for balancers and orchestrators.
    for path in ("/healthz", "/readyz"):
        status, _, body = receiver.curl(path)
        assert status == 200, body
    assert receiver.stop() == 0
    for secret in accepted:
        assert secret not in receiver.log
    assert SECRET not in receiver.log


def test_the_token_is_not_on_the_command_line(
    tmp_path: Path, tls_ca: DevCertificates, namespaced: list[NamespacedReceiver]
) -> None:
    token = secrets.token_hex(32)
    receiver = NamespacedReceiver(tmp_path, tls_ca, environment(RECEIVER_ADMIN_TOKEN=token))
    namespaced.append(receiver)
    receiver.wait_ready()
    cmdline = Path(f"/proc/{receiver.proc.pid}/cmdline").read_bytes().decode()
    assert "receiver" in cmdline and token not in cmdline
    assert receiver.curl("/metrics", f"Authorization: Bearer {token}")[0] == 200

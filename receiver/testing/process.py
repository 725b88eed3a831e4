"""`receiver serve` as a child process on an ephemeral loopback port."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from receiver.certs import DevCertificates, write_dev_certificates

__all__ = ["ReceiverProcess", "free_port", "throwaway_certificates"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` now (for a listener that cannot be handed a socket)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def throwaway_certificates(directory: Path) -> DevCertificates:
    """A fresh CA and a certificate for localhost, 127.0.0.1 and ::1 in `directory`."""
    return write_dev_certificates(directory, ["localhost", "127.0.0.1", "::1"])


class ReceiverProcess:
    """`receiver serve` as a child process on an ephemeral loopback port.

    The test process binds the listening socket and hands it over with `--fd`, so the
    port is known before the child starts and stays the same across `kill` + `start`:
    connections made while the child is down wait in the socket's backlog.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        certs: DevCertificates,
        secret: str = "test-secret",  # noqa: S107 - a throwaway secret for a throwaway server
        handler: str | None = None,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.workdir = workdir
        self.certs = certs
        self.secret = secret
        self.handler = handler
        self.args = list(args)
        self.extra_env = dict(env or {})
        self.inbox = workdir / "inbox.db"
        self.log_path = workdir / "receiver.log"
        self.proc: subprocess.Popen[bytes] | None = None
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(1024)
        self.host = host
        self.port: int = self.sock.getsockname()[1]
        self.admin_port = free_port(host)
        """The admin listener's port (health, readiness, metrics, console)."""

    @property
    def base_url(self) -> str:
        """`https://127.0.0.1:PORT`."""
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{shown}:{self.port}"

    def url(self, path: str = "/enreach") -> str:
        """The full URL of an endpoint path."""
        return self.base_url + path

    def admin_url(self, path: str = "/readyz") -> str:
        """The full URL of an admin listener path."""
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{shown}:{self.admin_port}{path}"

    def command(self) -> list[str]:
        """The command line the child runs."""
        cmd = [sys.executable, "-m", "receiver", "serve", "--fd", str(self.sock.fileno())]
        cmd += ["--cert", str(self.certs.cert), "--key", str(self.certs.key)]
        cmd += ["--inbox", str(self.inbox)]
        cmd += ["--admin-host", self.host, "--admin-port", str(self.admin_port)]
        if self.handler:
            cmd += ["--handler", self.handler]
        return cmd + self.args

    def start(self, *, timeout: float = 20.0) -> None:
        """Start the child and wait until it answers its health check."""
        env = {**os.environ, "RECEIVER_ENREACH_SECRET": self.secret, **self.extra_env}
        env.setdefault("PYTHONUNBUFFERED", "1")
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=[self.sock.fileno()],
        )
        log.close()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        """Poll the admin listener's `/healthz` until it answers 200 (it starts once the
        receiver has); raise with the log if the child died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"receiver exited with {self.proc.returncode}:\n{self.log}")
            if self.certs.ca.exists():  # a receiver may create its certificates first
                context = ssl.create_default_context(cafile=str(self.certs.ca))
                try:
                    with httpx.Client(verify=context, timeout=2.0) as client:
                        if client.get(self.admin_url("/healthz")).status_code == 200:
                            return
                except httpx.HTTPError:
                    pass
            time.sleep(0.05)
        raise TimeoutError(f"receiver not ready after {timeout}s:\n{self.log}")

    @property
    def log(self) -> str:
        """Everything the child wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, *, timeout: float = 30.0) -> int:
        """SIGTERM, wait for a graceful exit; returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        return code

    def kill(self) -> None:
        """SIGKILL the child: a crash, as far as the inbox can tell."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        """Stop the child (if running) and close the listening socket."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.stop()
        finally:
            self.sock.close()

    def __enter__(self) -> ReceiverProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""`receiver serve` as a child process on an ephemeral loopback port."""

from __future__ import annotations

import os
import re
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


ADMIN_PORT_TRIES = 3
"""Starts a `ReceiverProcess` makes when another process took its admin port meanwhile."""

_FALSE = ("0", "false", "no", "off")
_ANNOUNCED = re.compile(r"^admin: https://\S+:(\d+)/", re.MULTILINE)
"""The line `receiver serve` prints at start naming its admin listener."""


def _option_value(args: Sequence[str], name: str) -> int | None:
    """The integer after `name` (or in `name=VALUE`) in `args`; None when absent."""
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return int(args[index + 1])
        if arg.startswith(name + "="):
            return int(arg.split("=", 1)[1])
    return None


def throwaway_certificates(directory: Path) -> DevCertificates:
    """A fresh CA and a certificate for localhost, 127.0.0.1 and ::1 in `directory`."""
    return write_dev_certificates(directory, ["localhost", "127.0.0.1", "::1"])


class ReceiverProcess:
    """`receiver serve` as a child process on an ephemeral loopback port.

    The test process binds the listening socket and hands it over with `--fd`, so the
    port is known before the child starts and stays the same across `kill` + `start`:
    connections made while the child is down wait in the socket's backlog. The admin listener
    (health, readiness, metrics) gets a free port of its own on the same host (`admin_url`);
    with `--no-admin` in `args` there is none, and `start` waits for the webhook port instead.
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
        admin_off = self.extra_env.get("RECEIVER_ADMIN", "").strip().lower() in _FALSE
        self.admin = "--no-admin" not in self.args and not admin_off
        """Whether the child runs the admin listener (not with `--no-admin` in `args` or
        RECEIVER_ADMIN=false in `env`)."""
        self._named_admin_port = _option_value(self.args, "--admin-port")
        self._own_admin_port = self._named_admin_port is None
        self.admin_port: int = self._named_admin_port or free_port(host)
        """The admin listener's port (health, readiness, metrics, console): a free one unless
        `args` name one (with `--admin-port 0`, the one the child announces once started)."""
        self._logged = 0

    @property
    def base_url(self) -> str:
        """`https://127.0.0.1:PORT`."""
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{shown}:{self.port}"

    def url(self, path: str = "/enreach") -> str:
        """The full URL of an endpoint path."""
        return self.base_url + path

    def admin_url(self, path: str = "/readyz") -> str:
        """The full URL of an admin listener path (ValueError with `--no-admin`)."""
        if not self.admin:
            raise ValueError("this receiver runs without its admin listener (--no-admin)")
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{shown}:{self.admin_port}{path}"

    def command(self) -> list[str]:
        """The command line the child runs."""
        cmd = [sys.executable, "-m", "receiver", "serve", "--fd", str(self.sock.fileno())]
        cmd += ["--cert", str(self.certs.cert), "--key", str(self.certs.key)]
        cmd += ["--inbox", str(self.inbox)]
        if self.admin and self._own_admin_port:
            cmd += ["--admin-host", self.host, "--admin-port", str(self.admin_port)]
        if self.handler:
            cmd += ["--handler", self.handler]
        return cmd + self.args

    def start(self, *, timeout: float = 20.0) -> None:
        """Start the child and wait until it answers its health check.

        The admin port is only known free when chosen, not held: should another process take
        it before the child binds it, the child refuses to start, and it is started again on
        another free port (at most `ADMIN_PORT_TRIES` times).
        """
        for tries_left in range(ADMIN_PORT_TRIES - 1, -1, -1):
            self._spawn()
            try:
                self.wait_ready(timeout)
                return
            except RuntimeError:
                said = self.log[self._logged :]
                lost = f"admin port {self.admin_port} on " in said and "already in use" in said
                if not (lost and self._own_admin_port and tries_left):
                    raise
            self.admin_port = free_port(self.host)

    def _spawn(self) -> None:
        self._logged = len(self.log)
        if self._named_admin_port == 0:
            self.admin_port = 0  # any free port again: learnt from what the child prints
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

    def wait_ready(self, timeout: float) -> None:
        """Poll the admin listener's `/healthz` until it answers 200 (it starts once the
        receiver has; without the admin listener, until the webhook port answers at all);
        raise with the log if the child died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"receiver exited with {self.proc.returncode}:\n{self.log}")
            if self.certs.ca.exists():  # a receiver may create its certificates first
                context = ssl.create_default_context(cafile=str(self.certs.ca))
                try:
                    with httpx.Client(verify=context, timeout=2.0) as client:
                        if self._answers(client):
                            return
                except httpx.HTTPError:
                    pass
            time.sleep(0.05)
        raise TimeoutError(f"receiver not ready after {timeout}s:\n{self.log}")

    def _answers(self, client: httpx.Client) -> bool:
        if self.admin:
            if self.admin_port == 0:  # any free port: the child names it
                found = _ANNOUNCED.search(self.log[self._logged :])
                if found is None:
                    return False
                self.admin_port = int(found.group(1))
            return client.get(self.admin_url("/healthz")).status_code == 200
        # The engine serves requests only once the app's start-up (the runtime's) is done:
        # any answer (a 404 here) means the receiver is up.
        client.get(self.url("/"))
        return True

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

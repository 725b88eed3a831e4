"""A real HAProxy in front of receivers: TLS passthrough, health checks over TLS.

    with HAProxy(["127.0.0.1:8443", "127.0.0.1:8444"], tmp_path, check_ports=[9443, 9543]) as p:
        p.wait_for_up(2)
        httpx.get(p.url("/enreach"), verify=...)  # TLS straight through to a receiver

The configuration is the one docs/scaling.md recommends, with short check intervals: `mode
tcp` (the receivers terminate TLS and keep their certificates), `balance roundrobin` per
connection, `option httpchk` on each receiver's readiness (`/readyz` on its admin listener:
`check port N`, over TLS with `check-ssl verify none`), `option redispatch` and `retries 3`.
HAProxy runs in the foreground (`-db`) on an ephemeral port on 127.0.0.1 that this process binds
and hands over (`bind fd@N`), so there is no race for the port; its log (stderr) goes to `log`,
and its admin socket answers `show stat`.
"""

from __future__ import annotations

import contextlib
import csv
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["BACKEND", "HAProxy", "haproxy_binary"]

BACKEND = "receivers"
"""The backend's name in the configuration and in `show stat`."""


def haproxy_binary() -> str:
    """The `haproxy` program (Debian puts it in /usr/sbin, not on every user's PATH)."""
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError(
            "haproxy not found: install Debian's `haproxy` package "
            "(`./dev test` does when run as root; otherwise `apt-get install haproxy`)"
        )
    return found


class HAProxy:
    """`haproxy -db` balancing TLS connections over `backends` ("host:port" each, named
    r1, r2, ... in that order), each checked on its `check_ports` entry (the receiver's admin
    port; None: its own port)."""

    def __init__(
        self,
        backends: Sequence[str],
        workdir: Path,
        *,
        check_ports: Sequence[int] | None = None,
        health_path: str = "/readyz",
        inter_ms: int = 500,
        fall: int = 2,
        rise: int = 1,
    ) -> None:
        if not backends:
            raise ValueError("HAProxy needs at least one backend")
        if check_ports is not None and len(check_ports) != len(backends):
            raise ValueError("one check port per backend")
        self.backends = {f"r{i}": address for i, address in enumerate(backends, start=1)}
        self.check_ports = dict(zip(self.backends, check_ports or (), strict=False))
        self.workdir = workdir
        self.health_path = health_path
        self.inter_ms, self.fall, self.rise = inter_ms, fall, rise
        self.config = workdir / "haproxy.cfg"
        self.log = workdir / "haproxy.log"
        # A short folder of its own: a unix socket's path is limited to 107 bytes.
        self._sockdir = Path(tempfile.mkdtemp(prefix="haproxy-"))
        self.admin_socket = self._sockdir / "admin.sock"
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """HAProxy's process id."""
        if self.proc is None:
            raise RuntimeError("HAProxy is not started")
        return self.proc.pid

    def url(self, path: str = "/") -> str:
        """`https://127.0.0.1:PORT/PATH` through the proxy."""
        return f"https://127.0.0.1:{self.port}{path}"

    def render(self, bind: str) -> str:
        """The configuration, listening on `bind` ("fd@N" here, "*:443" in production)."""
        servers = "\n".join(
            f"    server {name} {address}{self._check_port(name)}"
            for name, address in self.backends.items()
        )
        return f"""\
global
    log stderr format raw local0 info
    stats socket {self.admin_socket} mode 600 level admin
    maxconn 4096

defaults
    mode tcp
    log global
    option tcplog
    option redispatch
    retries 3
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout check 2s

frontend webhooks
    bind {bind}
    default_backend {BACKEND}

backend {BACKEND}
    balance roundrobin
    option httpchk
    http-check send meth GET uri {self.health_path} ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
    default-server check check-ssl verify none {self._timing()}
{servers}
"""

    def _check_port(self, name: str) -> str:
        port = self.check_ports.get(name)
        return "" if port is None else f" check port {port}"

    def _timing(self) -> str:
        return f"inter {self.inter_ms}ms fall {self.fall} rise {self.rise}"

    def start(self, timeout: float = 10.0) -> None:
        """Write the configuration, start HAProxy and return once it answers `show stat`."""
        self._listener.listen(1024)
        fd = self._listener.fileno()
        self.config.write_text(self.render(f"fd@{fd}"))
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [haproxy_binary(), "-db", "-f", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=[fd],
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"HAProxy did not start:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                self.command("show info")
                break
            time.sleep(0.02)
        # HAProxy holds the port now; once it stops, connections are refused, not queued here.
        self._listener.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Hard-stop HAProxy (SIGTERM to its PID, then SIGKILL) and remove its socket folder."""
        self._listener.close()
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        shutil.rmtree(self._sockdir, ignore_errors=True)

    def command(self, line: str) -> str:
        """The admin socket's answer to `line` (e.g. `show stat`, `disable server receivers/r1`)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.admin_socket))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stats(self) -> list[dict[str, str]]:
        """`show stat` as one dict per proxy or server line (keys as in HAProxy's CSV)."""
        text = self.command("show stat").lstrip("# ")
        return list(csv.DictReader(line for line in text.splitlines() if line))

    def server_states(self) -> dict[str, str]:
        """Each backend server's status as HAProxy sees it: "UP", "DOWN", "UP 1/2", ..."""
        return {
            row["svname"]: row["status"]
            for row in self.stats()
            if row["pxname"] == BACKEND and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def up(self) -> list[str]:
        """The servers HAProxy sends new connections to: "UP", or "UP 1/2" while a server that
        failed a check is not yet marked down."""
        states = self.server_states()
        return [name for name, status in states.items() if status.split()[0] == "UP"]

    def wait_for_up(
        self, count: int, timeout: float = 10.0, *, names: Sequence[str] | None = None
    ) -> None:
        """Wait until exactly `count` servers are UP (and, given `names`, exactly those)."""
        deadline = time.monotonic() + timeout
        while True:
            up = self.up()
            if len(up) == count and (names is None or sorted(up) == sorted(names)):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"HAProxy has {self.server_states()} after {timeout} s, "
                    f"not {count} up{f' ({list(names)})' if names else ''}:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def log_tail(self, lines: int = 40) -> str:
        """The end of HAProxy's log, for failure messages."""
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> HAProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

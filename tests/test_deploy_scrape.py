"""The processes of examples/deploy's units, scraped by a real Prometheus with its
prometheus.yml and alerts.yml: `receiver serve --no-dispatch` (handed its socket as systemd
does for receiver.socket) and `receiver worker`, with their ExecStart= and Environment= lines,
their credentials where systemd would put them and receiver.toml; Prometheus scrapes both over
HTTPS with the admin token, finds every metric the rules read and evaluates every rule without
an error or an alert, and once the worker stops, the rules' expressions see it.

Only paths, addresses and intervals change, each named by `rewrite`.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from receiver.certs import DevCertificates
from receiver.testing.process import free_port
from tests.conftest import ROOT, enreach_event, post_event
from tests.support.deploy import (
    BINARY,
    CONFIG,
    CREDENTIALS,
    DEPLOY,
    SERVICES,
    alert_expr,
    alert_names,
    credentials_dir,
    make_credentials,
    prometheus_config,
    read_unit,
    rewrite,
    value,
    values,
)

ACTIVATE = (
    "import os, sys\n"
    "fd = int(sys.argv[1])\n"
    "if fd != 3:\n"
    "    os.dup2(fd, 3)\n"
    "    os.close(fd)\n"
    "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1')\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)
"""What systemd does for receiver.socket: the socket as fd 3, LISTEN_PID and LISTEN_FDS."""


class Children:
    """The processes a test starts, each with its log; stopped by PID at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: list[str], env: dict[str, str], **kw: Any) -> None:
        """Start `command` as `name`, its output in `name`.log."""
        with (self.folder / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, **kw
            )

    def log(self, name: str) -> str:
        """Everything `name` wrote so far."""
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def logs(self) -> str:
        """Every child's log, for failure messages."""
        return "\n".join(f"--- {name}\n{self.log(name)[-3000:]}" for name in self.procs)

    def stop(self, name: str) -> int:
        """SIGTERM `name`; its exit status."""
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise

    def wait_until(
        self,
        condition: Callable[[], bool],
        what: str,
        timeout: float = 30,
        detail: Callable[[], str] = str,
    ) -> None:
        """Poll `condition`; fail with `detail()` and the logs when it stays false or a child
        exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            exited = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
            assert not exited, f"{exited} exited while waiting for {what}\n{self.logs()}"
            time.sleep(0.2)
        pytest.fail(f"timed out waiting for {what}\n{detail()}\n{self.logs()}")


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Children]:
    """Child processes, stopped after the test."""
    started = Children(tmp_path)
    try:
        yield started
    finally:
        for name in started.procs:
            started.stop(name)


def service_command(role: str, config: Path, admin_port: int) -> list[str]:
    """The unit's ExecStart with this checkout's receiver and the test's config file."""
    argv = shlex.split(value(read_unit(DEPLOY / SERVICES[role]), "ExecStart"))
    assert argv[0] == BINARY
    argv = [sys.executable, "-m", "receiver", *argv[1:]]
    argv[argv.index(CONFIG)] = str(config)
    if "--admin-port" in argv:
        argv[argv.index("--admin-port") + 1] = str(admin_port)
    return argv


def service_env(role: str, root: Path, overrides: Mapping[str, str]) -> dict[str, str]:
    """The unit's Environment= (`%d`: its credentials under `root`), on this environment
    without its RECEIVER_ variables (the test session's admin port among them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECEIVER_")}
    for assignment in values(read_unit(DEPLOY / SERVICES[role]), "Environment"):
        name, setting = assignment.split("=", 1)
        env[name] = setting.replace("%d", str(credentials_dir(root, role)))
    # The handler's package is installed beside the receiver in production; here it is
    # examples/crm_bridge/ (the package crm_bridge).
    env["PYTHONPATH"] = os.pathsep.join((str(ROOT), str(ROOT / "examples")))
    return {**env, **overrides}


def start_services(
    root: Path, tls_ca: DevCertificates, children: Children, client: httpx.Client
) -> tuple[dict[str, str], dict[str, int], int]:
    """Both units' processes on `root`, with their credentials: the secrets, the admin ports
    by role and the webhook port."""
    made = make_credentials(root, ("serve", "worker"))
    state = root / "var-lib-receiver"  # StateDirectory= and WorkingDirectory=
    state.mkdir(mode=0o700)
    admin = {"serve": free_port(), "worker": free_port()}
    nowhere = f"https://127.0.0.1:{free_port()}"  # what handlers and forwards reach: nothing
    config = root / "receiver.toml"
    text = rewrite(
        (DEPLOY / "receiver.toml").read_text(),
        {
            CREDENTIALS: str(root) + CREDENTIALS,
            "/etc/receiver/tls/fullchain.pem": str(tls_ca.cert),
            "/etc/receiver/tls/privkey.pem": str(tls_ca.key),
            "/etc/receiver/tls/internal-ca.pem": str(tls_ca.ca),
            "/var/lib/receiver/": f"{state}/",
            'host = "10.0.0.10"': 'host = "127.0.0.1"',
            "port = 9443": f"port = {admin['serve']}",
            "https://analytics.internal.example": nowhere,
        },
    )
    config.write_text(text)
    with socket.socket() as sock:  # receiver.socket's; the child keeps its copy
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        webhook_port: int = sock.getsockname()[1]
        command = [sys.executable, "-c", ACTIVATE, str(sock.fileno())]
        command += service_command("serve", config, admin["serve"])
        env = service_env("serve", root, {})
        children.start("serve", command, env, cwd=state, pass_fds=[sock.fileno()])
    command = service_command("worker", config, admin["worker"])
    crm = {"CRM_URL": nowhere}  # examples/crm_bridge reads its API key from the credential
    children.start("worker", command, service_env("worker", root, crm), cwd=state)
    for role, port in admin.items():
        health = functools.partial(answers, client, f"https://127.0.0.1:{port}/healthz")
        children.wait_until(health, f"{role}'s admin listener")
    return made, admin, webhook_port


def answers(client: httpx.Client, url: str) -> bool:
    """Whether `url` answers 200 now."""
    try:
        return client.get(url).status_code == 200
    except httpx.HTTPError:
        return False


def start_prometheus(
    folder: Path, tls_ca: DevCertificates, token: str, admin: dict[str, int], children: Children
) -> int:
    """Prometheus with prometheus.yml and alerts.yml, scraping `admin`'s ports every second;
    its web port."""
    folder.mkdir()
    token_file = folder / "receiver-admin-token"
    token_file.write_text(token + "\n")
    prometheus_config(
        folder,
        tls_ca.ca,
        token_file,
        {
            "scrape_interval: 15s": "scrape_interval: 1s",
            "evaluation_interval: 15s": "evaluation_interval: 1s",
            "server_name: hooks.example.com": "server_name: localhost",
            '"10.0.0.10:9443"': f'"127.0.0.1:{admin["serve"]}"',
            '"10.0.0.10:9444"': f'"127.0.0.1:{admin["worker"]}"',
        },
    )
    web = free_port()
    command = ["prometheus", f"--config.file={folder / 'prometheus.yml'}"]
    command += [f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{web}"]
    children.start("prometheus", [*command, "--log.level=warn"], {**os.environ}, cwd=folder)
    return web


def test_the_units_processes_are_scraped_by_prometheus_and_the_rules_evaluate(
    tmp_path: Path, tls_ca: DevCertificates, children: Children
) -> None:
    context = ssl.create_default_context(cafile=str(tls_ca.ca))
    with httpx.Client(verify=context, timeout=5) as client:
        made, admin, webhook_port = start_services(tmp_path, tls_ca, children, client)
        # The webhook port is the socket handed over; the token is the unit's credential.
        webhook = f"https://127.0.0.1:{webhook_port}/enreach"
        response = post_event(client, webhook, enreach_event(), token=made["enreach-secret"])
        assert response.status_code == 200
        # The admin listeners want the token (they are off loopback in production).
        assert client.get(f"https://127.0.0.1:{admin['worker']}/metrics").status_code == 401
        web = start_prometheus(
            tmp_path / "prometheus", tls_ca, made["admin-token"], admin, children
        )
        with httpx.Client(base_url=f"http://127.0.0.1:{web}", timeout=5) as api:
            children.wait_until(lambda: answers(api, "/-/ready"), "prometheus")
            check_scrapes_and_rules(api, children)
    for name in ("serve", "worker"):
        log = children.log(name)
        assert made["enreach-secret"] not in log and made["admin-token"] not in log


def check_scrapes_and_rules(api: httpx.Client, children: Children) -> None:
    """Prometheus scrapes both processes, finds every metric the rules read, evaluates every
    rule without an error and without an alert; then the worker stops, and the rules'
    expressions see it."""

    def query(expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = api.get("/api/v1/query", params={"query": expr}).json()[
            "data"
        ]["result"]
        return result

    def scraped() -> bool:
        up = query('up{job="receiver"}')
        return len(up) == 2 and all(s["value"][1] == "1" for s in up)

    def targets() -> str:
        found = api.get("/api/v1/targets").json()["data"]["activeTargets"]
        return "\n".join(f"{t['scrapeUrl']}: {t['health']} {t['lastError']}" for t in found)

    children.wait_until(scraped, "both targets up", timeout=20, detail=targets)
    roles = {s["metric"]["role"]: s["value"][1] for s in query("receiver_dispatching")}
    assert roles == {"serve": "0", "worker": "1"}
    assert {s["metric"]["role"] for s in query("receiver_inbox_up == 1")} == {"serve", "worker"}
    rules = (DEPLOY / "alerts.yml").read_text()
    for name in sorted(set(re.findall(r"\b(receiver_[a-z_]+)", rules))):
        assert query(name), f"no {name} scraped"
    subscribers = {s["metric"]["subscriber"] for s in query("receiver_inbox_oldest_open_seconds")}
    assert subscribers == {"crm", "analytics"}

    def evaluated() -> list[dict[str, Any]]:
        groups = api.get("/api/v1/rules").json()["data"]["groups"]
        found = [r for g in groups for r in g["rules"]]
        return found if found and all(r["health"] != "unknown" for r in found) else []

    children.wait_until(lambda: bool(evaluated()), "every rule evaluated")
    results = evaluated()
    assert sorted(r["name"] for r in results) == sorted(alert_names())
    assert [(r["name"], r["lastError"]) for r in results if r["health"] != "ok"] == []

    def alerts() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = api.get("/api/v1/alerts").json()["data"]["alerts"]
        return found

    # An evaluation from before both targets were scraped may have left an alert pending (the
    # serve process alone reports nobody dispatching); the next evaluations (every second)
    # clear it. One that stays is true of the running units.
    children.wait_until(lambda: not alerts(), "no alert pending or firing", timeout=10,
                        detail=lambda: str(alerts()))  # fmt: skip
    # The worker stops: the rules' expressions see it down, and nobody dispatching.
    assert children.stop("worker") == 0
    down = alert_expr("ReceiverDown")
    children.wait_until(lambda: bool(query(down)), "ReceiverDown's expression true")
    assert [s["metric"]["role"] for s in query(down)] == ["worker"]
    assert query(alert_expr("ReceiverNoDispatcher"))

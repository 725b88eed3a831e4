"""examples/deploy/ is a production layout that works: the alert rules pass promtool's check
and their unit tests (which catch a broken rule), prometheus.yml passes `promtool check
config`, the systemd units pass `systemd-analyze verify` and run the two roles hardened with
their secrets from files, receiver.toml loads, and each unit's credentials are the secrets its
process needs. Then both processes run as the units say (the socket handed over as systemd
does) and a real Prometheus, with this prometheus.yml and alerts.yml, scrapes both over HTTPS
with the admin token and evaluates every rule.

The files are used as shipped; only their paths, addresses and intervals are pointed at a
temporary folder and ephemeral loopback ports, each change named by `rewrite`.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from receiver.certs import DevCertificates
from receiver.config import check_secrets, load_settings
from receiver.testing.process import free_port
from tests.conftest import ROOT, enreach_event, post_event

DEPLOY = ROOT / "examples" / "deploy"
UNITS = ("receiver.socket", "receiver.service", "receiver-worker.service")
SERVICES = {"serve": "receiver.service", "worker": "receiver-worker.service"}
BINARY = "/opt/receiver/.venv/bin/receiver"
"""Where the units expect the receiver (the README's install)."""
CONFIG = "/etc/receiver/receiver.toml"
CREDENTIALS = "/run/credentials/"

Unit = dict[str, list[tuple[str, str]]]


def read_unit(path: Path) -> Unit:
    """A unit file's sections, each a list of (key, value) in order (keys may repeat)."""
    sections: Unit = {}
    current: list[tuple[str, str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"{path.name}: not a key=value line: {raw!r}"
        current.append((key.strip(), value.strip()))
    return sections


def values(unit: Unit, key: str, section: str = "Service") -> list[str]:
    """Every value of `key` in `section`."""
    return [v for k, v in unit.get(section, []) if k == key]


def value(unit: Unit, key: str, section: str = "Service") -> str:
    """The one value of `key` in `section`."""
    found = values(unit, key, section)
    assert len(found) == 1, f"{key} in [{section}]: {found}"
    return found[0]


def rewrite(text: str, changes: Mapping[str, str]) -> str:
    """`text` with each key replaced by its value; every key must be in it."""
    for old, new in changes.items():
        assert old in text, f"{old!r} is no longer in the shipped file: update this test"
        text = text.replace(old, new)
    return text


def run(*command: str, cwd: Path = DEPLOY) -> subprocess.CompletedProcess[str]:
    """Run a tool; its output (stdout and stderr together) in `.stdout`."""
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
        stdin=subprocess.DEVNULL, env={**os.environ, "LC_ALL": "C"},
    )  # fmt: skip


def alert_names() -> list[str]:
    """The alerts alerts.yml defines."""
    return re.findall(r"^\s+- alert: (\w+)$", (DEPLOY / "alerts.yml").read_text(), re.M)


def alert_expr(name: str) -> str:
    """The one-line expression of alert `name`."""
    text = (DEPLOY / "alerts.yml").read_text()
    found = re.search(rf"- alert: {name}\n\s+expr: (.+)\n", text)
    assert found and not found.group(1).startswith("|"), f"{name} has no one-line expr"
    return found.group(1)


# -- alert rules ---------------------------------------------------------------------------


def test_alert_rules_pass_promtools_check_and_their_unit_tests() -> None:
    names = alert_names()
    checked = run("promtool", "check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(names)} rules found" in checked.stdout
    tested = run("promtool", "test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
    # Each alert has a case where it fires and one where it stays quiet.
    tests = (DEPLOY / "alerts.test.yml").read_text()
    for name in names:
        assert re.search(rf"alertname: {name}\n\s+exp_alerts:\n", tests), f"{name} never fires"
        assert re.search(rf"alertname: {name}\n\s+exp_alerts: \[\]", tests), f"{name} never quiet"
    # What the deployment must be told of, by the metrics that say it.
    rules = (DEPLOY / "alerts.yml").read_text()
    for expression in (
        'up{job="receiver"} == 0',
        "receiver_inbox_up",
        "receiver_dispatching",
        "receiver_inbox_oldest_open_seconds",
        "increase(receiver_dead_letters_total",
        'receiver_inbox_deliveries{job="receiver", state="dead"}',
        'receiver_certificate_expiry_timestamp_seconds{job="receiver"} - time() < 14 * 86400',
        "time() - max(max_over_time(receiver_last_event_timestamp_seconds",
        "hour()",
        "day_of_week()",
    ):
        assert expression in rules


DISPATCHING = "(instance, role) (receiver_dispatching"
MUTATIONS = {
    "backlog threshold": ("> 900", "> 2000"),
    "dead letters per process": ("sum without (instance, role) (increase", "sum (increase"),
    "weekend": ("day_of_week() <= 5", "day_of_week() <= 6"),
    "restart forgets the last event": ("[2h]", "[1m]"),
    "dispatcher seen per process": ("max without " + DISPATCHING, "min without " + DISPATCHING),
    "down at once": ("== 0\n        for: 2m", "== 0\n        for: 0m"),
}
"""Changes that break a rule, each of which alerts.test.yml must notice (a few: each run of
the tests takes seconds)."""


@pytest.mark.parametrize("change", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_the_unit_tests_catch_a_broken_rule(tmp_path: Path, change: tuple[str, str]) -> None:
    shutil.copy(DEPLOY / "alerts.test.yml", tmp_path)
    rules = rewrite((DEPLOY / "alerts.yml").read_text(), dict([change]))
    (tmp_path / "alerts.yml").write_text(rules)
    tested = run("promtool", "test", "rules", "alerts.test.yml", cwd=tmp_path)
    assert tested.returncode != 0, f"promtool test rules passed with {change}:\n{tested.stdout}"
    assert "FAILED" in tested.stdout + tested.stderr


# -- prometheus.yml ------------------------------------------------------------------------


def prometheus_config(folder: Path, ca: Path, token: Path, extra: Mapping[str, str]) -> Path:
    """prometheus.yml and alerts.yml in `folder`, the CA and token files at `ca` and `token`."""
    shutil.copy(DEPLOY / "alerts.yml", folder)
    text = rewrite(
        (DEPLOY / "prometheus.yml").read_text(),
        {
            "/etc/ssl/certs/ca-certificates.crt": str(ca),
            "/etc/prometheus/receiver-admin-token": str(token),
            **extra,
        },
    )
    (folder / "prometheus.yml").write_text(text)
    return folder / "prometheus.yml"


def test_prometheus_config_passes_promtools_check(tmp_path: Path, tls_ca: DevCertificates) -> None:
    token = tmp_path / "token"
    token.write_text(secrets.token_hex(32) + "\n")
    config = prometheus_config(tmp_path, tls_ca.ca, token, {})
    checked = run("promtool", "check", "config", str(config), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "is valid prometheus config file syntax" in checked.stdout
    assert f"SUCCESS: {len(alert_names())} rules found" in checked.stdout
    # It scrapes the ports the units give the two admin listeners.
    text = config.read_text()
    settings = tomllib.loads((DEPLOY / "receiver.toml").read_text())
    host, port = settings["admin"]["host"], settings["admin"]["port"]
    worker = shlex.split(value(read_unit(DEPLOY / "receiver-worker.service"), "ExecStart"))
    worker_port = worker[worker.index("--admin-port") + 1]
    assert f'targets: ["{host}:{port}"]' in text and f'targets: ["{host}:{worker_port}"]' in text
    assert "scheme: https" in text and "type: Bearer" in text


# -- systemd units -------------------------------------------------------------------------


def test_systemd_units_verify(tmp_path: Path) -> None:
    receiver = Path(sys.executable).with_name("receiver")
    assert receiver.exists()
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        if BINARY in text:
            text = rewrite(text, {BINARY: str(receiver)})
        (tmp_path / name).write_text(text)
    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # no systemd here: test_units_* still check the keys that matter
        return
    verified = run(analyze, "verify", "--man=no", *UNITS, cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout + verified.stderr == "", "systemd-analyze warns:\n" + verified.stderr
    if "--offline" in run(analyze, "security", "--help").stdout:
        for service in SERVICES.values():
            rated = run(analyze, "security", "--offline=yes", service, cwd=tmp_path)
            level = re.search(r"Overall exposure level for \S+: ([\d.]+)", rated.stdout)
            assert level and float(level.group(1)) <= 2.0, rated.stdout[-2000:]


def test_units_run_the_two_roles_hardened_with_secrets_from_files() -> None:
    socket_unit = read_unit(DEPLOY / "receiver.socket")
    assert value(socket_unit, "ListenStream", "Socket").endswith(":443")
    serve, worker = (read_unit(DEPLOY / SERVICES[role]) for role in ("serve", "worker"))
    assert "receiver.socket" in value(serve, "Requires", "Unit")
    serve_argv = shlex.split(value(serve, "ExecStart"))
    worker_argv = shlex.split(value(worker, "ExecStart"))
    assert serve_argv[:2] == [BINARY, "serve"] and "--no-dispatch" in serve_argv
    assert worker_argv[:2] == [BINARY, "worker"]
    settings = tomllib.loads((DEPLOY / "receiver.toml").read_text())
    for unit, argv in ((serve, serve_argv), (worker, worker_argv)):
        assert argv[argv.index("--config") + 1] == CONFIG
        assert not [a for a in argv if re.search("secret|token|password", a, re.I)], argv
        assert value(unit, "User") == "receiver" or value(unit, "DynamicUser") == "yes"
        for key, wanted in {
            "ProtectSystem": "strict", "NoNewPrivileges": "yes", "StateDirectory": "receiver",
            "Restart": "on-failure", "CapabilityBoundingSet": "", "PrivateTmp": "yes",
            "ProtectHome": "yes", "UMask": "0077", "Type": "exec",
        }.items():  # fmt: skip
            assert value(unit, key) == wanted, key
        # The inbox is in the state directory; the admin token comes from a credential file.
        assert settings["inbox"]["inbox"].startswith("/var/lib/receiver/")
        environment = dict(e.split("=", 1) for e in values(unit, "Environment"))
        assert environment["RECEIVER_ADMIN_TOKEN_FILE"] == "%d/admin-token"
        for name, setting in environment.items():
            if re.search("SECRET|TOKEN|PASSWORD", name):
                assert name.endswith("_FILE") and setting.startswith("%d/"), name
        credentials = [c.split(":", 1) for c in values(unit, "LoadCredential")]
        assert all(src.startswith("/etc/receiver/secrets/") for _, src in credentials)
    # Handlers get longer than shutdown_timeout to finish before systemd kills the worker.
    stop = float(value(worker, "TimeoutStopSec"))
    assert stop > settings["dispatch"]["shutdown_timeout"]


def credential_names(role: str) -> set[str]:
    """The credentials the role's unit loads."""
    unit = read_unit(DEPLOY / SERVICES[role])
    return {c.split(":", 1)[0] for c in values(unit, "LoadCredential")}


def whsec() -> str:
    """A fresh Standard Webhooks secret."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def make_credentials(root: Path, roles: tuple[str, ...]) -> dict[str, str]:
    """Each role's credential files under `root`/run/credentials/<unit>/, as systemd makes
    them; the secrets by name."""
    made = {
        "enreach-secret": "deploy-" + secrets.token_hex(12),
        "admin-token": secrets.token_hex(32),
        "analytics-signing-secret": whsec(),
    }
    for role in roles:
        folder = root / CREDENTIALS.strip("/") / SERVICES[role]
        folder.mkdir(parents=True)
        for name in credential_names(role):
            (folder / name).write_text(made[name] + "\n")
            (folder / name).chmod(0o400)
    return made


def credentials_dir(root: Path, role: str) -> Path:
    """`%d` of the role's unit under `root`."""
    return root / CREDENTIALS.strip("/") / SERVICES[role]


def test_receiver_toml_loads_and_each_unit_has_the_secrets_its_process_needs(
    tmp_path: Path,
) -> None:
    text = (DEPLOY / "receiver.toml").read_text()
    named = re.findall(r'secret_file = "([^"]+)"', text)
    assert named, "receiver.toml names no secret file"
    for path in named:  # each is a credential of the unit whose process reads it
        unit, name = path.removeprefix(CREDENTIALS).split("/")
        role = next(r for r, u in SERVICES.items() if u == unit)
        assert name in credential_names(role), f"{unit} does not load {name}"
    # The worker never gets the webhook token, nor the receiver the signing secret.
    assert "enreach-secret" not in credential_names("worker")
    assert "analytics-signing-secret" not in credential_names("serve")
    config = tmp_path / "receiver.toml"
    for role in SERVICES:
        root = tmp_path / role
        made = make_credentials(root, (role,))
        config.write_text(rewrite(text, {CREDENTIALS: str(root) + CREDENTIALS}))
        token_file = credentials_dir(root, role) / "admin-token"
        settings = load_settings(
            config_file=config, env={"RECEIVER_ADMIN_TOKEN_FILE": str(token_file)}
        )
        assert settings.admin_tokens == (made["admin-token"],)
        assert (settings.admin_host, settings.admin_port) == ("10.0.0.10", 9443)
        assert settings.ready_cert_days == 7 and settings.log_format == "json"
        [endpoint] = settings.endpoints
        assert [s.name for s in endpoint.subscribers] == ["crm", "analytics"]
        # Each process's own secrets are enough for it (serve: --no-dispatch).
        if role == "serve":
            check_secrets(replace(settings, dispatch=False), serving=True)
            assert endpoint.secrets is not None
            assert endpoint.secrets.matches(made["enreach-secret"].encode())
        else:
            check_secrets(settings, serving=False)
            assert endpoint.subscribers[1].secrets == (made["analytics-signing-secret"],)


# -- the units' processes, scraped by a real Prometheus -------------------------------------

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
    # examples/crm_bridge.py.
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
    children.start("worker", command, service_env("worker", root, {"CRM_URL": nowhere}), cwd=state)
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
    assert api.get("/api/v1/alerts").json()["data"]["alerts"] == []
    # The worker stops: the rules' expressions see it down, and nobody dispatching.
    assert children.stop("worker") == 0
    down = alert_expr("ReceiverDown")
    children.wait_until(lambda: bool(query(down)), "ReceiverDown's expression true")
    assert [s["metric"]["role"] for s in query(down)] == ["worker"]
    assert query(alert_expr("ReceiverNoDispatcher"))

"""examples/deploy/ is a production layout that works: the alert rules pass promtool's check
and their unit tests (which catch a broken rule), prometheus.yml passes `promtool check
config`, the systemd units pass `systemd-analyze verify` and run the two roles hardened with
their secrets from files, receiver.toml loads, and each unit's credentials are the secrets its
process needs. (tests/test_deploy_scrape.py runs the units' processes under a real Prometheus.)

The files are used as shipped; only their paths are pointed at a temporary folder, each change
named by `rewrite`.
"""

from __future__ import annotations

import re
import secrets
import shlex
import shutil
import sys
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from receiver.certs import DevCertificates
from receiver.config import check_secrets, load_settings
from tests.support.deploy import (
    BINARY,
    CONFIG,
    CREDENTIALS,
    DEPLOY,
    SERVICES,
    UNITS,
    alert_names,
    credential_names,
    credentials_dir,
    make_credentials,
    prometheus_config,
    read_unit,
    rewrite,
    run,
    value,
    values,
)

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

"""Start-up refuses bad set-ups with one line; config file, variables and options combine."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from receiver.certs import DevCertificates
from tests.conftest import ROOT, SECRET, Harness, enreach_event, post_event, run_cli
from tests.support.startup import assert_refused, serve


def test_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    assert_refused(serve(tmp_path), "has no secret: set RECEIVER_ENREACH_SECRET")


def test_refuses_a_missing_certificate(tmp_path: Path) -> None:
    result = serve(
        tmp_path, "--cert", "nope.pem", "--key", "nope-key.pem",
        env={"RECEIVER_ENREACH_SECRET": SECRET},
    )  # fmt: skip
    assert_refused(result, "TLS certificate file not found: nope.pem")


def test_refuses_a_key_that_does_not_match(tmp_path: Path, tls_ca: DevCertificates) -> None:
    garbage = tmp_path / "key.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    result = serve(
        tmp_path, "--cert", str(tls_ca.cert), "--key", str(garbage),
        env={"RECEIVER_ENREACH_SECRET": SECRET},
    )  # fmt: skip
    assert_refused(result, "cannot load TLS certificate")


def test_refuses_a_port_in_use(tmp_path: Path, tls_ca: DevCertificates) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve(
            tmp_path, "--port", str(port), "--cert", str(tls_ca.cert), "--key", str(tls_ca.key),
            env={"RECEIVER_ENREACH_SECRET": SECRET},
        )  # fmt: skip
    assert_refused(result, f"port {port} on 127.0.0.1 is already in use")


def test_refuses_a_handler_it_cannot_import(tmp_path: Path, tls_ca: DevCertificates) -> None:
    result = serve(
        tmp_path, "--handler", "no_such_module:Bridge",
        env={"RECEIVER_ENREACH_SECRET": SECRET},
    )  # fmt: skip
    assert_refused(result, "cannot import handler module 'no_such_module'")


@pytest.mark.parametrize("flag", ["--secret", "--token", "--enreach-secret"])
def test_refuses_a_secret_on_the_command_line(tmp_path: Path, flag: str) -> None:
    result = serve(tmp_path, flag, "hunter2")
    assert result.returncode == 2
    assert "never taken from the command line" in result.stderr


@pytest.mark.parametrize(
    ("toml", "reason"),
    [
        ('[[endpoints]]\nsecret = "abc"\n', "would put a secret in the config file"),
        ("[server]\nprot = 443\n", "unknown setting [server] prot"),
        ('[server]\nport = "high"\n', "port = 'high' is not a valid int"),
        ('[[endpoints]]\nkind = "fax"\nsecret_env = "X"\n', "unknown kind 'fax'"),
        ('[[endpoints]]\nsecret_env = "UNSET_VARIABLE"\n', "UNSET_VARIABLE is not set"),
        ("[server\n", "cannot read config file"),
        ("[server]\ncert_watch_interval = -5\n", "cert_watch_interval must be 0"),
        ("endpoints = [1]\n", "receiver.toml: endpoints[0] must be a table"),
        ("[server]\nmax_body = 0\n", "max_body must be a positive number of bytes"),
        ("[dispatch]\nbackoff_base = -1\n", "backoff_base must be 0 or a positive number"),
        ("[dispatch]\nretention_days = 0\n", "retention_days must be a positive number"),
        ("[dispatch]\ndead_retention_days = -1\n", "dead_retention_days must be a positive"),
        (
            "[dispatch]\nretention_days = 2\npayload_retention_days = 3\n",
            "payload_retention_days (3) is longer than retention_days (2): a payload cannot "
            "outlive its event's dedup key",
        ),
    ],
)
def test_refuses_a_bad_config_file(tmp_path: Path, toml: str, reason: str) -> None:
    (tmp_path / "receiver.toml").write_text(toml)
    assert_refused(serve(tmp_path), reason)


@pytest.mark.parametrize("value", ["-1", "nan"])
def test_refuses_a_bad_cert_watch_interval(tmp_path: Path, value: str) -> None:
    result = serve(
        tmp_path, "--cert-watch-interval", value, env={"RECEIVER_ENREACH_SECRET": SECRET}
    )
    assert_refused(
        result, "cert_watch_interval must be 0 (reload certificates only on SIGHUP) or a number"
    )


def test_refuses_a_cert_watch_interval_that_is_not_a_number(tmp_path: Path) -> None:
    result = serve(tmp_path, "--cert-watch-interval", "5s", env={"RECEIVER_ENREACH_SECRET": SECRET})
    assert result.returncode == 2
    assert "argument --cert-watch-interval: invalid float value: '5s'" in result.stderr


def test_config_file_endpoints_with_rotating_secrets(harness: Harness) -> None:
    secrets = harness.tmp_path / "enreach-secrets"
    secrets.write_text("old-secret\nnew-secret\n\n")
    config = harness.tmp_path / "receiver.toml"
    config.write_text(
        "[dispatch]\nworkers = 2\n\n"
        "[[endpoints]]\n"
        'name = "enreach-prod"\nkind = "enreach"\npath = "/hooks/enreach"\n'
        f'secret_env = ["ENREACH_PRIMARY"]\nsecret_file = "{secrets}"\n'
    )
    receiver = harness.receiver(env={"ENREACH_PRIMARY": "env-secret"})
    url = receiver.url("/hooks/enreach")
    with harness.client() as client:
        for token in ("env-secret", "old-secret", "new-secret"):
            assert post_event(client, url, enreach_event(), token=token).status_code == 200
        assert post_event(client, url, enreach_event(), token="retired").status_code == 401
        assert post_event(client, receiver.url("/enreach"), enreach_event()).status_code == 404
    harness.wait_for(lambda: len(harness.handled_keys()) == 3)


def test_secret_file_variable_and_binding_without_fd(
    tmp_path: Path, tls_ca: DevCertificates
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RECEIVER_")}
    environment.update(
        RECEIVER_ENREACH_SECRET_FILE=str(secret_file),
        RECEIVER_HOST="127.0.0.1",
        RECEIVER_PORT=str(port),
        RECEIVER_CERT=str(tls_ca.cert),
        RECEIVER_KEY=str(tls_ca.key),
        RECEIVER_ADMIN_PORT="0",  # not the default 9443, which another receiver may hold
        PYTHONPATH=str(ROOT),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "receiver", "serve"],
        cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        context = ssl.create_default_context(cafile=str(tls_ca.ca))
        with httpx.Client(verify=context) as client:
            for _ in range(200):
                try:
                    response = post_event(
                        client, f"https://localhost:{port}/enreach", enreach_event()
                    )
                    break
                except httpx.ConnectError:
                    import time

                    time.sleep(0.05)
            assert response.status_code == 200
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0
    assert f"enreach: https://127.0.0.1:{port}/enreach" in output
    assert (tmp_path / "inbox.db").exists()


def test_certs_command_writes_files_and_will_not_overwrite(tmp_path: Path) -> None:
    first = run_cli("certs", "receiver.example.com", "10.0.0.5", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    dev = DevCertificates.in_dir(tmp_path / "certs")
    assert dev.exist() and dev.ca.exists()
    assert (dev.key.stat().st_mode & 0o777) == 0o600
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(dev.cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["receiver.example.com"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    again = run_cli("certs", cwd=tmp_path)
    assert again.returncode == 1
    assert "--force" in again.stdout
    assert run_cli("certs", "--force", cwd=tmp_path).returncode == 0


def test_version_and_help() -> None:
    version = run_cli("--version", cwd=ROOT)
    assert version.returncode == 0
    assert version.stdout.startswith("receiver ")
    help_text = run_cli("serve", "--help", cwd=ROOT).stdout
    for option in (
        "--host",
        "--port",
        "--cert",
        "--key",
        "--engine",
        "--inbox",
        "--handler",
        "--fd",
    ):
        assert option in help_text


def test_systemd_socket_activation(harness: Harness, tmp_path: Path) -> None:
    """LISTEN_FDS/LISTEN_PID as systemd sets them: the socket arrives as fd 3."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        fd = listener.fileno()
        environment = {k: v for k, v in os.environ.items() if not k.startswith("RECEIVER_")}
        environment.update(
            RECEIVER_ENREACH_SECRET=SECRET,
            RECEIVER_CERT=str(harness.certs.cert),
            RECEIVER_KEY=str(harness.certs.key),
            RECEIVER_ADMIN_PORT="0",  # not the default 9443, which another receiver may hold
            LISTEN_FDS="1",
            PYTHONPATH=str(ROOT),
        )
        proc = subprocess.Popen(
            ["bash", "-c", f'exec 3<&{fd}; LISTEN_PID=$$ exec "$0" -m receiver serve',
             sys.executable],
            cwd=tmp_path, env=environment, pass_fds=[fd],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            context = ssl.create_default_context(cafile=str(harness.certs.ca))
            with httpx.Client(verify=context, timeout=10) as client:
                response = post_event(client, f"https://localhost:{port}/enreach", enreach_event())
        except httpx.HTTPError:
            proc.terminate()
            pytest.fail(proc.communicate(timeout=30)[0].decode())
        finally:
            proc.terminate()
            output = proc.communicate(timeout=30)[0].decode()
    assert f"listening on 127.0.0.1:{port}" in output, output
    assert response.status_code == 200


def test_refuses_a_config_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "receiver.toml").write_bytes(b"[server]\nhost = '\xff'\n")
    assert_refused(serve(tmp_path), "cannot read config file receiver.toml: 'utf-8' codec")


def test_refuses_a_certificates_folder_it_cannot_create(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a folder\n")
    result = serve(tmp_path, "--certs-dir", "taken", env={"RECEIVER_ENREACH_SECRET": SECRET})
    assert_refused(result, "cannot create the certificates folder taken: File exists")


# -- secrets: every missing one named at once, an unset variable called unset ------------------

ALL_PROVIDERS = """
[[endpoints]]
name = "enreach"
kind = "enreach"
secret_env = "RECEIVER_ENREACH_SECRET"

[[endpoints]]
name = "wfm-agents"
kind = "engage_wfm"
family = "agent"
secret_env = "RECEIVER_ENGAGE_WFM_SECRET"

[[endpoints]]
name = "wfm-calls"
kind = "engage_wfm"
family = "call"
secret_env = "RECEIVER_ENGAGE_WFM_SECRET"

[[endpoints]]
name = "call-details"
kind = "engage_web_services"
basic_users_env = "RECEIVER_ENGAGE_WEB_SERVICES_SECRET"

[[endpoints]]
name = "work-item-closed"
kind = "buzzeasy"
event_type = "WorkItemClosed"
secret_env = "RECEIVER_BUZZEASY_SECRET"
"""


def test_every_missing_secret_is_named_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "receiver.toml").write_text(ALL_PROVIDERS)
    assert_refused(
        serve(tmp_path),
        "missing secrets: RECEIVER_ENREACH_SECRET is not set (endpoint enreach); "
        "RECEIVER_ENGAGE_WFM_SECRET is not set (endpoints wfm-agents, wfm-calls); "
        "RECEIVER_ENGAGE_WEB_SERVICES_SECRET is not set (endpoint call-details); "
        "RECEIVER_BUZZEASY_SECRET is not set (endpoint work-item-closed)",
    )
    some = serve(tmp_path, env={"RECEIVER_ENREACH_SECRET": SECRET, "RECEIVER_BUZZEASY_SECRET": "k"})
    assert_refused(
        some,
        "missing secrets: RECEIVER_ENGAGE_WFM_SECRET is not set (endpoints wfm-agents, "
        "wfm-calls); RECEIVER_ENGAGE_WEB_SERVICES_SECRET is not set (endpoint call-details)",
    )


TOKEN = 'secret_env = "WS_TOKEN"\nsecret_file = "token"\n'
USERS = {"WS_USERS": "user:password"}


@pytest.mark.parametrize(
    ("keys", "env", "files", "reason"),
    [
        ("", {}, {}, "missing secrets: WS_USERS is not set (endpoint ws)"),
        ("", {"WS_USERS": ""}, {}, "missing secrets: WS_USERS is empty (endpoint ws)"),
        ("", {"WS_USERS": "no-colon"}, {}, "WS_USERS must hold 'user:password' (endpoint ws)"),
        (
            TOKEN, USERS, {"token": b""},
            "WS_TOKEN is not set (endpoint ws); secret file token is empty (endpoint ws)",
        ),
        (
            TOKEN, USERS, {"token": b"\xff\xfe"},
            "cannot read secret file token: it is not UTF-8 text (endpoint ws)",
        ),
        (TOKEN, USERS, {}, "cannot read secret file token: No such file or directory"),
    ],
    ids=["unset", "empty", "not-a-pair", "empty-file", "not-utf8", "no-file"],
)  # fmt: skip
def test_each_secret_problem_is_named(
    tmp_path: Path, keys: str, env: dict[str, str], files: dict[str, bytes], reason: str
) -> None:
    (tmp_path / "receiver.toml").write_text(
        '[[endpoints]]\nname = "ws"\nkind = "engage_web_services"\nbasic_users_env = "WS_USERS"\n'
        + keys
    )
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    assert_refused(serve(tmp_path, env=env), reason)


def test_inbox_commands_need_no_secrets(tmp_path: Path) -> None:
    (tmp_path / "receiver.toml").write_text(ALL_PROVIDERS + '\n[inbox]\ninbox = "here.db"\n')
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RECEIVER_")}
    result = subprocess.run(
        [sys.executable, "-m", "receiver", "inbox", "stats"],
        cwd=tmp_path, env={**environment, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == "receiver: no inbox at here.db\n"


# -- the inbox's folder must exist ------------------------------------------------------------


@pytest.mark.parametrize("form", ["path", "url"])
def test_refuses_an_inbox_whose_folder_is_missing(tmp_path: Path, form: str) -> None:
    missing = Path("nope") / "dir" / "inbox.db"
    inbox = str(missing) if form == "path" else f"sqlite:///{missing}"
    result = serve(tmp_path, "--inbox", inbox, env={"RECEIVER_ENREACH_SECRET": SECRET}, timeout=20)
    assert_refused(result, f"cannot open inbox {missing}: folder {missing.parent} does not exist")
    for action in (["stats"], ["list"], ["dead", "--json"], ["replay", "--all"]):
        listed = run_cli("inbox", "--inbox", inbox, *action, cwd=tmp_path)
        assert_refused(listed, f"no inbox at {missing}: folder {missing.parent} does not exist")
    assert not (tmp_path / "nope").exists()


# -- receiver certs takes --certs-dir, as serve does --------------------------------------------


def test_certs_writes_where_serve_reads_with_the_same_option(tmp_path: Path) -> None:
    written = run_cli("certs", "--certs-dir", "mine", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert DevCertificates.in_dir(tmp_path / "mine").exist()
    assert str(tmp_path / "mine" / "ca.pem") in written.stdout
    again = run_cli("certs", "--certs-dir", "mine", cwd=tmp_path)
    assert again.returncode == 1 and "mine/ already holds" in again.stdout
    old_spelling = run_cli("certs", "--dir", "old", cwd=tmp_path)
    assert old_spelling.returncode == 0, old_spelling.stderr
    assert DevCertificates.in_dir(tmp_path / "old").exist()
    help_text = run_cli("certs", "--help", cwd=tmp_path).stdout
    assert "--certs-dir" in help_text and " --dir" not in help_text
    assert not (tmp_path / "certs").exists()

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


def serve(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run `receiver serve` expecting it to exit by itself (it refuses to start)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RECEIVER_")}
    environment.update({"PYTHONPATH": str(ROOT), **(env or {})})
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
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr  # one line, no traceback
    assert reason in lines[0]


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
        ('[[endpoints]]\nsecret_env = "UNSET_VARIABLE"\n', "no secret found in $UNSET_VARIABLE"),
        ("[server\n", "cannot read config file"),
        ("[server]\ncert_watch_interval = -5\n", "cert_watch_interval must be 0"),
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

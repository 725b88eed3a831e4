"""An automated TLS scan (sslyze) of the listening ports, on both engines and key types.

Refused: SSL 2/3, TLS 1.0/1.1, plain HTTP. Accepted: TLS 1.2 with forward-secret AEAD suites
only (ECDHE with AES-GCM or ChaCha20-Poly1305: no RC4, 3DES, CBC, SHA-1 MAC, NULL, EXPORT or
anonymous suites) and TLS 1.3; no compression, no client-initiated renegotiation, no known
protocol attacks. The TLS policy is the same for every provider (one listener), so these
tests are not repeated per provider; the admin listener (its own uvicorn server, whatever the
engine, on the same TLS context) is held to the same policy.
"""

from __future__ import annotations

import hashlib
import re
import signal
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
import trustme
from sslyze.plugins.openssl_cipher_suites.implementation import CipherSuitesScanResult
from sslyze.plugins.scan_commands import ScanCommand
from sslyze.scanner.models import (
    AllScanCommandsAttempts,
    ServerScanRequest,
    ServerScanResult,
    ServerScanStatusEnum,
)
from sslyze.scanner.scan_command_attempt import ScanCommandAttemptStatusEnum
from sslyze.scanner.scanner import Scanner
from sslyze.server_setting import ServerNetworkLocation

from receiver.certs import DevCertificates
from tests.conftest import Harness, enreach_event, post_event
from tests.support.certs import write_certificates
from tests.support.faults import stop_cleanly

ENGINES = ["uvicorn", "hypercorn"]
KEY_TYPES = {"ecdsa": trustme.KeyType.ECDSA, "rsa": trustme.KeyType.RSA}
REFUSED_VERSIONS = ["ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1"]
STRONG_TLS12 = re.compile(
    r"TLS_ECDHE_(ECDSA|RSA)_WITH_(AES_128_GCM_SHA256|AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256)"
)
WEAK_MARKS = ("RC4", "3DES", "DES_", "_CBC_", "NULL", "EXPORT", "anon", "_ADH_", "_PSK_", "_MD5")
COMMANDS = {
    ScanCommand.SSL_2_0_CIPHER_SUITES,
    ScanCommand.SSL_3_0_CIPHER_SUITES,
    ScanCommand.TLS_1_0_CIPHER_SUITES,
    ScanCommand.TLS_1_1_CIPHER_SUITES,
    ScanCommand.TLS_1_2_CIPHER_SUITES,
    ScanCommand.TLS_1_3_CIPHER_SUITES,
    ScanCommand.TLS_COMPRESSION,
    ScanCommand.SESSION_RENEGOTIATION,
    ScanCommand.TLS_FALLBACK_SCSV,
    ScanCommand.HEARTBLEED,
    ScanCommand.OPENSSL_CCS_INJECTION,
    ScanCommand.ROBOT,
    ScanCommand.ELLIPTIC_CURVES,
}


def scan(port: int) -> AllScanCommandsAttempts:
    """Every scan this suite checks, against 127.0.0.1:`port`."""
    location = ServerNetworkLocation(hostname="localhost", port=port, ip_address="127.0.0.1")
    scanner = Scanner()
    scanner.queue_scans([ServerScanRequest(server_location=location, scan_commands=COMMANDS)])
    results: list[ServerScanResult] = list(scanner.get_results())
    (result,) = results
    assert result.scan_status == ServerScanStatusEnum.COMPLETED, result.connectivity_error_trace
    assert result.scan_result is not None
    return result.scan_result


def suites(scans: AllScanCommandsAttempts, version: str) -> list[str]:
    """Names of the cipher suites the server accepted for `version` (e.g. "tls_1_2")."""
    attempt = getattr(scans, f"{version}_cipher_suites")
    assert attempt.status == ScanCommandAttemptStatusEnum.COMPLETED, attempt.error_trace
    outcome: CipherSuitesScanResult = attempt.result
    return [accepted.cipher_suite.name for accepted in outcome.accepted_cipher_suites]


def check_policy(scans: AllScanCommandsAttempts) -> list[str]:
    """Assert the whole TLS policy; returns the accepted TLS 1.2 suites."""
    for version in REFUSED_VERSIONS:
        assert suites(scans, version) == [], f"{version} is accepted"
    tls12 = suites(scans, "tls_1_2")
    assert tls12, "TLS 1.2 is refused altogether"
    weak = [name for name in tls12 if any(mark in name for mark in WEAK_MARKS)]
    assert not weak, f"weak TLS 1.2 suites accepted: {weak}"
    assert all(STRONG_TLS12.fullmatch(name) for name in tls12), tls12
    attempt = scans.tls_1_2_cipher_suites
    assert attempt.result is not None
    for accepted in attempt.result.accepted_cipher_suites:
        key = accepted.ephemeral_key
        assert key is not None and key.size >= 253, f"{accepted.cipher_suite.name}: {key}"
    assert suites(scans, "tls_1_3"), "TLS 1.3 is refused"
    assert scans.tls_compression.result is not None
    assert not scans.tls_compression.result.supports_compression
    assert scans.session_renegotiation.result is not None
    assert not scans.session_renegotiation.result.is_vulnerable_to_client_renegotiation_dos
    assert scans.tls_fallback_scsv.result is not None
    assert scans.tls_fallback_scsv.result.supports_fallback_scsv
    assert scans.heartbleed.result is not None
    assert not scans.heartbleed.result.is_vulnerable_to_heartbleed
    assert scans.openssl_ccs_injection.result is not None
    assert not scans.openssl_ccs_injection.result.is_vulnerable_to_ccs_injection
    assert scans.robot.result is not None
    assert "NOT_VULNERABLE" in scans.robot.result.robot_result.name
    assert scans.elliptic_curves.result is not None
    small = [
        curve.name
        for curve in scans.elliptic_curves.result.supported_curves or []
        if re.search(r"(160|163|192|193|224|233|239)", curve.name)
    ]
    assert not small, f"curves under 256 bits accepted: {small}"
    return tls12


def plain_http_answer(port: int) -> str:
    """What curl gets when it speaks plain HTTP to the port ("000": no HTTP response)."""
    result = subprocess.run(
        ["curl", "--silent", "--max-time", "5", "--output", "/dev/null",
         "--write-out", "%{http_code}", f"http://127.0.0.1:{port}/healthz"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return result.stdout


@pytest.mark.parametrize("key_type", sorted(KEY_TYPES))
@pytest.mark.parametrize("engine", ENGINES)
def test_scan_finds_only_modern_forward_secret_tls_and_no_plain_http(
    harness: Harness, tmp_path: Path, engine: str, key_type: str
) -> None:
    harness.certs = write_certificates(tmp_path / "certs", KEY_TYPES[key_type])
    receiver = harness.receiver("--engine", engine)
    tls12 = check_policy(scan(receiver.port))
    signer = "ECDSA" if key_type == "ecdsa" else "RSA"
    assert all(f"_ECDHE_{signer}_" in name for name in tls12), tls12
    assert plain_http_answer(receiver.port) == "000"
    assert sorted(check_policy(scan(receiver.admin_port))) == sorted(tls12)
    assert plain_http_answer(receiver.admin_port) == "000"
    with harness.client() as client:  # and the scans left both serving
        assert post_event(client, receiver.url(), enreach_event()).status_code == 200
        assert client.get(receiver.admin_url("/readyz")).status_code == 200
    stop_cleanly(receiver)


def served_certificate(port: int, cipher: str) -> str:
    """SHA-256 of the certificate a TLS 1.2 client offering only `cipher` is given."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # which certificate comes back is the question here
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(cipher)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest()


def certificate_digest(certs: DevCertificates) -> str:
    """SHA-256 of the leaf certificate in `certs`."""
    pem = certs.cert.read_text()
    leaf = pem[: pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(leaf)).hexdigest()


@pytest.mark.parametrize("engine", ENGINES)
def test_sighup_to_a_new_key_type_is_refused_and_the_old_certificate_stays_whole(
    harness: Harness, tmp_path: Path, engine: str
) -> None:
    """OpenSSL keeps one certificate per key type in a context, so a reload from ECDSA to
    RSA would leave the old certificate served on its suites. The receiver refuses such a
    reload with one log line (a restart switches key types) and keeps serving the old one."""
    live = write_certificates(tmp_path / "live", trustme.KeyType.ECDSA)
    harness.certs = live
    receiver = harness.receiver("--engine", engine)
    assert receiver.proc is not None
    old = certificate_digest(live)
    assert served_certificate(receiver.port, "ECDHE-ECDSA-AES128-GCM-SHA256") == old
    replacement = write_certificates(tmp_path / "new", trustme.KeyType.RSA)
    live.cert.write_bytes(replacement.cert.read_bytes())
    live.key.write_bytes(replacement.key.read_bytes())
    receiver.proc.send_signal(signal.SIGHUP)
    harness.wait_for(lambda: "changing the key type needs a restart" in receiver.log,
                     what="the refused reload")  # fmt: skip
    assert "certificate reloaded" not in receiver.log
    tls12 = check_policy(scan(receiver.port))
    assert all("_ECDHE_ECDSA_" in name for name in tls12), tls12
    assert served_certificate(receiver.port, "ECDHE-ECDSA-AES128-GCM-SHA256") == old
    assert receiver.proc.poll() is None
    stop_cleanly(receiver)

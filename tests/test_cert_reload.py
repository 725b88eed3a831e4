"""Certificates replaced under a running receiver: on SIGHUP, and when the files change.

Both listeners (the webhook port and the admin listener) serve the one certificate: each must
serve the new one, and neither the old.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from receiver.certs import DevCertificates
from receiver.testing import ReceiverProcess
from tests.conftest import Harness
from tests.support.certs import (
    LISTENERS,
    copy_certificates,
    fingerprint,
    key_lines,
    mount_certificates,
    replace_file,
    swap_mount,
    trusted_by,
    write_certificates,
)

WATCH = ("--cert-watch-interval", "0.2")
FAILED = "certificate files changed but cannot be loaded"


def replace_pair(live: DevCertificates, new: DevCertificates) -> None:
    """Replace the key, then the certificate, each with one atomic rename."""
    replace_file(live.key, new.key.read_bytes())
    replace_file(live.cert, new.cert.read_bytes())


def assert_no_key_material(receiver: ReceiverProcess, *certs: DevCertificates) -> None:
    assert "PRIVATE KEY" not in receiver.log
    for pair in certs:
        assert not [line for line in key_lines(pair) if line in receiver.log]


@pytest.mark.parametrize(
    ("engine", "rotation"),
    [("uvicorn", "rename"), ("hypercorn", "rename"), ("uvicorn", "kubernetes")],
)
def test_changed_certificate_files_are_served_without_a_signal(
    harness: Harness, tmp_path: Path, engine: str, rotation: str
) -> None:
    if rotation == "kubernetes":
        live = mount_certificates(harness.certs, tmp_path / "live")
    else:
        live = copy_certificates(harness.certs, tmp_path / "live")
    harness.certs = live
    receiver = harness.receiver("--engine", engine, *WATCH)
    new = write_certificates(tmp_path / "new")
    assert trusted_by(receiver, live.ca) == LISTENERS
    assert trusted_by(receiver, new.ca) == set()
    if rotation == "kubernetes":
        swap_mount(live, new, "..v2")
    else:
        replace_pair(live, new)
    harness.wait_for(
        lambda: trusted_by(receiver, new.ca) == LISTENERS, timeout=10, what="the new certificate"
    )
    assert trusted_by(receiver, live.ca) == set()
    harness.wait_for(lambda: fingerprint(new) in receiver.log, timeout=5, what="the reload log")
    assert f"certificate files changed, reloaded {live.cert}: subject " in receiver.log
    assert_no_key_material(receiver, live, new)
    assert receiver.proc is not None and receiver.proc.poll() is None


def test_a_half_rotated_pair_keeps_the_old_certificate_until_the_new_pair_is_whole(
    harness: Harness, tmp_path: Path
) -> None:
    live = copy_certificates(harness.certs, tmp_path / "live")
    harness.certs = live
    receiver = harness.receiver(*WATCH)
    new = write_certificates(tmp_path / "new")

    def failures() -> int:
        return receiver.log.count(FAILED)

    # The new certificate before its key: a mismatched pair, refused and logged once.
    replace_file(live.cert, new.cert.read_bytes())
    harness.wait_for(lambda: failures() == 1, timeout=10, what="the refused reload")
    time.sleep(1.0)  # five more looks at the same files, each retrying
    assert failures() == 1, receiver.log
    assert f"cannot load TLS certificate {live.cert} with key {live.key}" in receiver.log
    assert trusted_by(receiver, live.ca) == LISTENERS
    assert trusted_by(receiver, new.ca) == set()
    # No key at all for a moment: another reason, logged once more.
    live.key.unlink()
    harness.wait_for(lambda: failures() == 2, timeout=10, what="the missing key")
    time.sleep(1.0)
    assert failures() == 2, receiver.log
    assert f"TLS key file not found: {live.key}" in receiver.log
    assert trusted_by(receiver, live.ca) == LISTENERS
    # The pair is whole again: served at the next look.
    replace_file(live.key, new.key.read_bytes())
    harness.wait_for(
        lambda: trusted_by(receiver, new.ca) == LISTENERS, timeout=10, what="the new certificate"
    )
    assert trusted_by(receiver, live.ca) == set()
    harness.wait_for(lambda: fingerprint(new) in receiver.log, timeout=5, what="the reload log")
    assert failures() == 2
    assert_no_key_material(receiver, live, new)


def test_sighup_reloads_the_certificate_and_interval_zero_turns_file_watching_off(
    harness: Harness, tmp_path: Path
) -> None:
    live = copy_certificates(harness.certs, tmp_path / "live")
    harness.certs = live
    # The option's 0 overrides the variable's 0.2 s.
    receiver = harness.receiver(
        "--cert-watch-interval", "0", env={"RECEIVER_CERT_WATCH_INTERVAL": "0.2"}
    )
    assert receiver.proc is not None
    new = write_certificates(tmp_path / "new")
    replace_pair(live, new)
    time.sleep(1.5)  # seven looks' worth at 0.2 s
    assert trusted_by(receiver, live.ca) == LISTENERS
    assert trusted_by(receiver, new.ca) == set()
    assert "reloading the certificate when" not in receiver.log
    receiver.proc.send_signal(signal.SIGHUP)
    harness.wait_for(
        lambda: trusted_by(receiver, new.ca) == LISTENERS, timeout=10, what="the new certificate"
    )
    assert trusted_by(receiver, live.ca) == set()
    assert receiver.proc.poll() is None
    harness.wait_for(lambda: fingerprint(new) in receiver.log, timeout=5, what="the reload log")
    assert f"certificate reloaded from {live.cert}: subject " in receiver.log
    assert_no_key_material(receiver, live, new)

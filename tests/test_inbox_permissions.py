"""The inbox holds callers' numbers: its files are the owner's only, whatever the umask.

`inbox.db`, its `-wal` and `-shm` and the dispatch lock are created 0600, an existing inbox
that others could read is made so (and the log says so, once), and a certificates folder the
receiver creates is 0700.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from receiver.certs import write_dev_certificates
from tests.conftest import Harness, enreach_event, post_event


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def inbox_files(inbox: Path) -> list[Path]:
    """The database, its WAL and shared-memory files, and the dispatch lock."""
    return [
        inbox,
        *(inbox.with_name(inbox.name + suffix) for suffix in ("-wal", "-shm", ".dispatch.lock")),
    ]


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    """While inside, this process (and what it starts) creates files under `mask`."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o000], ids=["umask-022", "umask-000"])
def test_a_new_inbox_and_its_files_are_the_owners_only(harness: Harness, mask: int) -> None:
    with umask(mask):
        receiver = harness.receiver()
    with harness.client() as client:
        assert post_event(client, receiver.url(), enreach_event()).status_code == 200
    files = inbox_files(receiver.inbox)
    assert {path.name: oct(mode(path)) for path in files} == {
        path.name: oct(0o600) for path in files
    }
    assert receiver.stop() == 0


def test_an_inbox_others_could_read_is_made_private_and_that_is_logged_once(
    harness: Harness,
) -> None:
    inbox = harness.tmp_path / "inbox.db"
    with umask(0o022):
        # An inbox left by an earlier version, with a WAL not yet checkpointed (a crash).
        writer = sqlite3.connect(inbox, isolation_level=None)
        writer.execute("PRAGMA journal_mode = WAL")
        writer.execute("CREATE TABLE IF NOT EXISTS leftover (x)")
        lock = inbox.with_name("inbox.db.dispatch.lock")
        lock.touch(0o644)
    try:
        assert all(mode(path) & 0o044 for path in inbox_files(inbox)), "the setup is not open"
        receiver = harness.receiver()
        with harness.client() as client:
            assert post_event(client, receiver.url(), enreach_event()).status_code == 200
        assert [mode(path) for path in inbox_files(inbox)] == [0o600] * 4
    finally:
        writer.close()
    assert receiver.stop() == 0
    receiver.start()  # already private: nothing more to say
    assert receiver.stop() == 0
    for path in inbox_files(inbox):
        lines = [line for line in receiver.log.splitlines() if f"{path} was open to other" in line]
        assert len(lines) == 1, (path.name, lines, receiver.log)
        assert "WARNING" in lines[0] and "made it 600" in lines[0]


def test_a_certificates_folder_the_receiver_creates_is_the_owners_only(tmp_path: Path) -> None:
    with umask(0o000):
        certs = write_dev_certificates(tmp_path / "new" / "certs", ["localhost"])
    assert mode(certs.cert.parent) == 0o700
    assert mode(certs.key) == 0o600

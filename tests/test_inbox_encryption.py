"""Payloads encrypted at rest (issue 18): with `RECEIVER_INBOX_KEYS` the inbox file and the
database rows hold no payload in the clear, while handlers, replay, the inbox commands and the
console read them as before; a missing or wrong key is a clear error, never garbage; keys
rotate by putting a new one first.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import psycopg
import pytest

from receiver.exceptions import ConfigError, StorageError
from receiver.inbox.base import open_admin
from receiver.inbox.models import EventFilter, State
from receiver.inbox.sealing import MAGIC, keyring_from_env, new_key, parse_keys
from tests.conftest import SECRET, Harness, run_cli
from tests.support import postgres
from tests.support.console import crm_states, dead_letter, start

postgres_server = postgres.postgres_server
postgres_database = postgres.postgres_database

NUMBER = "+358407770011"
KEY1, KEY2 = new_key("k1"), new_key("k2")


def scenario(harness: Harness, url: str, seed: int = 71) -> None:
    """Two calls' events from `receiver scenario`."""
    result = run_cli(
        "scenario", url, "--cacert", str(harness.certs.ca), "--calls", "2", "--seed", str(seed),
        cwd=harness.tmp_path, env={"RECEIVER_ENREACH_SECRET": SECRET},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def audited(harness: Harness) -> list[dict[str, object]]:
    """What the `audit` subscriber handled: it parses each payload, so a call id means the
    handler got the plaintext."""
    path = harness.tmp_path / "handled.jsonl"
    if not path.exists():
        return []
    records = [orjson.loads(line) for line in path.read_bytes().splitlines() if line]
    return [r for r in records if r["subscriber"] == "audit"]


def file_bytes(inbox: Path) -> bytes:
    """The inbox file and its WAL, as they are on disk."""
    return b"".join(p.read_bytes() for p in sorted(inbox.parent.glob(inbox.name + "*")))


def test_payloads_are_sealed_on_disk_and_read_as_before_with_the_key(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECEIVER_INBOX_KEYS", KEY1)  # this process reads the inbox too
    flag = tmp_path / "crm-broken"
    flag.write_text(NUMBER)
    receiver = start(harness, flag, {"RECEIVER_INBOX_KEYS": KEY1})
    scenario(harness, receiver.url("/enreach"))
    dead = dead_letter(harness, receiver, NUMBER)
    admin = open_admin(str(receiver.inbox))
    try:
        count = admin.stats().events
    finally:
        admin.close()
    harness.wait_for(lambda: len(audited(harness)) == count, what="audit handled every event")
    assert all(r["call_id"] for r in audited(harness))  # the handler read each payload

    # On disk: not one payload in the clear, not even the caller's number.
    raw = file_bytes(receiver.inbox)
    with sqlite3.connect(receiver.inbox) as db:
        rows = db.execute("SELECT payload FROM events").fetchall()
    assert rows and all(bytes(p).startswith(MAGIC + b"\x02k1") for (p,) in rows)
    assert NUMBER.encode() not in raw and b"CallerNumber" not in raw and b"CallId" not in raw

    keyed = {"RECEIVER_INBOX_KEYS": KEY1}
    where = ("inbox", "--inbox", str(receiver.inbox))
    shown = run_cli(*where, "show", dead, "--unmasked", cwd=tmp_path, env=keyed)
    assert shown.returncode == 0 and NUMBER in shown.stdout, shown.stderr
    found = run_cli(*where, "list", "--phone", NUMBER, "--json", cwd=tmp_path, env=keyed)
    assert {d["id"] for d in orjson.loads(found.stdout)} == {dead}  # searched once opened

    # Without the key, or with a wrong one under its id: a clear error, no bytes.
    blind = run_cli(*where, "show", dead, cwd=tmp_path, env={"RECEIVER_INBOX_KEYS": ""})
    assert blind.returncode == 2
    assert "is encrypted (key 'k1'); set RECEIVER_INBOX_KEYS" in blind.stderr
    wrong = run_cli(*where, "show", dead, cwd=tmp_path, env={"RECEIVER_INBOX_KEYS": new_key("k1")})
    assert wrong.returncode == 2 and "does not open with key 'k1'" in wrong.stderr
    assert KEY1.split(":")[1] not in shown.stdout + shown.stderr + wrong.stderr

    # Replay delivers the opened payload once the CRM is fixed.
    flag.unlink()
    replayed = run_cli(*where, "replay", dead, cwd=tmp_path, env=keyed)
    assert replayed.returncode == 0, replayed.stderr
    harness.wait_for(lambda: crm_states(receiver).get("dead", 0) == 0, what="the replay done")

    # Rotation: the new key first; what the old one sealed still opens.
    assert receiver.stop() == 0
    rotated = start(harness, flag, {"RECEIVER_INBOX_KEYS": f"{KEY2},{KEY1}"})
    scenario(harness, rotated.url("/enreach"), seed=72)
    with sqlite3.connect(rotated.inbox) as db:
        ids = {bytes(p)[4:7] for (p,) in db.execute("SELECT payload FROM events")}
    assert ids == {b"\x02k1", b"\x02k2"}
    both = run_cli(
        *where, "show", dead, "--json", cwd=tmp_path,
        env={"RECEIVER_INBOX_KEYS": f"{KEY2},{KEY1}"},
    )  # fmt: skip
    assert both.returncode == 0 and orjson.loads(both.stdout)["payload"]["CallId"]
    assert KEY1.split(":")[1] not in receiver.log + rotated.log


def test_the_database_rows_hold_no_payload_in_the_clear(
    harness: Harness,
    postgres_server: postgres.PostgresServer,
    postgres_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = postgres_database.replace(f":{postgres_server.password}@", "@")
    env = {"PGPASSWORD": postgres_server.password, "RECEIVER_INBOX_KEYS": KEY1}
    receiver = harness.receiver("--inbox", url, env=env)
    scenario(harness, receiver.url("/enreach"))
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    with psycopg.connect(url) as conn:
        count = conn.execute("SELECT count(*) FROM receiver_events").fetchone()
        assert count is not None
        harness.wait_for(lambda: len(harness.handled_keys()) >= count[0], what="all handled")
        payloads = [bytes(p) for (p,) in conn.execute("SELECT payload FROM receiver_events")]
    assert payloads and all(p.startswith(MAGIC + b"\x02k1") for p in payloads)
    assert not [p for p in payloads if b"CallId" in p or b"+358" in p]
    monkeypatch.setenv("RECEIVER_INBOX_KEYS", KEY1)
    admin = open_admin(url)
    try:
        listed = admin.list(EventFilter(states=(State.DONE,)), limit=500)
        assert listed and all(orjson.loads(d.payload)["CallId"] for d in listed)
    finally:
        admin.close()


def test_keys_are_checked_and_a_sealed_payload_is_bound_to_its_event() -> None:
    ring = parse_keys(f"{KEY2}\n{KEY1}", "test")
    assert ring.current == "k2" and set(ring.keys) == {"k1", "k2"}
    sealed = ring.seal(b'{"CallId": "c"}', "enreach", "key-1")
    assert ring.unseal(sealed, "enreach", "key-1") == b'{"CallId": "c"}'
    with pytest.raises(StorageError, match="does not open with key 'k2'"):
        ring.unseal(sealed, "enreach", "key-2")  # moved to another event
    assert keyring_from_env({}) is None
    for text, said in [
        ("k1", "each key is ID:BASE64"),
        ("k 1:AAAA", "each key is ID:BASE64"),
        ("k1:not base64!", "is not base64"),
        ("k1:AAAA", "must be 16, 24 or 32 bytes"),
        (f"{KEY1},{KEY1}", "given twice"),
    ]:
        with pytest.raises(ConfigError, match=said):
            parse_keys(text, "RECEIVER_INBOX_KEYS")

"""The request headers stored with each event (`receiver.stored_headers`): on real receivers
over TLS, both engines, what an operator later reads with the event is what the sender sent
less every credential (the well-known ones, any header the endpoint authenticates with, any
whose name says it holds one) and the hop-by-hop headers, within 4 KiB; no secret reaches the
inbox file."""

from __future__ import annotations

import ssl
import uuid
from pathlib import Path

import httpx
import orjson
import pytest

from receiver.inbox.base import open_admin
from receiver.inbox.models import EventFilter, EventRecord, decode_headers
from receiver.stored_headers import LIMIT, REMEMBERED, HeaderKeeper
from tests.conftest import SECRET, Harness, enreach_event
from tests.support.e2e import start_configured
from tests.support.provider_cases import ENGINES

GATE = "gate-7d1f3a"
API_KEY = "bz-key-5c2e9b"
CONFIG = """
[[endpoints]]
name = "enreach"
kind = "enreach"
path = "/enreach"
secret_env = "RECEIVER_ENREACH_SECRET"

[[endpoints]]
name = "ws"
kind = "engage_web_services"
path = "/ws"
auth_header = "X-Gate"
secret_env = "WS_GATE"
body = "json"

[[endpoints]]
name = "hooks"
kind = "buzzeasy"
path = "/hooks"
event_type = "Conversation.Closed"
secret_env = "BZ_KEY"
"""
ENV = {"RECEIVER_ENREACH_SECRET": SECRET, "WS_GATE": GATE, "BZ_KEY": API_KEY}

NOISE = {
    "Cookie": "session=c00k1e-s3cr3t",
    "Proxy-Authorization": "Basic cHJveHk6cHJveHktczNjcjN0",
    "X-Auth-Token": "t0k3n-s3cr3t",
    "X-Upstream-Auth": "au7h-s3cr3t",
    "X-Session-Id": "s3ss10n-s3cr3t",
    "Api-Key": "ap1-k3y-s3cr3t",
    "X-Hub-Signature-256": "sha256=s1gn4tur3",
}
"""Headers that hold credentials by name; never stored."""
KEPT = {"X-Request-Id": "req-42", "User-Agent": "Enreach-Webhooks/1.0", "X-Forwarded-For": "1"}


def client(harness: Harness) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=str(harness.certs.ca)))


def stored(inbox: Path) -> dict[str, EventRecord]:
    """Every event of the inbox with its deliveries, by source."""
    admin = open_admin(str(inbox))
    try:
        ids = {d.id for d in admin.list(EventFilter(), limit=100)}
        records = [admin.get(str(i)) for i in ids]
    finally:
        admin.close()
    return {r.source: r for r in records if r is not None}


def secrets_in_files(inbox: Path, secrets: list[str]) -> list[str]:
    """Those of `secrets` found anywhere in the inbox's files (database, WAL)."""
    data = b"".join(p.read_bytes() for p in inbox.parent.glob(inbox.name + "*") if p.is_file())
    return [s for s in secrets if s.encode() in data]


@pytest.mark.parametrize("engine", ENGINES)
def test_an_event_keeps_its_headers_less_credentials_and_hop_by_hop_ones(
    harness: Harness, engine: str
) -> None:
    receiver = start_configured(harness, CONFIG, ENV, "--engine", engine, "--no-dispatch")
    body = orjson.dumps(enreach_event())
    with client(harness) as http:
        enreach = http.post(
            receiver.url("/enreach"),
            content=body,
            headers=[
                ("X-Benemen-Token", SECRET),
                ("Content-Type", "application/json"),
                ("X-Benemen-Event", "QueueCallInUserAllocated"),
                ("Authorization", "Bearer b34r3r-s3cr3t"),
                ("Keep-Alive", "timeout=5"),
                ("X-Trace", "first"),
                ("X-Trace", "second"),
                *NOISE.items(),
                *KEPT.items(),
            ],
        )
        ws = http.post(
            receiver.url("/ws"),
            content=b'{"uii": "u-1", "agent_id": "7"}',
            headers={"X-Gate": GATE, "Content-Type": "application/json", **KEPT},
        )
        hooks = http.post(
            receiver.url("/hooks"),
            content=b'{"id": "c-1"}',
            headers={"x-api-key": API_KEY, "Content-Type": "application/json"},
        )
    assert [r.status_code for r in (enreach, ws, hooks)] == [200, 200, 200]
    events = stored(receiver.process.inbox)
    host = f"127.0.0.1:{receiver.process.port}"
    names = [name for name, _ in events["enreach"].headers]
    assert names == [n.lower() for n in names]
    assert set(names) == {
        "host", "content-type", "content-length", "accept", "accept-encoding", "x-benemen-event",
        "x-trace", "x-request-id", "user-agent", "x-forwarded-for",
    }  # fmt: skip
    kept = dict(events["enreach"].headers)
    assert kept["host"] == host and kept["content-length"] == str(len(body))
    assert {name.lower(): value for name, value in KEPT.items()}.items() <= kept.items()
    assert [v for n, v in events["enreach"].headers if n == "x-trace"] == ["first", "second"]
    for name in ("x-gate", "x-api-key", "authorization", "cookie", "keep-alive", "connection"):
        assert all(name not in n for n, _ in events["ws"].headers + events["hooks"].headers)
    assert ("x-request-id", "req-42") in events["ws"].headers
    assert ("content-type", "application/json") in events["hooks"].headers
    secrets = [SECRET, GATE, API_KEY, "b34r3r-s3cr3t", *NOISE.values()]
    receiver.process.stop()
    assert secrets_in_files(receiver.process.inbox, secrets) == []


def test_headers_past_the_limit_are_left_out_and_the_rest_kept(harness: Harness) -> None:
    receiver = start_configured(harness, CONFIG, ENV, "--no-dispatch")
    large = [(f"X-Large-{n}", "x" * 1500) for n in range(4)]
    with client(harness) as http:
        response = http.post(
            receiver.url("/enreach"),
            content=orjson.dumps(enreach_event()),
            headers=[("X-Benemen-Token", SECRET), *large, ("X-Small", "after")],
        )
    assert response.status_code == 200
    admin = open_admin(str(receiver.process.inbox))
    try:
        (delivery,) = admin.list(EventFilter())
        event = admin.get(str(delivery.id))
    finally:
        admin.close()
    assert event is not None
    names = [name for name, _ in event.headers]
    assert "host" in names and "x-small" in names
    assert [n for n in names if n.startswith("x-large")] == ["x-large-0", "x-large-1"]
    assert len(orjson.dumps(event.headers)) <= LIMIT


# -- the keeper itself --------------------------------------------------------------------------


def test_the_keeper_drops_the_endpoints_own_header_and_credential_names() -> None:
    keep = HeaderKeeper([b"X-Gate"])
    blob = keep(
        [
            (b"x-gate", b"s"),
            (b"X-GATE", b"s"),
            (b"x-my-secret", b"s"),
            (b"x-passwd", b"s"),
            (b"x-csrf", b"s"),
            (b"x-credentials", b"s"),
            (b"te", b"trailers"),
            (b"upgrade", b"h2c"),
            (b"Trailer", b"x"),
            (b"X-Kept", b"\xe9t\xe9"),
        ]
    )
    assert decode_headers(blob) == (("x-kept", "été"),)
    assert keep([(b"x-gate", b"s")]) is None


def test_the_keeper_remembers_a_bounded_number_of_names() -> None:
    keep = HeaderKeeper()
    for n in range(REMEMBERED + 100):
        blob = keep([(f"x-name-{n}".encode(), b"v"), (f"x-token-{n}".encode(), b"s")])
        assert decode_headers(blob) == ((f"x-name-{n}", "v"),)
    assert len(keep._names) == REMEMBERED


def test_escapes_count_toward_the_limit() -> None:
    keep = HeaderKeeper(limit=200)
    blob = keep([(b"x-a", b"\x01" * 30), (b"x-b", b"\x02" * 30), (b"x-c", b"ok")])
    assert blob is not None and len(blob) <= 200
    assert [name for name, _ in decode_headers(blob)] == ["x-a"]
    assert HeaderKeeper(limit=100)([(b"x-a", b"\x01" * 60)]) is None


def test_a_unique_header_value_is_stored_once_per_event(harness: Harness) -> None:
    """The blob is the event's, kept with its row: a duplicate does not replace it."""
    receiver = start_configured(harness, CONFIG, ENV, "--no-dispatch")
    event = enreach_event()
    marks = [uuid.uuid4().hex for _ in range(2)]
    with client(harness) as http:
        for mark in marks:
            response = http.post(
                receiver.url("/enreach"),
                content=orjson.dumps(event),
                headers={"X-Benemen-Token": SECRET, "X-Mark": mark},
            )
            assert response.status_code == 200
    record = stored(receiver.process.inbox)["enreach"]
    assert [v for n, v in record.headers if n == "x-mark"] == marks[:1]

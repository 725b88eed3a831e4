"""`receiver send`: one event, built from the catalog sample, checked on the wire."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
import pytest
import trustme

from receiver.catalogs.samples import ENREACH_EVENT_TYPES
from receiver.commands import send as send_command
from tests.test_sender_server import RecordingServer, Redirect, scripted

SECRET = "MySecretString"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("127.0.0.1")


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(autouse=True)
def secret_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECEIVER_ENREACH_SECRET", SECRET)


def send(*argv: str, command: str = "send") -> int:
    parser = argparse.ArgumentParser(prog="receiver")
    send_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([command, *argv])
    code: int = args.func(args)
    return code


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("receiver send: error: ")
    return err


def test_sends_the_sample_with_overrides(
    cert: trustme.LeafCert, ca_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with RecordingServer(cert) as server:
        code = send(
            server.url(),
            "QueueCallInUserAllocated",
            "--set",
            "CallerNumber=+358501231234",
            "--set=QueueName=Myynti 2",
            "--set",
            "DetailedReason=null",
            f"--cacert={ca_file}",
        )

    [request] = server.requests
    body = orjson.loads(request.body)
    assert code == 0
    assert request.method == "POST"
    assert request.header("X-Benemen-Event") == "QueueCallInUserAllocated"
    assert request.header("X-Benemen-Token") == SECRET
    assert request.header("Content-Type") == "application/json; charset=utf-8"
    assert request.header("Connection") == "Keep-Alive"
    assert body["EventType"] == "QueueCallInUserAllocated"
    assert (body["CallerNumber"], body["QueueName"], body["DetailedReason"]) == (
        "+358501231234",
        "Myynti 2",
        None,
    )
    assert capsys.readouterr().out.startswith(
        f"acknowledged: QueueCallInUserAllocated {body['Id']}"
    )


def test_trigger_is_an_alias_and_ids_are_fresh(cert: trustme.LeafCert, ca_file: Path) -> None:
    with RecordingServer(cert) as server:
        for _ in range(2):
            assert (
                send(server.url(), "UserWrapUpStarted", f"--cacert={ca_file}", command="trigger")
                == 0
            )

    ids = {orjson.loads(r.body)["Id"] for r in server.requests}
    assert len(ids) == 2


def test_seed_repeats_the_same_event(cert: trustme.LeafCert, ca_file: Path) -> None:
    with RecordingServer(cert) as server:
        for _ in range(2):
            send(server.url(), "QueueCallInArrived", "--seed=5", f"--cacert={ca_file}")

    assert server.requests[0].body == server.requests[1].body


def test_json_file_of_overrides_and_set_on_top(
    cert: trustme.LeafCert, ca_file: Path, tmp_path: Path
) -> None:
    overrides = tmp_path / "overrides.json"
    overrides.write_bytes(orjson.dumps({"MaxWrapUpDurationSec": 90, "QueueId": "q-1"}))
    with RecordingServer(cert) as server:
        send(
            server.url(),
            "UserWrapUpEnabled",
            f"--json={overrides}",
            "--set=MaxWrapUpDurationSec=45",
            f"--cacert={ca_file}",
        )

    body = orjson.loads(server.requests[0].body)
    assert (body["MaxWrapUpDurationSec"], body["QueueId"]) == (45, "q-1")


def test_json_file_as_the_whole_payload_may_carry_an_unknown_type(
    cert: trustme.LeafCert, ca_file: Path, tmp_path: Path
) -> None:
    payload = {"EventType": "QueueCallInConnected", "Id": "1", "Note": "Äänekoski"}
    path = tmp_path / "payload.json"
    path.write_bytes(orjson.dumps(payload))
    with RecordingServer(cert) as server:
        assert send(server.url(), f"--json={path}", f"--cacert={ca_file}") == 0

    assert server.requests[0].body == orjson.dumps(payload)
    assert server.requests[0].header("X-Benemen-Event") == "QueueCallInConnected"


def test_secret_from_another_variable_or_a_file(
    cert: trustme.LeafCert, ca_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_SECRET", "from-variable")
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-file\nolder-secret\n")
    with RecordingServer(cert) as server:
        send(server.url(), "QueueStatus", "--secret-env=QA_SECRET", f"--cacert={ca_file}")
        send(server.url(), "QueueStatus", f"--secret-file={secret_file}", f"--cacert={ca_file}")
        send(server.url(), "QueueStatus", "--no-secret", f"--cacert={ca_file}")

    tokens = [r.header("X-Benemen-Token") for r in server.requests]
    assert tokens == ["from-variable", "from-file", None]


@pytest.mark.parametrize("argv", [["--token", "abc"], ["--token=abc"], ["--secret", "abc"]])
def test_a_token_on_the_command_line_is_refused(
    cert: trustme.LeafCert, ca_file: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with RecordingServer(cert) as server:
        code = send(server.url(), "QueueStatus", *argv, f"--cacert={ca_file}")

    err = one_line_error(capsys)
    assert code == 2
    assert "refusing a secret given on the command line" in err
    assert "abc" not in err
    assert server.requests == []


def test_missing_secret_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RECEIVER_ENREACH_SECRET")

    assert send("https://127.0.0.1:1/", "QueueStatus") == 2
    assert "$RECEIVER_ENREACH_SECRET is not set" in one_line_error(capsys)


def test_unknown_event_type_lists_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert send("https://127.0.0.1:1/", "QueueCallInArived") == 2

    err = one_line_error(capsys)
    assert "unknown event type 'QueueCallInArived' (did you mean QueueCallInArrived?)" in err
    assert all(name in err for name in ENREACH_EVENT_TYPES)


@pytest.mark.parametrize("assignment", ["CallerNumber", "=5", "Caller Number=5"])
def test_bad_set_syntax_is_a_one_line_error(
    assignment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert send("https://127.0.0.1:1/", "QueueStatus", "--set", assignment) == 2
    assert f"--set expects FIELD=VALUE, got {assignment!r}" in one_line_error(capsys)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"[1, 2]", "must hold a JSON object, not list"), (b"{", "is not valid JSON")],
)
def test_bad_json_file_is_a_one_line_error(
    tmp_path: Path, content: bytes, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)

    assert send("https://127.0.0.1:1/", "QueueStatus", f"--json={path}") == 2
    assert message in one_line_error(capsys)


def test_unreachable_url_is_reported_after_the_retries(capsys: pytest.CaptureFixture[str]) -> None:
    code = send("https://127.0.0.1:1/", "QueueStatus", "--retries=1", "--retry-delay=0")

    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert [line.split(":")[0] for line in err[:2]] == ["attempt 1", "attempt 2"]
    assert err[-1].startswith("receiver send: error: QueueStatus ")
    assert err[-1].endswith("discarded after 2 attempts: cannot connect: Connection refused")


def test_a_redirect_is_a_failure(
    cert: trustme.LeafCert, ca_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with RecordingServer(cert, scripted(then=Redirect("/moved"))) as server:
        code = send(
            server.url(), "QueueStatus", "--retries=1", "--retry-delay=0", f"--cacert={ca_file}"
        )

    assert code == 1
    assert [r.target for r in server.requests] == ["/webhook/", "/webhook/"]
    assert "HTTP 302 redirect to /moved (not followed)" in capsys.readouterr().err


def test_untrusted_certificate_fails_unless_insecure(
    cert: trustme.LeafCert, capsys: pytest.CaptureFixture[str]
) -> None:
    with RecordingServer(cert) as server:
        refused = send(server.url(), "QueueStatus", "--retries=0")
        accepted = send(server.url(), "QueueStatus", "--insecure")

    assert (refused, accepted) == (1, 0)
    assert "TLS certificate verify failed" in capsys.readouterr().err
    assert len(server.requests) == 1


def test_dry_run_prints_the_request_and_sends_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code = send("https://127.0.0.1:1/hook", "QueueCallInComing", "--seed=1", "--dry-run")

    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[:5] == [
        "POST https://127.0.0.1:1/hook",
        "X-Benemen-Event: QueueCallInComing",
        "X-Benemen-Token: ***",
        "Content-Type: application/json; charset=utf-8",
        "Connection: Keep-Alive",
    ]
    assert orjson.loads(out[6])["EventType"] == "QueueCallInComing"
    assert SECRET not in "\n".join(out)


def test_unknown_field_gets_a_note(
    cert: trustme.LeafCert, ca_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with RecordingServer(cert) as server:
        send(server.url(), "QueueStatus", "--set=Colour=blue", f"--cacert={ca_file}")

    assert "note: Colour is not a field of QueueStatus; sent anyway" in capsys.readouterr().err
    assert orjson.loads(server.requests[0].body)["Colour"] == "blue"


def test_url_and_event_type_swapped_gets_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert send("QueueStatus", "https://127.0.0.1:1/") == 2
    assert "the URL comes first: receiver send https://127.0.0.1:1/ QueueStatus" in (
        one_line_error(capsys)
    )

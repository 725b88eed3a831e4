"""Playing a scenario at a recording TLS server, through the library and the CLI."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import trustme

from receiver.commands import scenario as scenario_command
from receiver.scenarios import PlannedRequest, ScenarioOptions, Summary, build_stream, run_stream
from receiver.sender import Delivery, EnreachWire, Sender
from tests.test_sender_server import Action, Recorded, RecordingServer

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


def checks_token(failing_type: str | None = None) -> Callable[[Recorded], Action]:
    """A receiver that answers 401 to a wrong token, 500 to `failing_type`, else 200."""

    def answer(request: Recorded) -> Action:
        if request.header("X-Benemen-Token") != SECRET:
            return 401
        return 500 if request.header("X-Benemen-Event") == failing_type else 200

    return answer


def play(
    server: RecordingServer,
    ca_file: Path,
    stream: list[PlannedRequest],
    *,
    rate: float | None = None,
    concurrency: int = 4,
    seen: list[tuple[PlannedRequest, Delivery]] | None = None,
) -> Summary:
    async def go() -> Summary:
        async with Sender(
            server.url(),
            provider=EnreachWire(secret=SECRET),
            verify=ca_file,
            retries=2,
            retry_delay=0.01,
            max_connections=concurrency,
        ) as sender:
            return await run_stream(
                stream,
                sender,
                rate=rate,
                concurrency=concurrency,
                on_delivery=(lambda p, d: seen.append((p, d))) if seen is not None else None,
            )

    return asyncio.run(go())


def test_every_outcome_is_counted(cert: trustme.LeafCert, ca_file: Path) -> None:
    stream = build_stream(
        ScenarioOptions(calls=8, seed=21, duplicate_ratio=0.3, wrong_token_ratio=0.3)
    )
    forged = sum(p.wrong_token for p in stream)
    seen: list[tuple[PlannedRequest, Delivery]] = []

    with RecordingServer(cert, checks_token()) as server:
        summary = play(server, ca_file, stream, seen=seen)

    assert forged > 0
    assert summary.ok
    assert (summary.planned, summary.sent, summary.attempts) == (len(stream),) * 3
    assert summary.acknowledged == len(stream) - forged
    assert summary.duplicates_sent == sum(p.duplicate for p in stream) > 0
    assert summary.wrong_token_sent == summary.rejected_as_expected == forged
    assert (summary.retried, summary.failed, summary.wrong_token_accepted) == (0, 0, 0)
    assert len(server.requests) == len(stream)  # a 401 to a forged request is not retried
    assert sorted(p.index for p, _ in seen) == list(range(len(stream)))
    assert summary.latency_p50_ms is not None and summary.latency_p99_ms is not None
    assert 0 < summary.latency_p50_ms <= summary.latency_p99_ms


def test_each_flow_arrives_in_the_planned_order(cert: trustme.LeafCert, ca_file: Path) -> None:
    stream = build_stream(ScenarioOptions(calls=12, seed=22, out_of_order_ratio=0.5))

    with RecordingServer(cert, checks_token()) as server:
        play(server, ca_file, stream, concurrency=6)

    arrived = [orjson.loads(r.body)["Id"] for r in server.requests]
    for flow in {p.flow for p in stream}:
        planned = [p.event_id for p in stream if p.flow == flow]
        assert [i for i in arrived if i in set(planned)] == planned
    assert len({r.connection for r in server.requests}) <= 6  # kept-alive connections reused


def test_failures_and_retries_are_counted(cert: trustme.LeafCert, ca_file: Path) -> None:
    stream = build_stream(ScenarioOptions(calls=4, flows=("inbound",), seed=23))

    with RecordingServer(cert, checks_token(failing_type="QueueCallInArrived")) as server:
        summary = play(server, ca_file, stream)

    assert not summary.ok
    assert summary.failed == summary.retried == 4
    assert summary.attempts == len(stream) + 4 * 2
    assert summary.acknowledged == len(stream) - 4


def test_a_receiver_that_accepts_a_wrong_token_fails_the_run(
    cert: trustme.LeafCert, ca_file: Path
) -> None:
    stream = build_stream(ScenarioOptions(calls=3, seed=24, wrong_token_ratio=1.0))

    with RecordingServer(cert) as server:  # answers 200 to everything
        summary = play(server, ca_file, stream)

    assert not summary.ok
    assert summary.wrong_token_accepted == summary.wrong_token_sent > 0
    assert summary.rejected_as_expected == 0
    assert "WRONG TOKEN ACCEPTED" in summary.render()


def test_rate_paces_the_stream(cert: trustme.LeafCert, ca_file: Path) -> None:
    stream = build_stream(ScenarioOptions(calls=3, flows=("inbound",), seed=25))[:12]

    with RecordingServer(cert, checks_token()) as server:
        started = time.monotonic()
        play(server, ca_file, stream, rate=40, concurrency=8)
        elapsed = time.monotonic() - started

    assert elapsed >= 11 / 40
    for n, request in enumerate(server.requests):
        assert request.arrived - started >= n / 40


def scenario_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="receiver")
    scenario_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["scenario", *argv])
    code: int = args.func(args)
    return code


def test_cli_plays_a_scenario_and_prints_a_json_summary(
    cert: trustme.LeafCert,
    ca_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RECEIVER_ENREACH_SECRET", SECRET)
    with RecordingServer(cert, checks_token()) as server:
        code = scenario_cli(
            server.url(),
            "--calls=5",
            "--seed=26",
            "--duplicate-ratio=0.2",
            "--wrong-token-ratio=0.2",
            "--out-of-order-ratio=0.2",
            f"--cacert={ca_file}",
            "--json",
        )

    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert code == 0
    assert summary["ok"] is True
    assert summary["seed"] == 26
    assert summary["sent"] == len(server.requests) == summary["planned"]
    assert summary["rejected_as_expected"] == summary["wrong_token_sent"]
    assert err == ""  # no progress bar when stderr is not a terminal


def test_cli_text_summary_and_failure_exit_code(
    cert: trustme.LeafCert,
    ca_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("QA_SECRET", SECRET)
    with RecordingServer(cert, checks_token(failing_type="QueueCallInComing")) as server:
        code = scenario_cli(
            server.url(),
            "--calls=2",
            "--flows=inbound",
            "--seed=27",
            "--secret-env=QA_SECRET",
            f"--cacert={ca_file}",
            "--retries=0",
        )

    out, _ = capsys.readouterr()
    assert code == 1
    assert "seed" in out and "27" in out
    assert "failed                2" in out
    assert "latency ms" in out


def test_cli_dry_run_prints_the_stream_without_sending(capsys: pytest.CaptureFixture[str]) -> None:
    code = scenario_cli("https://127.0.0.1:1/", "--calls=3", "--seed=28", "--dry-run")

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    stream = build_stream(ScenarioOptions(calls=3, seed=28))
    assert code == 0
    assert [line["event_id"] for line in lines] == [p.event_id for p in stream]
    assert lines[0]["payload"] == stream[0].payload


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--token=abc"], "refusing a secret given on the command line"),
        (["--secret", "abc"], "refusing a secret given on the command line"),
        (["--flows=inbound,voicemail"], "unknown flow voicemail"),
        (["--duplicate-ratio=2"], "duplicate ratio must be between 0 and 1"),
        (["--start=yesterday"], "--start expects an ISO time"),
        (["--concurrency=0"], "concurrency must be 1 or more"),
    ],
)
def test_cli_refuses_bad_input_in_one_line(
    argv: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RECEIVER_ENREACH_SECRET", SECRET)
    code = scenario_cli("https://127.0.0.1:1/", "--calls=1", *argv)

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("receiver scenario: error: ")
    assert message in err
    assert "abc" not in err

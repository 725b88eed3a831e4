"""What the inbox and dispatcher promise: nothing acknowledged is lost, nothing runs twice."""

from __future__ import annotations

import resource
import sqlite3
import time
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from tests.conftest import Harness, enreach_event, post_event, run_cli


def states(inbox: Path) -> dict[str, int]:
    """Dedup key → state, read straight from the inbox file."""
    with sqlite3.connect(inbox) as conn:
        query = "SELECT dedup_key, state FROM events JOIN deliveries ON event_id = id"
        return dict(conn.execute(query).fetchall())


def test_kill_9_loses_nothing_and_repeats_only_unfinished_work(harness: Harness) -> None:
    env = {"RECORD_SLEEP": "0.03"}
    receiver = harness.receiver("--workers", "4", env=env)
    acknowledged: list[str] = []
    with harness.client() as client:
        for _ in range(150):
            event = enreach_event()
            assert post_event(client, receiver.url(), event).status_code == 200
            acknowledged.append(event["Id"])
    harness.wait_for(lambda: len(harness.handled_keys()) >= 20, what="handlers to be busy")
    receiver.kill()
    at_kill = states(receiver.inbox)
    ended_before_kill = set(harness.handled_keys())
    assert set(at_kill) == set(acknowledged)  # every acknowledged event was on disk
    assert len(ended_before_kill) < len(acknowledged)  # the kill interrupted real work

    receiver.start()
    harness.wait_for(
        lambda: set(harness.handled_keys()) >= set(acknowledged), what="all events handled"
    )
    receiver.stop()
    counts: dict[str, int] = defaultdict(int)
    for key in harness.handled_keys():
        counts[key] += 1
    twice = {key for key, n in counts.items() if n > 1}
    # Only events whose completion had not been recorded when the process died run again.
    assert all(at_kill[key] != 2 for key in twice)
    assert twice <= ended_before_kill
    assert len(twice) <= 4
    assert set(states(receiver.inbox).values()) == {2}
    assert "recovered" in receiver.log


def test_locked_database_answers_503_and_recovers(harness: Harness) -> None:
    receiver = harness.receiver()
    blocker = sqlite3.connect(receiver.inbox, isolation_level=None)
    event = enreach_event()
    with harness.client() as client:
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        try:
            started = time.monotonic()
            response = post_event(client, receiver.url(), event)
            assert response.status_code == 503
            assert time.monotonic() - started < 10
            assert event["Id"] not in states(receiver.inbox)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        # The sender's retry succeeds once the lock is gone.
        assert post_event(client, receiver.url(), event).status_code == 200
    harness.wait_for(lambda: harness.handled_keys() == [event["Id"]])
    assert "could not store event" in receiver.log


def test_disk_full_answers_503_never_200_and_recovers(harness: Harness) -> None:
    receiver = harness.receiver()
    assert receiver.proc is not None
    pid = receiver.proc.pid
    soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    event = enreach_event()
    with harness.client() as client:
        # Writes past 4 KiB now fail with EFBIG, as on a full disk.
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (4096, hard))
        try:
            for _ in range(3):
                assert post_event(client, receiver.url(), event).status_code == 503
        finally:
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))
        assert post_event(client, receiver.url(), event).status_code == 200
    harness.wait_for(lambda: harness.handled_keys() == [event["Id"]])
    assert receiver.proc.poll() is None


def test_an_inbox_that_cannot_store_does_not_flood_the_log(harness: Harness) -> None:
    """While the disk is full every webhook gets 503: at most 10 of them are logged per 10 s."""
    receiver = harness.receiver()
    assert receiver.proc is not None
    pid = receiver.proc.pid
    soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    with harness.client() as client:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (4096, hard))
        try:
            for _ in range(30):
                assert post_event(client, receiver.url(), enreach_event()).status_code == 503
        finally:
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))
    receiver.stop()
    logged = [line for line in receiver.log.splitlines() if "could not store event" in line]
    assert 1 <= len(logged) <= 10, "\n".join(logged)


def test_failing_handler_retries_with_backoff_then_dead_letter_then_replay(
    harness: Harness,
) -> None:
    marker = harness.tmp_path / "crm-down"
    marker.touch()
    receiver = harness.receiver("--max-attempts", "3", env={"RECORD_FAIL_MARKER": str(marker)})
    event = enreach_event()
    with harness.client() as client:
        assert post_event(client, receiver.url(), event).status_code == 200
    harness.wait_for(lambda: any(r.get("final") for r in harness.records()), what="a dead letter")
    starts = [r for r in harness.records() if r["phase"] == "start"]
    assert [r["attempt"] for r in starts] == [0, 1, 2]
    dead = orjson.loads(
        run_cli(
            "inbox", "--inbox", str(receiver.inbox), "dead", "--json", cwd=harness.tmp_path
        ).stdout
    )
    assert [d["dedup_key"] for d in dead] == [event["Id"]]
    assert dead[0]["attempts"] == 3
    assert "scripted failure" in dead[0]["last_error"]

    marker.unlink()  # the CRM is back
    replay = run_cli(
        "inbox", "--inbox", str(receiver.inbox), "replay", str(dead[0]["id"]), cwd=harness.tmp_path
    )
    assert replay.returncode == 0, replay.stderr
    assert "replayed 1" in replay.stdout
    harness.wait_for(lambda: harness.handled_keys() == [event["Id"]], what="the replay")
    listed = orjson.loads(
        run_cli("inbox", "--inbox", str(receiver.inbox), "list", "--state", "done", "--json",
                cwd=harness.tmp_path).stdout
    )  # fmt: skip
    assert [e["dedup_key"] for e in listed] == [event["Id"]]


def test_replay_all_and_unknown_ids(harness: Harness) -> None:
    receiver = harness.receiver(
        "--max-attempts", "1", env={"RECORD_FAIL_TYPES": "UserAvailability"}
    )
    with harness.client() as client:
        for _ in range(3):
            assert (
                post_event(client, receiver.url(), enreach_event("UserAvailability")).status_code
                == 200
            )
    harness.wait_for(lambda: sum(1 for r in harness.records() if r.get("final")) == 3)
    receiver.stop()
    missing = run_cli(
        "inbox", "--inbox", str(receiver.inbox), "replay", "999", cwd=harness.tmp_path
    )
    assert missing.returncode == 1
    assert "not dead letters" in missing.stderr
    replay = run_cli("inbox", "--inbox", str(receiver.inbox), "replay", "--all", "--json",
                     cwd=harness.tmp_path)  # fmt: skip
    assert orjson.loads(replay.stdout) == {"replayed": 3}
    assert set(states(receiver.inbox).values()) == {0}


def test_a_hanging_handler_is_cut_off_and_others_go_on(harness: Harness) -> None:
    receiver = harness.receiver(
        "--handler-timeout", "0.5", "--max-attempts", "2",
        env={"RECORD_HANG_TYPES": "QueueStatus"},
    )  # fmt: skip
    hang = enreach_event("QueueStatus")
    fine = enreach_event("UserAvailability")
    with harness.client() as client:
        assert post_event(client, receiver.url(), hang).status_code == 200
        assert post_event(client, receiver.url(), fine).status_code == 200
    harness.wait_for(lambda: fine["Id"] in harness.handled_keys())
    harness.wait_for(lambda: any(r.get("final") for r in harness.records()))
    final = next(r for r in harness.records() if r.get("final"))
    assert final["key"] == hang["Id"]
    assert "timed out after 0.5s" in str(final["error"])


def test_events_of_one_call_are_handled_one_at_a_time_in_arrival_order(harness: Harness) -> None:
    receiver = harness.receiver("--workers", "8", env={"RECORD_SLEEP": "0.01"})
    calls = [enreach_event()["CallId"] for _ in range(6)]
    sent: dict[str, list[str]] = defaultdict(list)
    with harness.client() as client:
        for step in range(5):
            for call in calls:
                event = enreach_event(CallId=call, Timestamp=f"2018-01-01T08:01:0{step}.1")
                assert post_event(client, receiver.url(), event).status_code == 200
                sent[call.lower()].append(event["Id"])
    harness.wait_for(lambda: len(harness.handled_keys()) == 30)
    by_call: dict[str, list[dict[str, object]]] = defaultdict(list)
    order_key_of = {key: call for call, keys in sent.items() for key in keys}
    for record in harness.records():
        by_call[order_key_of[str(record["key"])]].append(record)
    for call, records in by_call.items():
        phases = [(r["phase"], r["key"]) for r in records]
        expected = [(phase, key) for key in sent[call] for phase in ("start", "end")]
        assert phases == expected, f"call {call} interleaved or reordered"


def test_graceful_shutdown_finishes_running_handlers_and_releases_the_rest(
    harness: Harness,
) -> None:
    receiver = harness.receiver(
        "--workers", "2", "--shutdown-timeout", "5", env={"RECORD_SLEEP": "1"}
    )
    events = [enreach_event() for _ in range(6)]
    with harness.client() as client:
        for event in events:
            assert post_event(client, receiver.url(), event).status_code == 200
    harness.wait_for(lambda: sum(r["phase"] == "start" for r in harness.records()) >= 2)
    started = time.monotonic()
    assert receiver.stop() == 0
    assert time.monotonic() - started < 8
    finished = set(harness.handled_keys())
    assert len(finished) >= 2  # running handlers were allowed to finish
    at_stop = states(receiver.inbox)
    assert {at_stop[k] for k in finished} == {2}
    assert {at_stop[e["Id"]] for e in events if e["Id"] not in finished} == {0}
    assert "released" in receiver.log
    receiver.start()
    harness.wait_for(lambda: len(harness.handled_keys()) == 6, timeout=30)
    assert sorted(harness.handled_keys()) == sorted(e["Id"] for e in events)


def test_shutdown_cuts_off_a_handler_past_the_bound_and_keeps_its_event(harness: Harness) -> None:
    receiver = harness.receiver("--shutdown-timeout", "1", env={"RECORD_HANG_TYPES": "QueueStatus"})
    event = enreach_event("QueueStatus")
    with harness.client() as client:
        assert post_event(client, receiver.url(), event).status_code == 200
    harness.wait_for(lambda: len(harness.records()) == 1)
    started = time.monotonic()
    assert receiver.stop() == 0
    assert time.monotonic() - started < 6
    assert states(receiver.inbox) == {event["Id"]: 0}
    assert "cut off" in receiver.log


@pytest.mark.parametrize("engine", ["uvicorn", "hypercorn"])
def test_sigterm_under_load_loses_nothing(harness: Harness, engine: str) -> None:
    import threading

    receiver = harness.receiver("--engine", engine, env={"RECORD_SLEEP": "0.01"})
    acknowledged: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with harness.client() as client:
            while not stop.is_set():
                event = enreach_event()
                try:
                    if post_event(client, receiver.url(), event).status_code == 200:
                        acknowledged.append(event["Id"])
                except Exception:
                    return  # the server went away: what was acknowledged counts

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    harness.wait_for(lambda: len(acknowledged) >= 100)
    assert receiver.stop() == 0
    stop.set()
    for t in threads:
        t.join(10)
    receiver.start()
    harness.wait_for(lambda: set(harness.handled_keys()) >= set(acknowledged), timeout=30)
    receiver.stop()
    assert len(harness.handled_keys()) == len(set(harness.handled_keys()))


def test_inbox_show_and_stats_describe_an_event(harness: Harness) -> None:
    receiver = harness.receiver()
    event = enreach_event("UserAvailability")
    with harness.client() as client:
        assert post_event(client, receiver.url(), event).status_code == 200
    harness.wait_for(lambda: len(harness.handled_keys()) == 1)
    inbox = ["inbox", "--inbox", str(receiver.inbox)]
    listed = orjson.loads(run_cli(*inbox, "list", "--json", cwd=harness.tmp_path).stdout)
    shown = run_cli(
        *inbox, "show", str(listed[0]["id"]), "--json", "--unmasked", cwd=harness.tmp_path
    )
    record = orjson.loads(shown.stdout)
    assert record["payload"] == event
    assert [(d["subscriber"], d["state"]) for d in record["deliveries"]] == [("default", "done")]
    assert record["event_type"] == "UserAvailability"
    text = run_cli(*inbox, "show", str(listed[0]["id"]), cwd=harness.tmp_path).stdout
    assert "state: done" in text and event["Id"] in text
    stats = run_cli(*inbox, "stats", cwd=harness.tmp_path).stdout
    assert "done" in stats and "source enreach: 1" in stats
    missing = run_cli(*inbox, "show", "999", cwd=harness.tmp_path)
    assert missing.returncode == 1 and "no event 999" in missing.stderr
    nowhere = run_cli(
        "inbox", "--inbox", str(harness.tmp_path / "none.db"), "stats", cwd=harness.tmp_path
    )
    assert nowhere.returncode == 2 and "no inbox at" in nowhere.stderr


def test_decorator_form_script_through_a_real_server(harness: Harness) -> None:
    script = harness.tmp_path / "hooks.py"
    script.write_text(
        "import json, os\n"
        "from handlers import EnreachHandler\n"
        "app = EnreachHandler()\n"
        "@app.on('QueueCallInUserConnected')\n"
        "async def connected(event):\n"
        "    with open(os.environ['RECORD_FILE'], 'a') as f:\n"
        "        f.write(json.dumps({'phase': 'end', 'key': str(event.id),\n"
        "                            'caller': event.caller_number}) + '\\n')\n"
    )
    receiver = harness.receiver(handler="hooks:app")
    event = enreach_event("QueueCallInUserConnected")
    with harness.client() as client:
        assert post_event(client, receiver.url(), event).status_code == 200
        assert post_event(client, receiver.url(), enreach_event("QueueStatus")).status_code == 200
    harness.wait_for(lambda: harness.handled_keys() == [event["Id"]])
    assert harness.records()[0]["caller"] == "+358501231234"

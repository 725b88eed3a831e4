"""`receiver inbox ...` as an operator runs it: a real process on an inbox with two subscribers.

The inbox is built with the real inbox API: four events, deliveries to `crm` and `sms` in
every state, failed attempts with a multi-line traceback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from receiver.commands.inbox import parse_when
from receiver.inbox.base import open_inbox
from receiver.inbox.models import Attempt, Completion, NewEvent
from tests.conftest import ROOT

K = TypeVar("K")
V = TypeVar("V")

TRACEBACK = (
    "ValueError: CRM refused \x1b[2Jthe call\n"
    "Traceback (most recent call last):\n"
    '  File "bridge.py", line 12, in on_queue_call_in_arrived\n'
    "    await crm.post(event)\n"
    "ValueError: CRM refused the call"
)
EVENTS = {  # dedup key: (source, event type, order key, subscribers)
    "e1": ("enreach", "QueueCallInArrived", "call-1", ["crm", "sms"]),
    "e2": ("enreach", "QueueCallInUserConnected", "call-1", ["crm", "sms"]),
    "e3": ("buzzeasy", "WorkItemClosed", "w-9", ["crm"]),
    "e4": ("enreach", "UserAvailability", None, ["crm", "sms"]),
}
STATES = {  # what the fixture leaves: (dedup key, subscriber) -> state
    ("e1", "crm"): "done",
    ("e1", "sms"): "dead",
    ("e2", "crm"): "dead",
    ("e2", "sms"): "pending",
    ("e3", "crm"): "in_progress",
    ("e4", "crm"): "done",
    ("e4", "sms"): "done",
}
NEWEST_FIRST = [
    ("e4", "crm"), ("e4", "sms"), ("e3", "crm"), ("e2", "crm"), ("e2", "sms"), ("e1", "crm"),
    ("e1", "sms"),
]  # fmt: skip


@dataclass(frozen=True)
class Inbox:
    """A built inbox: its path, each event's id, the moment between e1-e2 and e3-e4."""

    path: Path
    ids: dict[str, str]
    between: float
    started: float

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`receiver inbox --inbox PATH ARGS`."""
        return receiver("inbox", "--inbox", str(self.path), *args, cwd=self.path.parent, env=env)

    def json(self, *args: str) -> Any:
        """The JSON that `receiver inbox --inbox PATH ARGS --json` prints (it must succeed)."""
        result = self.cli(*args, "--json")
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        return json.loads(result.stdout)

    def listed(self, *args: str) -> list[tuple[str, str]]:
        """(dedup key, subscriber) of each delivery `list ARGS` prints, in order."""
        return [(d["dedup_key"], d["subscriber"]) for d in self.json("list", *args)]

    def states(self) -> dict[tuple[str, str], str]:
        """Every delivery's state, as `list` shows it."""
        return {(d["dedup_key"], d["subscriber"]): d["state"] for d in self.json("list")}


def receiver(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m receiver ARGS` with no RECEIVER_* variable of this shell."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RECEIVER_")}
    return subprocess.run(
        [sys.executable, "-m", "receiver", *args],
        cwd=cwd, env={**clean, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


async def build(path: Path) -> tuple[dict[str, str], float]:
    """Fill the inbox at `path` as STATES says; each event's id, and a moment between e2 and e3."""
    inbox = open_inbox(str(path))
    await inbox.open()
    between = 0.0
    try:
        for key, (source, event_type, order_key, subscribers) in EVENTS.items():
            if key == "e3":
                await asyncio.sleep(0.05)
                between = time.time()
                await asyncio.sleep(0.05)
            payload = json.dumps({"Id": key, "Note": "caller +358"}).encode()
            assert await inbox.append(
                NewEvent(source, key, event_type, order_key, payload), subscribers
            )
        crm = {d.dedup_key: d for d in await inbox.claim("crm", 10)}
        sms = {d.dedup_key: d for d in await inbox.claim("sms", 10)}
        base = time.time() - 100
        await inbox.retry_later(
            sms["e1"].key, Attempt(1, base + 1, 0.25, "retry", "TimeoutError: slow"), base
        )
        await inbox.complete([Completion(crm["e1"].id, "crm", base + 2, 0.5)])
        await inbox.bury(sms["e1"].key, Attempt(2, base + 3, 0.125, "dead", TRACEBACK))
        await inbox.bury(crm["e2"].key, Attempt(1, base + 4, 0.01, "dead", "KeyError: 'Id'"))
        await inbox.release([sms["e2"].key])
        await inbox.retry_later(
            crm["e3"].key, Attempt(1, base + 5, 0.01, "retry", "OSError: down"), base + 9999
        )
        await inbox.complete(
            [
                Completion(crm["e4"].id, "crm", base + 6, 0.01),
                Completion(sms["e4"].id, "sms", base + 6, 0.01),
            ]
        )
    finally:
        await inbox.close()
    return {key: str(d.id) for key, d in crm.items()}, between


@pytest.fixture
def inbox(tmp_path: Path) -> Inbox:
    started = time.time()
    path = tmp_path / "inbox.db"
    ids, between = asyncio.run(build(path))
    return Inbox(path, ids, between, started)


def side_by_side(run: Callable[[K], V], cases: Iterable[K]) -> dict[K, V]:
    """`run` of each case, in threads: each runs a process, and side by side they take a
    fraction of the time."""
    keys = list(cases)
    with ThreadPoolExecutor(4) as pool:
        return dict(zip(keys, pool.map(run, keys), strict=True))


def iso(moment: float, form: str) -> str:
    when = dt.datetime.fromtimestamp(moment, dt.UTC)
    return when.strftime(form)


# -- stats ------------------------------------------------------------------------------------


def test_stats_counts_deliveries_per_subscriber(inbox: Inbox) -> None:
    result = inbox.cli("stats")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"inbox {inbox.path} (")
    assert "events 4" in lines
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.startswith(("crm", "sms"))}
    header = next(line for line in lines if line.startswith("SUBSCRIBER"))
    assert header.split() == [
        "SUBSCRIBER", "PENDING", "IN_PROGRESS", "DONE", "DEAD", "DISCARDED", "OLDEST", "OPEN"
    ]  # fmt: skip
    assert rows["crm"][:5] == ["0", "1", "2", "1", "0"]
    assert rows["sms"][:5] == ["1", "0", "1", "1", "0"]
    assert rows["crm"][5].endswith("s")  # an age: e3 arrived moments ago
    assert "  source enreach: 3" in lines and "  source buzzeasy: 1" in lines
    stats = inbox.json("stats")
    assert stats["events"] == 4
    assert stats["by_subscriber"]["sms"]["pending"] == 1
    assert stats["by_state"] == {
        "pending": 1, "in_progress": 1, "done": 3, "dead": 2, "discarded": 0
    }  # fmt: skip
    assert set(stats["oldest_open_age_seconds"]) == {"crm", "sms"}


# -- list and dead ----------------------------------------------------------------------------


def test_list_shows_every_delivery_newest_first(inbox: Inbox) -> None:
    result = inbox.cli("list")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == [
        "ID", "SUBSCRIBER", "STATE", "TRIES", "RECEIVED", "(UTC)", "TYPE", "ERROR"
    ]  # fmt: skip
    ids = {v: k for k, v in inbox.ids.items()}
    assert [(ids[r.split()[0]], r.split()[1]) for r in rows] == NEWEST_FIRST
    dead = next(r for r in rows if r.split()[:2] == [inbox.ids["e1"], "sms"])
    assert dead.split()[2:4] == ["dead", "2"]
    assert dead.endswith("ValueError: CRM refused \\x1b[2Jthe call")  # first line, escaped
    assert "Traceback" not in result.stdout
    assert inbox.states() == STATES


FILTERS = {
    "--subscriber sms": [("e4", "sms"), ("e2", "sms"), ("e1", "sms")],
    "--state dead": [("e2", "crm"), ("e1", "sms")],
    "--state pending --state in_progress": [("e3", "crm"), ("e2", "sms")],
    "--state done --subscriber crm": [("e4", "crm"), ("e1", "crm")],
    "--type QueueCallInUserConnected": [("e2", "crm"), ("e2", "sms")],
    "--source buzzeasy": [("e3", "crm")],
    "--call call-1": [("e2", "crm"), ("e2", "sms"), ("e1", "crm"), ("e1", "sms")],
    "--call w-9 --type WorkItemClosed --subscriber crm": [("e3", "crm")],
    "--limit 2": NEWEST_FIRST[:2],
    "--since 1h": NEWEST_FIRST,
    "--until 1h": [],
    "--since 3d --until 2020-01-01": [],
}


def test_list_filters(inbox: Inbox) -> None:
    assert side_by_side(lambda args: inbox.listed(*args.split()), FILTERS) == FILTERS


def test_list_since_and_until_take_iso_times(inbox: Inbox) -> None:
    between = inbox.between
    tomorrow = iso(time.time() + 86400, "%Y-%m-%d")
    minute = iso(inbox.started - 60, "%Y-%m-%d %H:%M")
    cases = {
        ("--since", iso(between, "%Y-%m-%dT%H:%M:%S.%fZ")): NEWEST_FIRST[:3],
        ("--until", iso(between, "%Y-%m-%d %H:%M:%S.%f")): NEWEST_FIRST[3:],
        ("--since", tomorrow): [],
        ("--since", minute, "--until", tomorrow): NEWEST_FIRST,
    }
    assert side_by_side(lambda args: inbox.listed(*args), cases) == cases


def test_an_empty_listing_says_so(inbox: Inbox) -> None:
    result = inbox.cli("list", "--subscriber", "nobody")
    assert (result.returncode, result.stdout) == (0, "(none)\n")


def test_dead_lists_dead_letters_with_their_first_error_line(inbox: Inbox) -> None:
    result = inbox.cli("dead")
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()[1:]
    assert [r.split()[:3] for r in rows] == [
        [inbox.ids["e2"], "crm", "dead"],
        [inbox.ids["e1"], "sms", "dead"],
    ]
    assert rows[0].endswith("KeyError: 'Id'")
    assert "most recent call" not in result.stdout
    assert [(d["dedup_key"], d["subscriber"]) for d in inbox.json("dead", "--call", "call-1")] == [
        ("e2", "crm"),
        ("e1", "sms"),
    ]
    [letter] = inbox.json("dead", "--subscriber", "sms")
    assert letter["id"] == inbox.ids["e1"] and letter["attempts"] == 2
    assert letter["last_error"] == TRACEBACK


# -- show -------------------------------------------------------------------------------------


def test_show_prints_the_event_its_deliveries_and_the_history(inbox: Inbox) -> None:
    result = inbox.cli("show", inbox.ids["e1"])
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert f"            id: {inbox.ids['e1']}\n" in text
    assert "          type: QueueCallInArrived\n" in text
    assert "     order key: call-1\n" in text
    assert 'payload:\n{\n  "Id": "e1",\n  "Note": "caller +358"\n}\n' in text
    assert "delivery to crm:\n         state: done\n      attempts: 0\n" in text
    assert "delivery to sms:\n         state: dead\n      attempts: 2\n" in text
    assert "      duration: 0.500s\n" in text
    history = text.split("history:\n", 1)[1].splitlines()
    shown = [line.split()[2:6] for line in history if not line.startswith("      ")]
    assert shown == [
        ["sms", "#1", "retry", "0.250s"],
        ["crm", "#1", "done", "0.500s"],
        ["sms", "#2", "dead", "0.125s"],
    ]
    assert history[2].endswith("  ValueError: CRM refused \\x1b[2Jthe call")
    assert history[3:] == [
        "      Traceback (most recent call last):",
        '        File "bridge.py", line 12, in on_queue_call_in_arrived',
        "          await crm.post(event)",
        "      ValueError: CRM refused the call",
    ]
    assert "\x1b" not in text


def test_show_json(inbox: Inbox) -> None:
    record = inbox.json("show", inbox.ids["e1"])
    assert record["id"] == inbox.ids["e1"]
    assert record["payload"] == {"Id": "e1", "Note": "caller +358"}
    assert [(d["subscriber"], d["state"]) for d in record["deliveries"]] == [
        ("crm", "done"),
        ("sms", "dead"),
    ]
    assert [(a["subscriber"], a["number"], a["outcome"]) for a in record["history"]] == [
        ("sms", 1, "retry"),
        ("crm", 1, "done"),
        ("sms", 2, "dead"),
    ]
    assert record["history"][2]["error"] == TRACEBACK


@pytest.mark.parametrize("missing", ["999999", "not-an-id"])
def test_show_of_a_missing_event_is_one_line_and_exit_1(inbox: Inbox, missing: str) -> None:
    result = inbox.cli("show", missing)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"receiver: no event {missing} in the inbox\n"


# -- replay and discard -----------------------------------------------------------------------


def test_replay_by_ids(inbox: Inbox) -> None:
    result = inbox.cli("replay", inbox.ids["e1"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("replayed 1 delivery(ies)")
    assert inbox.states() == {**STATES, ("e1", "sms"): "pending"}
    history = inbox.json("show", inbox.ids["e1"])["history"]
    assert len(history) == 3  # replay keeps the history


def test_replay_by_ids_names_those_with_nothing_to_replay(inbox: Inbox) -> None:
    e1, e2 = inbox.ids["e1"], inbox.ids["e2"]
    result = inbox.cli("replay", e1, e2, "--subscriber", "crm")
    assert result.returncode == 1
    assert result.stdout.startswith("replayed 1 delivery(ies)")
    [line] = result.stderr.splitlines()
    assert line.startswith(f"receiver: nothing to replay for {e1}: ")
    assert inbox.states() == {**STATES, ("e2", "crm"): "pending"}
    answer = inbox.cli("replay", "999999", "--json")
    assert answer.returncode == 1
    assert json.loads(answer.stdout) == {"replayed": 0, "nothing_for": ["999999"]}


def test_replay_by_subscriber(inbox: Inbox) -> None:
    assert inbox.json("replay", "--subscriber", "sms") == {"replayed": 1}
    assert inbox.states() == {**STATES, ("e1", "sms"): "pending"}


def test_replay_all(inbox: Inbox) -> None:
    result = inbox.cli("replay", "--all")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("replayed 2 delivery(ies)")
    assert inbox.states() == {**STATES, ("e1", "sms"): "pending", ("e2", "crm"): "pending"}


def test_replay_done_too_only_when_asked(inbox: Inbox) -> None:
    assert inbox.json("replay", "--all", "--done-too", "--subscriber", "crm") == {"replayed": 3}
    assert inbox.states() == {
        **STATES, ("e1", "crm"): "pending", ("e2", "crm"): "pending", ("e4", "crm"): "pending"
    }  # fmt: skip


NAMES_NOTHING = (
    "say which dead letters: event ids, --all, or at least one of --subscriber, --source, "
    "--type, --call, --phone, --since, --until"
)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["replay"], NAMES_NOTHING),
        (["discard"], NAMES_NOTHING),
        (["replay", "1", "--all"], "give event ids or --all, not both"),
    ],
    ids=["replay-nothing", "discard-nothing", "ids-and-all"],
)
def test_a_bulk_action_must_say_what_it_covers(inbox: Inbox, args: list[str], message: str) -> None:
    result = inbox.cli(*args)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1] == f"receiver inbox {args[0]}: error: {message}"
    assert inbox.states() == STATES


def test_discard(inbox: Inbox) -> None:
    result = inbox.cli("discard", "--all")
    assert (result.returncode, result.stdout) == (0, "discarded 2 dead letter(s)\n")
    assert inbox.json("dead") == []
    assert inbox.listed("--state", "discarded") == [("e2", "crm"), ("e1", "sms")]
    assert inbox.json("replay", "--all") == {"replayed": 0}  # discarded is not dead


def test_discard_by_ids_and_filter(inbox: Inbox) -> None:
    e1, e2 = inbox.ids["e1"], inbox.ids["e2"]
    assert inbox.json("discard", "--type", "QueueCallInArrived") == {"discarded": 1}
    result = inbox.cli("discard", e1, e2)
    assert (result.returncode, result.stdout) == (1, "discarded 1 dead letter(s)\n")
    assert result.stderr.startswith(f"receiver: nothing to discard for {e1}: ")
    assert inbox.states() == {**STATES, ("e1", "sms"): "discarded", ("e2", "crm"): "discarded"}


# -- where the inbox is, and bad input --------------------------------------------------------


def test_the_inbox_comes_from_config_or_environment(inbox: Inbox) -> None:
    folder = inbox.path.parent
    from_env = receiver("inbox", "dead", "--json", cwd=folder, env={"RECEIVER_INBOX": "inbox.db"})
    assert from_env.returncode == 0, from_env.stderr
    assert len(json.loads(from_env.stdout)) == 2
    (folder / "other.toml").write_text(f'[inbox]\ninbox = "{inbox.path}"\n')
    from_file = receiver("inbox", "--config", "other.toml", "stats", "--json", cwd=folder)
    assert json.loads(from_file.stdout)["events"] == 4
    after = receiver("inbox", "stats", "--json", "--inbox", str(inbox.path), cwd=ROOT)
    assert json.loads(after.stdout)["events"] == 4  # --inbox also after the action


@pytest.mark.parametrize("action", [["stats"], ["replay", "--all"]])
def test_a_missing_inbox_is_one_line(tmp_path: Path, action: list[str]) -> None:
    missing = tmp_path / "none.db"
    result = receiver("inbox", "--inbox", str(missing), *action, cwd=tmp_path)
    # Exit 2, as every refusal to start (receiver.cli: ConfigError and StorageError).
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"receiver: no inbox at {missing}\n"
    assert not missing.exists()


BAD_OPTIONS = {
    "--since yesterday": "argument --since: 'yesterday': expected an ISO 8601 time (",
    "--until 5min": "argument --until: '5min': expected an ISO 8601 time (",
    "--since 2026-13-01": "or an age (90s, 15m, 2h, 3d)",
    "--limit 0": "argument --limit: '0' is not a positive whole number",
    "--limit x": "argument --limit: 'x' is not a positive whole number",
    "--state lost": "argument --state: invalid choice: 'lost'",
}


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    def run(args: str) -> tuple[int, str, str]:
        result = receiver("inbox", "list", *args.split(), cwd=tmp_path)
        return result.returncode, result.stdout, result.stderr.splitlines()[-1]

    found = side_by_side(run, BAD_OPTIONS)
    for args, message in BAD_OPTIONS.items():
        code, stdout, last = found[args]
        assert (code, stdout) == (2, ""), args
        assert last.startswith("receiver inbox list: error: "), args
        assert message in last, (args, last)


# -- WHEN, in process -------------------------------------------------------------------------

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30T09:00:00Z", dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC)),
        ("2026-11-30T11:00:00+02:00", dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC)),
        ("2026-11-30 09:00", dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC)),
        ("2026-11-30", dt.datetime(2026, 11, 30, tzinfo=dt.UTC)),
        ("90s", dt.datetime(2026, 11, 30, 11, 58, 30, tzinfo=dt.UTC)),
        ("15m", dt.datetime(2026, 11, 30, 11, 45, tzinfo=dt.UTC)),
        ("2h", dt.datetime(2026, 11, 30, 10, tzinfo=dt.UTC)),
        ("3d", dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)),
    ],
)
def test_when_forms(text: str, expected: dt.datetime) -> None:
    assert parse_when(text, now=NOW) == expected.timestamp()

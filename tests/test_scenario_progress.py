"""The progress bar: drawn for a person at a terminal, silent in pipes and CI."""

from __future__ import annotations

import io

import pytest

from receiver.scenarios import PlannedRequest, ProgressBar
from receiver.sender import Attempt, Delivery, EnreachWire

REQUEST = EnreachWire().build("https://127.0.0.1/", {"EventType": "QueueStatus", "Id": "1"})


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def planned(*, wrong_token: bool = False) -> PlannedRequest:
    return PlannedRequest(0, 0, "inbound", "QueueStatus", "1", {}, wrong_token=wrong_token)


def delivery(status: int) -> Delivery:
    return Delivery(REQUEST, (Attempt(1, status, 0.001),))


def test_draws_counts_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    terminal = Terminal()
    bar = ProgressBar(3, stream=terminal)

    bar(planned(), delivery(200))
    bar(planned(), delivery(500))
    bar(planned(wrong_token=True), delivery(401))
    bar.close()

    last = terminal.getvalue().split("\r")[-1]
    assert last.startswith("3/3 [" + "#" * 30 + "]")
    assert "ok 1  failed 1  401 1" in last
    assert last.endswith("\n")


@pytest.mark.parametrize("where", ["pipe", "ci"])
def test_silent_in_pipes_and_ci(where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if where == "ci":
        monkeypatch.setenv("CI", "true")
    else:
        monkeypatch.delenv("CI", raising=False)
    stream = Terminal() if where == "ci" else io.StringIO()
    bar = ProgressBar(1, stream=stream)

    bar(planned(), delivery(200))
    bar.close()

    assert stream.getvalue() == ""

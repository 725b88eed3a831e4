"""`receiver send` and `receiver scenario` never put a secret on the wire unencrypted.

An `http://` URL is refused with one line and exit status 2, and nothing is sent, unless
`--allow-http` is given and the host is a loopback address (127.0.0.0/8, ::1, localhost),
where a local TLS-terminating proxy may listen.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from receiver.commands import scenario as scenario_command
from receiver.commands import send as send_command

SECRET = "MySecretString"


class PlainServer(http.server.ThreadingHTTPServer):
    """A plain-HTTP server on a loopback address that answers 200 and counts requests."""

    def __init__(self, host: str) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__((host, 0), Handler)

    def url(self, path: str = "/enreach", host: str | None = None) -> str:
        """The server's URL for `path` (naming it by `host` if given)."""
        shown = host or str(self.server_address[0])
        shown = f"[{shown}]" if ":" in shown else shown
        return f"http://{shown}:{self.server_address[1]}{path}"


@contextlib.contextmanager
def serving(host: str) -> Iterator[PlainServer]:
    """A running `PlainServer` on `host`."""
    server = PlainServer(host)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(params=["127.0.0.1", "::1"])
def plain(request: pytest.FixtureRequest) -> Iterator[PlainServer]:
    """A plain-HTTP server on an IPv4 or IPv6 loopback address."""
    with serving(request.param) as server:
        yield server


@pytest.fixture(autouse=True)
def secret_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECEIVER_ENREACH_SECRET", SECRET)


def run(command: str, *argv: str) -> int:
    """Run `receiver COMMAND ARGV` in this process; its exit status."""
    parser = argparse.ArgumentParser(prog="receiver")
    sub = parser.add_subparsers(dest="command", required=True)
    send_command.register(sub)
    scenario_command.register(sub)
    args = parser.parse_args([command, *argv])
    code: int = args.func(args)
    return code


COMMANDS = {
    "send": ("QueueCallInArrived", "--retries", "0"),
    "scenario": ("--calls", "1", "--retries", "0"),
}


def one_line_error(capsys: pytest.CaptureFixture[str], command: str) -> str:
    """The one line the command wrote to stderr."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"receiver {command}: error: "), err
    return err


@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_http_url_is_refused_and_nothing_is_sent(
    plain: PlainServer, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(command, plain.url(), *COMMANDS[command]) == 2
    assert "refusing to send the secret unencrypted" in one_line_error(capsys, command)
    assert plain.requests == 0


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize(
    "url",
    ["http://example.com/enreach", "http://10.0.0.1/enreach", "http://[2001:db8::1]/enreach"],
)
def test_allow_http_is_for_loopback_addresses_only(
    command: str, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(command, url, *COMMANDS[command], "--allow-http") == 2
    assert "--allow-http sends only to a loopback address" in one_line_error(capsys, command)


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("url", ["ftp://127.0.0.1/enreach", "127.0.0.1/enreach"])
def test_a_url_that_is_not_http_is_refused(
    command: str, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(command, url, *COMMANDS[command]) == 2
    assert "must start with https://" in one_line_error(capsys, command)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_allow_http_sends_to_a_loopback_address(
    plain: PlainServer, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(command, plain.url(), *COMMANDS[command], "--allow-http") == 0, capsys.readouterr()
    assert plain.requests >= 1


def test_localhost_is_a_loopback_name() -> None:
    with serving("127.0.0.1") as server:
        url = server.url(host="localhost")
        assert run("send", url, *COMMANDS["send"], "--allow-http") == 0
        assert server.requests == 1

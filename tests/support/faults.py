"""Tools for the fault and abuse suite: raw TLS clients, server-log checks, storage faults."""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import selectors
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx

from receiver.certs import DevCertificates
from receiver.sender import WireRequest
from receiver.testing import ReceiverProcess
from tests.conftest import Harness
from tests.support.provider_cases import ProviderCase

__all__ = [
    "UNHANDLED_ERROR_MARKERS",
    "SmallDiskReceiver",
    "assert_no_unhandled_errors",
    "closed_within",
    "deliver",
    "file_size_limit",
    "inbox_states",
    "open_tls",
    "provider_receiver",
    "read_responses",
    "request_bytes",
    "statuses_in",
    "stop_cleanly",
    "stop_within",
    "trickle",
    "wait_all_closed",
]

UNHANDLED_ERROR_MARKERS = (
    "Traceback (most recent call last)",
    "Exception in ASGI application",
    "Error in ASGI Framework",
    "Unhandled exception",
    "Task exception was never retrieved",
    "Fatal error on",
    "Fatal write error",
    "Exception in callback",
)
"""What Python, asyncio, uvicorn and hypercorn write when an exception escaped unhandled."""


STATES = "SELECT dedup_key, state FROM events JOIN deliveries ON event_id = id"
"""Each event's dedup key and the state of its one delivery."""


def assert_no_unhandled_errors(log: str) -> None:
    """Fail, quoting the log, if any unhandled-exception marker is in it."""
    found = [marker for marker in UNHANDLED_ERROR_MARKERS if marker in log]
    assert not found, f"unhandled errors ({', '.join(found)}) in the server log:\n{log[-6000:]}"


def stop_cleanly(receiver: ReceiverProcess) -> None:
    """Stop the receiver gracefully: exit status 0 and no unhandled error in its log."""
    code = receiver.stop()
    assert_no_unhandled_errors(receiver.log)
    assert code == 0, f"exit status {code}:\n{receiver.log[-3000:]}"


def provider_receiver(
    harness: Harness,
    provider: ProviderCase,
    *args: str,
    env: dict[str, str] | None = None,
    handler: str = "tests.support.recorder:Recorder",
) -> ReceiverProcess:
    """A receiver serving only `provider`'s endpoint (through a config file)."""
    config = provider.write_config(harness.tmp_path)
    return harness.receiver(
        "--config", str(config), *args, env={**provider.secret_env, **(env or {})}, handler=handler
    )


def stop_within(receiver: ReceiverProcess, bound: float) -> tuple[int | None, float]:
    """SIGTERM the receiver and wait up to `bound` seconds plus 10; returns its exit code
    (None: it was still running, and was killed) and the seconds SIGTERM to exit took."""
    assert receiver.proc is not None
    started = time.monotonic()
    receiver.proc.send_signal(signal.SIGTERM)
    try:
        code: int | None = receiver.proc.wait(bound + 10)
    except subprocess.TimeoutExpired:
        receiver.kill()
        code = None
    return code, time.monotonic() - started


def open_tls(port: int, ca: Path, *, timeout: float = 5.0) -> ssl.SSLSocket:
    """A TLS connection to 127.0.0.1:`port`, handshake done, nothing sent."""
    context = ssl.create_default_context(cafile=str(ca))
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return context.wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise


def wait_all_closed(
    socks: Sequence[socket.socket], timeout: float
) -> tuple[list[float | None], list[bytes]]:
    """Read every socket until the server closes it or `timeout` passes.

    Returns, per socket, the seconds until the server closed it (None: still open) and
    whatever it sent before closing.
    """
    started = time.monotonic()
    closed: list[float | None] = [None] * len(socks)
    received = [b""] * len(socks)
    selector = selectors.DefaultSelector()
    for index, sock in enumerate(socks):
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, index)
    try:
        open_count = len(socks)
        while open_count:
            left = started + timeout - time.monotonic()
            if left <= 0:
                break
            for key, _ in selector.select(left):
                index = key.data
                sock = socks[index]
                ended = False
                while True:
                    try:
                        chunk = sock.recv(65536)
                    except (ssl.SSLWantReadError, BlockingIOError):
                        break
                    except (OSError, ssl.SSLError):
                        ended = True
                        break
                    if not chunk:
                        ended = True
                        break
                    received[index] += chunk
                if ended:
                    closed[index] = time.monotonic() - started
                    selector.unregister(sock)
                    open_count -= 1
    finally:
        selector.close()
    return closed, received


def closed_within(sock: socket.socket, timeout: float) -> tuple[float | None, bytes]:
    """Seconds until the server closed `sock` (None: still open after `timeout`), and what
    it sent before."""
    closed, received = wait_all_closed([sock], timeout)
    return closed[0], received[0]


_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})")


def statuses_in(data: bytes) -> list[int]:
    """The status code of every response in `data` (read off a connection), in order."""
    statuses = []
    rest = data
    while rest:
        head, sep, rest = rest.partition(b"\r\n\r\n")
        match = _STATUS.match(head)
        if not match:
            break
        statuses.append(int(match.group(1)))
        length = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
        if length:
            rest = rest[int(length.group(1)) :]
        if not sep:
            break
    return statuses


def read_responses(
    sock: ssl.SSLSocket, *, timeout: float = 5.0, settle: float = 0.05
) -> tuple[bytes, bool]:
    """Read what the server sends until it closes, or `settle` seconds pass without more data
    after a complete response, or `timeout`. Returns (bytes, whether the server closed)."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        complete = bool(statuses_in(data)) and _complete(data)
        left = deadline - time.monotonic()
        if left <= 0:
            return data, False
        sock.settimeout(min(left, settle) if complete else left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            if complete:
                return data, False
            continue
        except (OSError, ssl.SSLError):
            return data, True
        if not chunk:
            return data, True
        data += chunk


def _complete(data: bytes) -> bool:
    """Whether `data` ends at the end of a response (heads and declared bodies all in)."""
    rest = data
    while rest:
        head, sep, rest = rest.partition(b"\r\n\r\n")
        if not sep:
            return False
        length = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
        size = int(length.group(1)) if length else 0
        if len(rest) < size:
            return False
        rest = rest[size:]
    return True


def inbox_states(inbox: Path) -> dict[str, int]:
    """Dedup key → state (0 pending, 1 in progress, 2 done, 3 dead), read from the file."""
    with contextlib.closing(sqlite3.connect(inbox, timeout=10)) as conn:
        return dict(conn.execute(STATES).fetchall())


def settled_states(inbox: Path, want: dict[str, int], timeout: float = 5.0) -> dict[str, int]:
    """`inbox_states` once it equals `want`, or as it is after `timeout` seconds (a done-mark
    is committed with the next write, or within 50 ms)."""
    deadline = time.monotonic() + timeout
    while (states := inbox_states(inbox)) != want and time.monotonic() < deadline:
        time.sleep(0.02)
    return states


@contextlib.contextmanager
def file_size_limit(pid: int, limit: int) -> Iterator[None]:
    """While inside, every write of process `pid` past byte `limit` of a file fails (EFBIG),
    as on a full disk; the receiver ignores SIGXFSZ so the write fails instead."""
    soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))


def trickle(
    sock: ssl.SSLSocket, pieces: Sequence[bytes], *, interval: float, timeout: float
) -> tuple[float | None, bytes]:
    """Send `pieces` one every `interval` seconds (a slow client) while reading what the
    server sends; returns seconds until the server closed (None: open after `timeout`) and
    what it sent."""
    started = time.monotonic()
    received = b""
    sock.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    next_send = started
    remaining = list(pieces)
    try:
        while True:
            now = time.monotonic()
            if now - started >= timeout:
                return None, received
            if remaining and now >= next_send:
                try:
                    sock.send(remaining.pop(0))
                except (ssl.SSLWantWriteError, BlockingIOError):
                    pass
                except (OSError, ssl.SSLError):
                    return time.monotonic() - started, received
                next_send = now + interval
            wait = min(max(next_send - now, 0.0) if remaining else 0.25, started + timeout - now)
            if not selector.select(max(wait, 0.0)):
                continue
            while True:
                try:
                    chunk = sock.recv(65536)
                except (ssl.SSLWantReadError, BlockingIOError):
                    break
                except (OSError, ssl.SSLError):
                    return time.monotonic() - started, received
                if not chunk:
                    return time.monotonic() - started, received
                received += chunk
    finally:
        selector.close()


def request_bytes(
    request: WireRequest, *, content_length: int | None = None, extra: bytes = b""
) -> tuple[bytes, bytes]:
    """`request` as HTTP/1.1 bytes: (head, body); `content_length` may lie."""
    url = httpx.URL(request.url)
    target = url.raw_path.decode("ascii")
    lines = [f"{request.method} {target} HTTP/1.1", f"Host: {url.host}"]
    lines += [f"{name}: {value}" for name, value in request.headers]
    size = len(request.body) if content_length is None else content_length
    if request.body or content_length is not None or request.method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {size}")
    head = ("\r\n".join(lines) + "\r\n").encode("latin-1") + extra + b"\r\n"
    return head, request.body


def deliver(client: httpx.Client, request: WireRequest) -> httpx.Response:
    """Send one wire request with an ordinary HTTP client."""
    return client.request(
        request.method, request.url, headers=list(request.headers), content=request.body
    )


class SmallDiskReceiver(ReceiverProcess):
    """A receiver whose inbox lives on a tmpfs of `size_kib` KiB, mounted in a mount namespace
    of the child's own (nothing leaks into the host's mounts; it vanishes with the child).

    While the child runs, the test reaches that filesystem through `disk`.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        certs: DevCertificates,
        size_kib: int,
        handler: str | None = None,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(workdir, certs=certs, handler=handler, args=args, env=env)
        self.size_kib = size_kib
        self.mountpoint = self.workdir / "small-disk"
        self.mountpoint.mkdir(exist_ok=True)
        self.inbox = self.mountpoint / "inbox.db"

    @staticmethod
    def unshare() -> list[str]:
        """The namespace command: a plain mount namespace as root, else a user namespace."""
        if os.geteuid() == 0:
            return ["unshare", "--mount", "--propagation", "private", "--"]
        return ["unshare", "--map-root-user", "--mount", "--"]

    @classmethod
    def available(cls) -> bool:
        """Whether this machine lets us mount a tmpfs in a private mount namespace."""
        probe = [*cls.unshare(), "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"]
        try:
            return (
                subprocess.run(probe, capture_output=True, timeout=10, check=False).returncode == 0
            )
        except (OSError, subprocess.TimeoutExpired):
            return False

    def command(self) -> list[str]:
        """`receiver serve` behind `unshare` + `mount -t tmpfs`."""
        script = f'mount -t tmpfs -o size={self.size_kib}k tmpfs "$0" && exec "$@"'
        return [*self.unshare(), "sh", "-c", script, str(self.mountpoint), *super().command()]

    @property
    def disk(self) -> Path:
        """The small filesystem as the test sees it (through the child's /proc root)."""
        assert self.proc is not None and self.proc.poll() is None, "the receiver is not running"
        return Path(f"/proc/{self.proc.pid}/root") / self.mountpoint.relative_to("/")

    def states(self) -> dict[str, int]:
        """`inbox_states` of the inbox on the small disk, read from inside the child's mount
        namespace (SQLite resolves the /proc/PID/root link, so it cannot open it from here)."""
        assert self.proc is not None and self.proc.poll() is None, "the receiver is not running"
        enter = ["nsenter", "--target", str(self.proc.pid), "--mount"]
        if os.geteuid() != 0:
            enter += ["--user", "--preserve-credentials"]
        code = (
            "import json, sqlite3, sys\n"
            "conn = sqlite3.connect(sys.argv[1], timeout=10)\n"
            f"print(json.dumps(dict(conn.execute({STATES!r}))))"
        )
        result = subprocess.run(
            [*enter, sys.executable, "-c", code, str(self.inbox)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        states: dict[str, int] = json.loads(result.stdout)
        return states

    def fill(self) -> Path:
        """Write a ballast file until the filesystem is full; returns the ballast's path."""
        ballast = self.disk / "ballast"
        fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:  # ENOSPC: full
            pass
        finally:
            os.close(fd)
        return ballast

"""Receivers and workers sharing one PostgreSQL inbox, as real processes, for the scale-out
tests (tests/test_postgres_e2e.py, tests/test_postgres_outage.py).

`PgCluster` starts `receiver serve --no-dispatch` and `receiver worker` processes on one
database of the session's PostgreSQL server (tests/support/postgres.py), the URL without its
password (PGPASSWORD gives it, as the product requires), with two recording Python subscribers
(`crm` and `audit`, tests/support/subscribers.py), and HAProxy in front of the receivers
(tests/support/haproxy.py), checking each one's `/readyz` on its admin listener. Every process
has an admin listener on a port of its own (`admin_port`). What the inbox holds is read straight
from its tables with psycopg, so that the checks depend on nothing of the product but its
schema.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from receiver.certs import DevCertificates
from receiver.scenarios import PlannedRequest, Summary, run_stream
from receiver.sender import Delivery, EnreachWire, Sender
from receiver.testing import ReceiverProcess, free_port
from tests.conftest import ROOT, Harness
from tests.support.haproxy import HAProxy
from tests.support.postgres import PostgresServer
from tests.support.subscribers import Handled, read_handled, subscribers_config

__all__ = [
    "RECORDERS",
    "STATE_NAMES",
    "TOKEN",
    "PgCluster",
    "Play",
    "Worker",
    "genuine_keys",
    "planned_calls",
    "play_together",
]

TOKEN = "Pg7-scale-out-enreach-token-93d1"
"""The Enreach endpoint's token (in PG_ENREACH_TOKEN for the receivers only)."""

TOKEN_ENV = "PG_ENREACH_TOKEN"

RECORDERS = ("crm", "audit")
"""The subscribers: both `Recorder`s, every event."""

STATE_NAMES = {0: "pending", 1: "in_progress", 2: "done", 3: "dead"}
"""`receiver_deliveries.state` by number (receiver/inbox/models.py `State`)."""


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without RECEIVER_* or PG* variables, plus `extra`."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("RECEIVER_", "PG", "SUBSCRIBERS_"))
    }
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **extra}


class Worker:
    """`receiver worker` as a child process, its output in a log file, its admin listener on
    a free port of its own (`admin_port`) with `certs`."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        args: Sequence[str],
        env: dict[str, str],
        certs: DevCertificates,
    ) -> None:
        self.name = name
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self.admin_port = free_port()
        """Its admin listener's port (on 127.0.0.1)."""
        self.command = [sys.executable, "-m", "receiver", "worker", *args]
        self.command += ["--cert", str(certs.cert), "--key", str(certs.key)]
        self.command += ["--admin-port", str(self.admin_port)]
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.killed = False
        """Whether the test killed it (a crash it meant)."""

    @property
    def exit_status(self) -> int | None:
        """Its exit status, None while it runs."""
        return None if self.proc is None else self.proc.poll()

    @property
    def pid(self) -> int:
        """The child's process id."""
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        """Whether the child is running."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def log(self) -> str:
        """Everything it wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        """Start the child."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_for(self, text: str, timeout: float = 20.0) -> float:
        """Wait until `text` is in its output; the time.monotonic() it was seen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log:
                return time.monotonic()
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.proc.returncode}:\n{self.log}")
            time.sleep(0.02)
        pytest.fail(f"no {text!r} from {self.name} after {timeout}s:\n{self.log}")

    def kill(self) -> None:
        """SIGKILL it (a crash)."""
        self.killed = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM it; its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise


class PgCluster:
    """Receivers, workers and HAProxy on one PostgreSQL database."""

    def __init__(
        self, harness: Harness, server: PostgresServer, database_url: str, *, sleep: float = 0.0
    ) -> None:
        self.harness = harness
        self.server = server
        self.dbname = urlsplit(database_url).path.lstrip("/")
        self.admin_url = server.url(self.dbname)
        """With the password: for the test's own queries only."""
        self.inbox = server.url(self.dbname, password=False)
        """What the processes get: no password in it."""
        assert server.password not in self.inbox
        self.tmp_path = harness.tmp_path
        self.config = self.tmp_path / "receiver.toml"
        self.config.write_text(
            subscribers_config(
                handlers=tuple((name, "Recorder") for name in RECORDERS), secret_env=TOKEN_ENV
            )
        )
        self.records = self.tmp_path / "subscribers.jsonl"
        self.sleep = sleep
        self.receivers: list[ReceiverProcess] = []
        self.workers: list[Worker] = []
        self.proxy: HAProxy | None = None

    # -- processes -------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        return {
            "PGPASSWORD": self.server.password,
            "PGCONNECT_TIMEOUT": "5",
            "SUBSCRIBERS_RECORD_FILE": str(self.records),
            "SUBSCRIBERS_SLEEP": str(self.sleep),
        }

    def receiver(self, name: str, *args: str) -> ReceiverProcess:
        """`receiver serve --no-dispatch` on the shared inbox, in a folder `name` of its own."""
        workdir = self.tmp_path / name
        workdir.mkdir()
        process = self.harness.receiver(
            "--config", str(self.config), "--inbox", self.inbox, "--no-dispatch", *args,
            env={TOKEN_ENV: TOKEN, **self._env()},
            handler=None,
            workdir=workdir,
        )  # fmt: skip
        self.receivers.append(process)
        return process

    def worker(self, name: str, *args: str, workers: int = 4) -> Worker:
        """A started `receiver worker` on the shared inbox (no Enreach token: not its business)."""
        options = ["--config", str(self.config), "--inbox", self.inbox]
        options += ["--workers", str(workers), "--backoff-base", "0.05", "--backoff-max", "0.2"]
        worker = Worker(
            self.tmp_path, name, [*options, *args], clean_env(**self._env()), self.harness.certs
        )
        self.workers.append(worker)
        worker.start()
        return worker

    def start_proxy(self, receivers: Sequence[ReceiverProcess]) -> HAProxy:
        """HAProxy in front of `receivers` (r1, r2, ... in that order), checking each one's
        `/readyz` on its admin port; returns once all are up (ready: start a worker first, as
        a `--no-dispatch` receiver is ready only while some process dispatches)."""
        addresses = [f"127.0.0.1:{r.port}" for r in receivers]
        self.proxy = HAProxy(
            addresses, self.tmp_path, check_ports=[r.admin_port for r in receivers]
        )
        self.proxy.start()
        self.proxy.wait_for_up(len(addresses))
        return self.proxy

    def close(self) -> None:
        """Stop every process started (workers first, HAProxy last)."""
        try:
            for worker in self.workers:
                worker.kill()
            self.harness.close()
        finally:
            if self.proxy is not None:
                self.proxy.stop()

    def logs(self) -> str:
        """Every process's log, for failure messages."""
        parts = [f"--- {w.name} ---\n{w.log[-3000:]}" for w in self.workers]
        parts += [f"--- {r.workdir.name} ---\n{r.log[-3000:]}" for r in self.receivers]
        return "\n".join(parts)

    def wait_for(
        self, condition: Callable[[], bool], *, timeout: float = 30.0, what: str = "condition"
    ) -> None:
        """Poll `condition` until true, or fail with every process's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            for worker in self.workers:
                if not worker.killed and not worker.alive:
                    pytest.fail(
                        f"{worker.name} exited with {worker.exit_status} while waiting for "
                        f"{what}:\n{worker.log[-4000:]}"
                    )
            time.sleep(0.1)
        pytest.fail(
            f"timed out after {timeout}s waiting for {what}\n{self.activity()}\n{self.logs()}"
        )

    def activity(self) -> str:
        """What each connection to the inbox's database is doing (pg_stat_activity), with the
        locks it waits for, for failure messages."""
        try:
            rows = self.query(
                "SELECT pid, application_name, state, wait_event_type, wait_event,"
                " pg_blocking_pids(pid), now() - xact_start, left(query, 90)"
                " FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() ORDER BY pid"
            )
        except psycopg.Error as exc:
            return f"(no pg_stat_activity: {exc})"
        return "pg_stat_activity:\n" + "\n".join(" | ".join(map(str, row)) for row in rows)

    # -- what the subscribers did ------------------------------------------------------------

    def handled(self, subscriber: str | None = None) -> list[Handled]:
        """What the recorders handled (of `subscriber`), in the order handled."""
        return read_handled(self.records, subscriber)

    def handled_keys(self, subscriber: str) -> list[str]:
        """The dedup keys `subscriber` handled, in the order handled, with repeats."""
        return [h.key for h in self.handled(subscriber)]

    # -- what the inbox holds ----------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of `sql` on the inbox's database."""
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()

    def states(self) -> dict[str, dict[str, int]]:
        """Deliveries by subscriber and state name."""
        found: dict[str, dict[str, int]] = {}
        rows = self.query(
            "SELECT subscriber, state, count(*) FROM receiver_deliveries GROUP BY 1, 2"
        )
        for subscriber, state, count in rows:
            found.setdefault(subscriber, {})[STATE_NAMES[state]] = count
        return found

    def stored_keys(self) -> list[str]:
        """Every stored event's dedup key (a list: a key stored twice would show)."""
        return [row[0] for row in self.query("SELECT dedup_key FROM receiver_events")]

    def arrival(self) -> dict[str, tuple[int, str | None]]:
        """Dedup key to inbox id (arrival order) and order key."""
        rows = self.query("SELECT dedup_key, id, order_key FROM receiver_events")
        return {key: (event_id, order_key) for key, event_id, order_key in rows}

    def attempts(self) -> list[tuple[Any, ...]]:
        """Every failed attempt recorded: event id, subscriber, number, outcome, error."""
        return self.query(
            "SELECT event_id, subscriber, number, outcome, error FROM receiver_attempts"
        )

    def all_done(self, count: int) -> bool:
        """Whether every recorder has `count` deliveries done and none open."""
        states = self.states()
        return all(
            states.get(name, {}).get("done", 0) == count
            and sum(states.get(name, {}).values()) == count
            for name in RECORDERS
        )

    def wait_all_done(self, count: int, timeout: float = 30.0) -> None:
        """Wait until every recorder has `count` deliveries done (and no other)."""
        self.wait_for(
            lambda: self.all_done(count),
            timeout=timeout,
            what=f"{count} deliveries done per subscriber (now {self.states()})",
        )


# -- the scenario -----------------------------------------------------------------------------


def genuine_keys(stream: Sequence[PlannedRequest]) -> set[str]:
    """The dedup keys of the stream's genuine events (what must be stored and delivered)."""
    return {p.event_id.lower() for p in stream if not p.wrong_token}


def planned_calls(stream: Sequence[PlannedRequest]) -> dict[str, list[str]]:
    """CallId to the dedup keys of its events in sending order (each once)."""
    calls: dict[str, list[str]] = {}
    for p in stream:
        call = p.payload.get("CallId")
        if call and not p.duplicate and not p.wrong_token:
            calls.setdefault(str(call), []).append(p.event_id.lower())
    return calls


@dataclass
class Play:
    """One sender's run: `stream` to `url`, with `retries`; `on_delivery` sees each request."""

    url: str
    stream: Sequence[PlannedRequest]
    retries: int = 0
    rate: float = 100.0
    concurrency: int = 8
    on_delivery: Callable[[PlannedRequest, Delivery], None] | None = None
    deliveries: list[tuple[PlannedRequest, Delivery]] = field(default_factory=list)
    """What happened to each request, as they finish."""

    def acknowledged(self) -> set[str]:
        """Dedup keys of the genuine events acknowledged so far."""
        return {
            p.event_id.lower()
            for p, d in list(self.deliveries)
            if d.acknowledged and not p.wrong_token
        }

    def _seen(self, planned: PlannedRequest, delivery: Delivery) -> None:
        self.deliveries.append((planned, delivery))
        if self.on_delivery is not None:
            self.on_delivery(planned, delivery)

    async def run(self, ca: Path) -> Summary:
        """Send the stream (timeouts 5 s, retries 0.2 s apart)."""
        async with Sender(
            self.url,
            provider=EnreachWire(secret=TOKEN),
            verify=ca,
            retries=self.retries,
            retry_delay=0.2,
            timeout=5.0,
        ) as sender:
            return await run_stream(
                self.stream,
                sender,
                rate=self.rate,
                concurrency=self.concurrency,
                on_delivery=self._seen,
            )


def play_together(ca: Path, plays: Sequence[Play]) -> list[Summary]:
    """Run every play at the same time in one event loop; their summaries, in order."""

    async def main() -> list[Summary]:
        return list(await asyncio.gather(*(play.run(ca) for play in plays)))

    return asyncio.run(main())

"""A real PostgreSQL server for tests: one per test session, a fresh database per test.

The server comes from Debian's `postgresql` package (`./dev test` installs it as root): the
newest `/usr/lib/postgresql/NN/bin`. It runs as an unprivileged user (PostgreSQL refuses
root: as root the tests use the package's `postgres` user), on a fresh data directory in a
temporary folder, listening on 127.0.0.1 only, on an ephemeral port, with password
(SCRAM-SHA-256) authentication everywhere, and with `fsync` and `synchronous_commit` on: what
the tests check is the receiver's durability, so the server must not cheat on it.

Use it in a test module by naming the fixtures there (an import alone would trip ruff's F811
on every test that takes the fixture as an argument):

    from tests.support import postgres

    postgres_server = postgres.postgres_server  # the session's server
    postgres_database = postgres.postgres_database  # a fresh database per test: its URL

Every module that names them shares the one server of the session (`session_server`), and a
test that stopped it (`stop()`, for "PostgreSQL down" tests) gets it started again for the
next test by `postgres_database`. Stop and start it from the test's (main) thread: the server
is tied to the thread that started it, so that a killed test run leaves no server behind.

psycopg is used when installed (the product's `postgres` extra); the harness falls back to the
server's own `psql` otherwise, so it never needs more than Debian's package.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

__all__ = [
    "PostgresServer",
    "PostgresUnavailableError",
    "postgres_database",
    "postgres_server",
    "server_binaries",
    "session_server",
]

SUPERUSER = "postgres"
"""The database superuser the URLs name (not the operating-system user)."""

OS_USER = "postgres"
"""The operating-system user the server runs as when the tests run as root (Debian's)."""

FALLBACK_OS_USER = "receiver-pg"
"""Created (as a system user) when the tests run as root and `OS_USER` does not exist."""

SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "on",
    "synchronous_commit": "on",
    "max_connections": "200",
    "shared_buffers": "128MB",
    "logging_collector": "off",
    "log_line_prefix": "%m [%p] %q%u@%d ",
    "log_min_messages": "warning",
}
"""What `postgres` is started with, besides its port and socket folder."""

_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PostgresUnavailableError(RuntimeError):
    """The PostgreSQL server binaries are missing, or the server would not start."""


def server_binaries(root: Path = Path("/usr/lib/postgresql")) -> Path:
    """The newest `/usr/lib/postgresql/NN/bin` holding `initdb` and `postgres`."""
    found: list[tuple[int, Path]] = []
    if root.is_dir():
        for version in root.iterdir():
            bindir = version / "bin"
            if (
                version.name.isdigit()
                and (bindir / "initdb").is_file()
                and (bindir / "postgres").is_file()
            ):
                found.append((int(version.name), bindir))
    if not found:
        raise PostgresUnavailableError(
            f"no PostgreSQL server under {root}/NN/bin: install Debian's `postgresql` package "
            "(`./dev test` does when run as root; otherwise `apt-get install postgresql`)"
        )
    return max(found)[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def psycopg_module() -> ModuleType | None:
    """psycopg 3 when installed (imported by name: the harness must type-check without it)."""
    try:
        return importlib.import_module("psycopg")
    except ImportError:
        return None


def _server_account() -> pwd.struct_passwd | None:
    """The user to run the server as: None when the tests are not root (they run it)."""
    if os.geteuid() != 0:
        return None
    for name in (OS_USER, FALLBACK_OS_USER):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    subprocess.run(
        [
            "useradd",
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            FALLBACK_OS_USER,
        ],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(FALLBACK_OS_USER)


class PostgresServer:
    """One PostgreSQL server on 127.0.0.1 and a temporary data directory.

    `launch()` creates and starts one; `stop()` and `start()` take it down and bring it back
    on the same port and data; `close()` stops it and deletes its files.
    """

    def __init__(self, bindir: Path, account: pwd.struct_passwd | None) -> None:
        self.bindir = bindir
        self.account = account
        # As root, under /tmp: the server's user must reach it, and $TMPDIR may be root's own.
        self.root = Path(tempfile.mkdtemp(prefix="pg-", dir="/tmp" if account else None))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log = self.root / "postgres.log"
        """The server's log (its stderr), appended to across restarts."""
        self.user = SUPERUSER
        self.password = secrets.token_urlsafe(18)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def launch(cls) -> PostgresServer:
        """A new server, initialised and accepting connections."""
        server = cls(server_binaries(), _server_account())
        try:
            server.initdb()
            server.start()
        except BaseException:
            server.close()
            raise
        return server

    # -- processes -------------------------------------------------------------------------

    def _as_owner(self, command: list[str]) -> list[str]:
        """`command` run as the server's user; the server dies with the test process.

        setpriv execs (the child's PID is the command's) and its `--pdeathsig` outlives the
        change of user, so a test run killed outright leaves no server behind. (The signal
        comes when the *thread* that started the server ends, hence `start`'s main thread.)
        """
        prefix = ["setpriv", "--pdeathsig", "SIGINT"]
        if self.account is not None:
            uid, gid = str(self.account.pw_uid), str(self.account.pw_gid)
            prefix += ["--reuid", uid, "--regid", gid, "--init-groups"]
        return [*prefix, "--", *command]

    def _environment(self) -> dict[str, str]:
        # TZ spares initdb probing the system's zone files; no PG* variable reaches the server.
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}

    def initdb(self) -> None:
        """Create the data directory: UTF-8, SCRAM passwords for every connection."""
        self.root.chmod(0o700)
        if self.account is not None:
            os.chown(self.root, self.account.pw_uid, self.account.pw_gid)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self.account is not None:
            os.chown(pwfile, self.account.pw_uid, self.account.pw_gid)
        try:
            result = subprocess.run(
                self._as_owner(
                    [
                        str(self.bindir / "initdb"),
                        "--pgdata",
                        str(self.data),
                        "--username",
                        self.user,
                        "--pwfile",
                        str(pwfile),
                        "--auth",
                        "scram-sha-256",
                        "--encoding",
                        "UTF8",
                        "--locale",
                        "C",
                        "--no-sync",
                        "--no-instructions",
                    ]
                ),
                cwd=self.root,
                env=self._environment(),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        finally:
            pwfile.unlink()
        if result.returncode != 0:
            raise PostgresUnavailableError(f"initdb failed:\n{result.stdout}{result.stderr}")
        self.socket_dir.mkdir(mode=0o700)
        if self.account is not None:
            os.chown(self.socket_dir, self.account.pw_uid, self.account.pw_gid)

    def command(self) -> list[str]:
        """The `postgres` command line (as the server's user)."""
        cmd = [str(self.bindir / "postgres"), "-D", str(self.data)]
        cmd += ["-p", str(self.port), "-k", str(self.socket_dir)]
        for name, value in SERVER_SETTINGS.items():
            cmd += ["-c", f"{name}={value}"]
        return self._as_owner(cmd)

    @property
    def running(self) -> bool:
        """Whether the server process this object started is alive."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        """The postmaster's process id."""
        if self.proc is None:
            raise RuntimeError("the server is not started")
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> None:
        """Start the server (again) on its port and data; return once it accepts connections.

        Only from the main thread: the server gets SIGINT when the thread that started it ends.
        """
        if self.running:
            return
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("start PostgreSQL from the main thread (it dies with its thread)")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.root,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # a Ctrl-C meant for pytest reaches it through close()
            )
        deadline = time.monotonic() + timeout
        while not self._accepting():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._halt()
                raise PostgresUnavailableError(
                    f"PostgreSQL did not start on 127.0.0.1:{self.port}:\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def _accepting(self) -> bool:
        command = [str(self.bindir / "pg_isready"), "--quiet", "--timeout", "1"]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--dbname", "postgres"]
        result = subprocess.run(
            command,
            env=self._environment(),
            check=False,
        )
        return result.returncode == 0

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (`pg_ctl stop -m fast`'s SIGINT, to this server's PID only): clients
        are disconnected, committed data is kept."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._halt()
            raise
        self.proc = None

    def _halt(self) -> None:
        """Immediate shutdown (SIGQUIT), then SIGKILL if that does not end it."""
        if self.proc is None:
            return
        for sig in (signal.SIGQUIT, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            self.proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        """Stop the server and delete its data directory."""
        try:
            self.stop()
        finally:
            self._halt()
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log, for failure messages."""
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- connecting ------------------------------------------------------------------------

    def url(self, dbname: str = "postgres", *, password: bool = True) -> str:
        """`postgresql://USER:PASSWORD@127.0.0.1:PORT/DBNAME`; without the password when
        `password=False` (for tests that give it by PGPASSWORD or a passfile)."""
        secret = f":{self.password}" if password else ""
        return f"postgresql://{self.user}{secret}@127.0.0.1:{self.port}/{dbname}"

    def libpq_environment(self) -> dict[str, str]:
        """libpq's PGHOST, PGPORT, PGUSER and PGPASSWORD for this server."""
        return {
            "PGHOST": "127.0.0.1",
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
        }

    def write_passfile(self, path: Path) -> Path:
        """A libpq passfile (mode 0600) with this server's password at `path`."""
        path.write_text(f"127.0.0.1:{self.port}:*:{self.user}:{self.password}\n")
        path.chmod(0o600)
        return path

    def psql(
        self, sql: str, dbname: str = "postgres", *, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `sql` with the server's `psql` over TCP (unaligned, tuples only, `|` between
        fields); the password comes from `env` (by default this server's PGPASSWORD)."""
        environment = {**self._environment(), "PGCONNECT_TIMEOUT": "5"}
        environment.update(self.libpq_environment() if env is None else env)
        command = [str(self.bindir / "psql"), "--no-psqlrc", "--quiet", "--tuples-only"]
        command += ["--no-align", "--set", "ON_ERROR_STOP=1"]
        command += ["--dbname", self.url(dbname, password=False), "--command", sql]
        return subprocess.run(
            command,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def query(self, sql: str, dbname: str = "postgres") -> list[list[str]]:
        """The rows `sql` returns, each field as psql prints it (`t`/`f` for booleans)."""
        result = self.psql(sql, dbname)
        if result.returncode != 0:
            raise RuntimeError(f"psql failed ({result.returncode}): {result.stderr.strip()}")
        return [line.split("|") for line in result.stdout.splitlines() if line]

    def execute(self, sql: str, dbname: str = "postgres") -> None:
        """Run `sql` in autocommit (psycopg when installed, else psql)."""
        psycopg = psycopg_module()
        if psycopg is None:
            self.query(sql, dbname)
            return
        with psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql)

    def create_database(self, name: str | None = None) -> str:
        """A new empty database (named `name`, else a unique name); returns its URL."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        if not _DATABASE_NAME.fullmatch(name):
            raise ValueError(f"not a plain database name: {name!r}")
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name`, disconnecting whoever is still connected to it."""
        if not _DATABASE_NAME.fullmatch(name):
            raise ValueError(f"not a plain database name: {name!r}")
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_SERVER = pytest.StashKey[PostgresServer]()


def session_server(config: pytest.Config) -> PostgresServer:
    """The test session's one server: launched on first use, closed when the session ends."""
    server = config.stash.get(_SERVER, None)
    if server is None:
        try:
            server = PostgresServer.launch()
        except PostgresUnavailableError as error:
            pytest.fail(str(error), pytrace=False)
        config.stash[_SERVER] = server
        config.add_cleanup(server.close)
    return server


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> PostgresServer:
    """The session's PostgreSQL server (see the module docstring)."""
    return session_server(request.config)


def _database_name(request: pytest.FixtureRequest) -> str:
    """`t_<test name>_<random>`, within PostgreSQL's 63 characters."""
    stem = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:40]
    return f"t_{stem}_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def postgres_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a fresh database on the session's server (started again if a test left it
    stopped); dropped after the test."""
    server = session_server(request.config)
    server.start()
    name = _database_name(request)
    url = server.create_database(name)
    yield url
    server.start()
    server.drop_database(name)

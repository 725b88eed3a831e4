"""Start-up: check everything that can be checked, bind, then hand over to an engine."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from receiver.app import ReceiverApp
from receiver.certs import DevCertificates, default_hostnames, write_dev_certificates
from receiver.config import Settings, check_secrets
from receiver.engines import load_engine
from receiver.exceptions import ConfigError
from receiver.inbox.base import check_inbox, describe_inbox
from receiver.lanes import ABANDONED
from receiver.loading import load_handler
from receiver.runtime import Runtime
from receiver.tls import ServerTLS, watch_certificate_files

if TYPE_CHECKING:
    from receiver.admin.listener import AdminListener

__all__ = [
    "bind_socket",
    "build_app",
    "listen_on",
    "load_handler",
    "prepare_tls",
    "run",
    "run_loop",
]

log = logging.getLogger("receiver.server")

SD_LISTEN_FDS_START = 3

LEFTOVER_WAIT = 0.5
"""Seconds the tasks left when the server has stopped get to end once cancelled."""

EXIT_STOPPED = 1
"""`receiver serve`'s exit status after a part it cannot work without (the inbox writer, the
dispatcher) stopped: non-zero, so a supervisor restarts it."""


def build_app(settings: Settings) -> ReceiverApp:
    """The application with every subscriber's handler loaded and checked."""
    check_secrets(settings)
    return ReceiverApp(settings, Runtime(settings))


def prepare_tls(settings: Settings, announce: Callable[[str], None]) -> ServerTLS:
    """Load the configured certificate, creating development certificates on first run."""
    if settings.cert is None and settings.key is None:
        dev = DevCertificates.in_dir(settings.certs_dir)
        if not dev.exist():
            write_dev_certificates(settings.certs_dir, default_hostnames())
            announce(
                f"created a development CA and certificate in {settings.certs_dir}/; "
                f"clients trust it with the CA file {dev.ca.resolve()}"
            )
        else:
            announce(f"using the development certificate; CA file: {dev.ca.resolve()}")
    elif settings.cert is None or settings.key is None:
        raise ConfigError("give both --cert and --key (or neither, for development certificates)")
    return ServerTLS(settings.cert_file, settings.key_file, client_cas=settings.client_cas)


def bind_socket(settings: Settings) -> socket.socket:
    """The listening socket: inherited (--fd, systemd LISTEN_FDS) or bound here."""
    fd = settings.fd
    systemd = os.environ.get("LISTEN_PID") == str(os.getpid())
    if fd is None and systemd and int(os.environ.get("LISTEN_FDS", "0")) >= 1:
        fd = SD_LISTEN_FDS_START
    if fd is not None:
        try:
            sock = socket.socket(fileno=fd)
        except OSError as exc:
            raise ConfigError(f"file descriptor {fd} is not a socket: {exc.strerror}") from exc
        if sock.type != socket.SOCK_STREAM:
            raise ConfigError(f"file descriptor {fd} is not a stream socket")
        sock.setblocking(False)
        return sock
    return listen_on(settings.host, settings.port)


def listen_on(host: str, port: int, what: str = "") -> socket.socket:
    """A non-blocking socket listening on `host`:`port` (`what`: which listener, for errors);
    ConfigError with a one-line reason if it cannot."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6 and host == "::":
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"{what}port {port} on {host} is already in use") from exc
        if exc.errno == errno.EACCES:
            raise ConfigError(
                f"no permission to bind {what}port {port}: run as root, grant "
                "CAP_NET_BIND_SERVICE, or pass a socket with --fd / systemd socket activation "
                "(see README)"
            ) from exc
        raise ConfigError(
            f"cannot listen on {host}:{port}{what and ' (' + what.strip() + ')'}: {exc.strerror}"
        ) from exc
    sock.setblocking(False)
    return sock


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` on uvloop when installed (else asyncio), then close the loop within
    LEFTOVER_WAIT seconds.

    `asyncio.run` would wait for every leftover task; a handler that ignores cancellation
    (the dispatcher has already given it up) must not keep a stopped receiver alive.
    """
    try:
        import uvloop
    except ImportError:
        loop = asyncio.new_event_loop()
    else:
        loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(main)
    finally:
        try:
            leftovers = asyncio.all_tasks(loop)
            for task in leftovers:
                task.cancel()
            leftovers -= set(ABANDONED)  # given their grace already
            if leftovers:
                loop.run_until_complete(asyncio.wait(leftovers, timeout=LEFTOVER_WAIT))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _admin_listener(
    app: ReceiverApp, tls: ServerTLS, sock: socket.socket | None, settings: Settings
) -> AdminListener | None:
    """The admin listener on `sock`, to start with the app; None without one."""
    if sock is None:
        return None
    from receiver.admin.context import AdminContext
    from receiver.admin.listener import AdminListener

    endpoints = list({id(e): e for e in app.endpoints.values()}.values())
    ctx = AdminContext(
        app.runtime, role="serve", endpoints=endpoints, tls=tls, engine=settings.engine
    )
    listener = AdminListener(ctx, tls, sock)
    app.started.append(listener.start)  # once the runtime has started: up means up
    return listener


def run(settings: Settings, announce: Callable[[str], None] = print) -> int:
    """Serve until SIGTERM/SIGINT, or until a part the receiver cannot work without stops;
    returns the exit status (0, or EXIT_STOPPED). Raises ConfigError with a one-line reason
    on bad set-up."""
    # A file-size limit must fail the write (a 503 to the sender), not kill the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    app = build_app(settings)
    check_inbox(settings.inbox)
    tls = prepare_tls(settings, announce)
    engine = load_engine(settings.engine)
    sock = bind_socket(settings)
    from receiver.admin.listener import address, bind_admin

    admin_sock = bind_admin(settings, "serve")
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    for path, endpoint in app.endpoints.items():
        if not path.endswith("/") or path == "/":
            announce(f"{endpoint.name}: https://{shown}:{port}{path}")
    dispatching = "" if app.runtime.wants_dispatch else " (not dispatching)"
    announce(
        f"listening on {shown}:{port} with {settings.engine}, inbox "
        f"{describe_inbox(settings.inbox)}{dispatching}"
    )
    if admin_sock is not None:
        announce(f"admin: {address(admin_sock)}/ (health, readiness, metrics, console)")
        if app.runtime.alerts is not None:  # dead-letter alerts link to the console
            app.runtime.alerts.console = address(admin_sock)

    stopped: list[str] = []
    serving = False

    def stop(part: str, reason: str) -> None:
        # The app has logged why. Every engine stops gracefully on SIGTERM, as from a
        # supervisor: open requests are answered, handlers get --shutdown-timeout.
        stopped.append(part)
        if serving:  # else the engine's handler is gone, and it has stopped anyway
            signal.raise_signal(signal.SIGTERM)

    app.on_stopped = stop

    async def main() -> None:
        nonlocal serving
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, tls.reload)
        watch = settings.cert_watch_interval
        watcher = (
            asyncio.create_task(watch_certificate_files(tls, watch), name="certificate watch")
            if watch > 0
            else None
        )
        admin = _admin_listener(app, tls, admin_sock, settings)
        serving = True
        try:
            await engine(app, tls, sock, settings)
        finally:
            serving = False
            if admin is not None:
                await admin.stop()
            if watcher is not None:
                watcher.cancel()
                await asyncio.wait([watcher])  # unlike `await watcher`, never raises

    run_loop(main())
    return EXIT_STOPPED if stopped else 0

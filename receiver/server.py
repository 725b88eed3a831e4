"""Start-up: check everything that can be checked, bind, then hand over to an engine."""

from __future__ import annotations

import asyncio
import errno
import importlib
import importlib.util
import logging
import os
import signal
import socket
import sys
import traceback
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from receiver.app import ReceiverApp
from receiver.certs import DevCertificates, default_hostnames, write_dev_certificates
from receiver.config import Settings, check_secrets
from receiver.engines import load_engine
from receiver.exceptions import ConfigError, StorageError
from receiver.handling import EventHandler, LoggingHandler, check_handler
from receiver.inbox.base import inbox_path
from receiver.inbox.sqlite import connect
from receiver.tls import ServerTLS, watch_certificate_files

__all__ = ["bind_socket", "build_app", "load_handler", "prepare_tls", "run", "run_loop"]

log = logging.getLogger("receiver.server")

SD_LISTEN_FDS_START = 3

LEFTOVER_WAIT = 0.5
"""Seconds the tasks left when the server has stopped get to end once cancelled."""

EXIT_STOPPED = 1
"""`receiver serve`'s exit status after a part it cannot work without (the inbox writer, the
dispatcher) stopped: non-zero, so a supervisor restarts it."""


def load_handler(spec: str) -> EventHandler:
    """Import `module:object` or `path/to/file.py:object`; a class is instantiated.

    Every failure, an exception raised while the module is imported included, is a
    `ConfigError` of one line (with the file and line where it was raised).
    """
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise ConfigError(f"handler {spec!r} must look like module:object or file.py:object")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name = _module_of_file(target) if _is_file_path(target) else target
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(_import_failure(module_name, exc)) from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"module {module_name!r} has no {attr!r}") from None
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as exc:
            raise ConfigError(f"cannot create handler {spec}: {_raised(exc)}") from exc
    if not isinstance(obj, EventHandler):
        raise ConfigError(
            f"{spec} is not a handler: subclass handlers.EnreachHandler "
            "(or give an object with async handle() and failed())"
        )
    return obj


def _is_file_path(target: str) -> bool:
    return target.endswith(".py") or "/" in target or os.sep in target


def _module_of_file(target: str) -> str:
    """Make `path/to/bridge.py` importable as `bridge`, its folder last on sys.path.

    Last, so that a file beside it cannot shadow a module the receiver uses; a module of the
    same name found first is refused rather than imported in its place.
    """
    path = Path(target).expanduser()
    if path.suffix != ".py":
        raise ConfigError(f"handler file {target} must be a .py file (or give module:object)")
    if not path.is_file():
        raise ConfigError(f"handler file {target} not found")
    name = path.stem
    if not name.isidentifier():
        raise ConfigError(f"handler file {target}: {name!r} is not a module name; rename the file")
    path = path.resolve()
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        found = None
    origin = found.origin if found is not None else None
    if origin is None or Path(origin).resolve() != path:
        taken = f" by {origin}" if origin else ""
        raise ConfigError(
            f"handler file {target}: the module name {name!r} is taken{taken}; rename the file"
        )
    return name


# Both packages ship side by side; a frame in them is where our code refused the user's.
_OWN_PACKAGES = tuple(
    str(Path(__file__).resolve().parent.parent / p) + os.sep for p in ("receiver", "handlers")
)


def _raised(exc: BaseException) -> str:
    """`file:line: Type: message` of the line that raised `exc` in the integrator's code.

    That is the innermost frame outside the import machinery and this project's packages
    (a `TypeError` from `Handler.on` points at the decorated function), else the innermost.
    """
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{_shown(exc.filename)}:{exc.lineno}: {type(exc).__name__}: {exc.msg}"
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith("<") and frame.filename != __file__
    ]
    theirs = [f for f in frames if not f.filename.startswith(_OWN_PACKAGES)] or frames
    where = f"{_shown(theirs[-1].filename)}:{theirs[-1].lineno}: " if theirs else ""
    return f"{where}{type(exc).__name__}: {exc}"


def _shown(filename: str) -> str:
    """`filename` relative to the working directory when it is inside it."""
    relative = os.path.relpath(filename)
    return filename if relative.startswith("..") else relative


def _import_failure(module_name: str, exc: Exception) -> str:
    missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
    if missing and (module_name == missing or module_name.startswith(missing + ".")):
        return f"cannot import handler module {module_name!r}: {exc}"
    return f"cannot import handler module {module_name!r}: {_raised(exc)}"


def build_app(settings: Settings) -> ReceiverApp:
    """The application with each endpoint's handler loaded and checked."""
    check_secrets(settings)
    handlers: dict[str, EventHandler] = {}
    default: EventHandler = load_handler(settings.handler) if settings.handler else LoggingHandler()
    instances = {id(default): default}
    # A method is of use when any endpoint served by its class configures its event type.
    event_types: dict[type, list[str]] = {type(default): []}
    for endpoint in settings.endpoints:
        handler = load_handler(endpoint.handler) if endpoint.handler else default
        kind = getattr(handler, "source_kind", None)
        if kind and kind != endpoint.kind:
            raise ConfigError(
                f"endpoint {endpoint.name!r} receives {endpoint.kind} events but its handler "
                f"{type(handler).__name__} handles {kind} events"
            )
        handlers[endpoint.name] = handler
        instances[id(handler)] = handler
        event_types.setdefault(type(handler), []).extend(endpoint.event_types)
    warnings: dict[str, None] = {}
    for handler in instances.values():
        warnings.update(dict.fromkeys(check_handler(handler, event_types[type(handler)])))
    for warning in warnings:
        log.warning("%s", warning)
    return ReceiverApp(settings, handlers, default_handler=default)


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
    host, port = settings.host, settings.port
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
            raise ConfigError(f"port {port} on {host} is already in use") from exc
        if exc.errno == errno.EACCES:
            raise ConfigError(
                f"no permission to bind port {port}: run as root, grant CAP_NET_BIND_SERVICE, "
                "or pass a socket with --fd / systemd socket activation (see README)"
            ) from exc
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.setblocking(False)
    return sock


def _check_inbox(settings: Settings) -> None:
    path = inbox_path(settings.inbox)
    try:
        connect(path).close()
    except StorageError as exc:
        raise ConfigError(str(exc)) from exc


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
            if leftovers:
                loop.run_until_complete(asyncio.wait(leftovers, timeout=LEFTOVER_WAIT))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def run(settings: Settings, announce: Callable[[str], None] = print) -> int:
    """Serve until SIGTERM/SIGINT, or until a part the receiver cannot work without stops;
    returns the exit status (0, or EXIT_STOPPED). Raises ConfigError with a one-line reason
    on bad set-up."""
    # A file-size limit must fail the write (a 503 to the sender), not kill the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    app = build_app(settings)
    _check_inbox(settings)
    tls = prepare_tls(settings, announce)
    engine = load_engine(settings.engine)
    sock = bind_socket(settings)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    for path, endpoint in app.endpoints.items():
        if not path.endswith("/") or path == "/":
            announce(f"{endpoint.name}: https://{shown}:{port}{path}")
    announce(
        f"listening on {shown}:{port} with {settings.engine}, inbox {inbox_path(settings.inbox)}"
        f"{'' if app.settings.dispatch and settings.workers else ' (not dispatching)'}"
    )

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
        serving = True
        try:
            await engine(app, tls, sock, settings)
        finally:
            serving = False
            if watcher is not None:
                watcher.cancel()
                await asyncio.wait([watcher])  # unlike `await watcher`, never raises

    run_loop(main())
    return EXIT_STOPPED if stopped else 0

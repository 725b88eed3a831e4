"""Server engines by name; each module has `async def serve(app, tls, sock, settings)`."""

from __future__ import annotations

import importlib
import socket
from collections.abc import Coroutine
from typing import Any, Protocol, cast

from receiver.config import Settings
from receiver.exceptions import ConfigError
from receiver.tls import ServerTLS

__all__ = ["ENGINES", "Engine", "load_engine"]

ENGINES = {
    "uvicorn": "receiver.engines.uvicorn_engine",
    "hypercorn": "receiver.engines.hypercorn_engine",
}


class Engine(Protocol):
    """Serves an ASGI app over TLS on a bound socket until SIGTERM or SIGINT."""

    def __call__(
        self, app: Any, tls: ServerTLS, sock: socket.socket, settings: Settings
    ) -> Coroutine[Any, Any, None]:
        """Serve until told to stop, then shut down gracefully."""
        ...


def load_engine(name: str) -> Engine:
    """The `serve` coroutine function of engine `name`."""
    try:
        module = importlib.import_module(ENGINES[name])
    except KeyError:
        raise ConfigError(f"unknown engine {name!r}; choose {' or '.join(ENGINES)}") from None
    except ImportError as exc:
        raise ConfigError(f"engine {name!r} is not installed: {exc}") from exc
    return cast(Engine, module.serve)

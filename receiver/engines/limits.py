"""How many connections the receiver holds, and for how long their TLS may keep it waiting.

Every open connection costs a file descriptor, and the process has a fixed number of them
(the `RLIMIT_NOFILE` soft limit, 1024 under systemd unless raised): once they are spent,
no new connection can be accepted and every webhook fails. Both engines therefore

- raise the soft limit to the hard limit at start (`raise_open_files_limit`);
- hold at most `max_connections` established connections (`ConnectionLimit`): a new one
  beyond that closes the connection that has been idle longest (no request in progress),
  or is itself closed when every connection is busy; busy ones are bounded in time by the
  request deadline, and connections still in the TLS handshake by `tls_handshake_timeout`;
- give a closing TLS connection `TLS_CLOSE_GRACE` seconds for the peer's close_notify
  (asyncio and uvloop wait 30 s), and close one with nothing to say without any.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import asdict, dataclass
from typing import Protocol

from receiver.config import Settings
from receiver.logs import RateLimitedLog

__all__ = [
    "FILES_RESERVE",
    "MAX_CONNECTIONS_CAP",
    "TLS_CLOSE_GRACE",
    "ConnectionCounters",
    "ConnectionLimit",
    "Sheddable",
    "connection_limit",
    "default_max_connections",
    "raise_open_files_limit",
]

log = logging.getLogger("receiver.engines")

TLS_CLOSE_GRACE = 1.0
"""Seconds a closing TLS connection waits for the peer's close_notify before it is aborted."""

FILES_RESERVE = 256
"""File descriptors kept for everything but established connections: the inbox, logs,
handlers' own connections, and connections still in their TLS handshake."""

MAX_CONNECTIONS_CAP = 10_000
"""The default bound on connections however many files the process may open (memory)."""


class Sheddable(Protocol):
    """An established connection the limit can close."""

    def shed(self) -> None:
        """Close the connection at once, without waiting for the peer."""
        ...


@dataclass(slots=True)
class ConnectionCounters:
    """What the connection limit did since the server started."""

    admitted: int = 0
    """Connections established (TLS handshake done) and kept."""
    shed: int = 0
    """Idle connections closed to admit a new one."""
    refused: int = 0
    """New connections closed because every connection was busy."""
    peak: int = 0
    """The most connections open at once."""

    def as_dict(self) -> dict[str, int]:
        """The counters by name, for a summary line or a metrics endpoint."""
        return asdict(self)


class ConnectionLimit:
    """At most `maximum` established connections; the longest idle makes room for a new one.

    An engine reports each connection's life: `admit` once established (it starts idle),
    `busy` when a request begins to arrive, `idle` when its last response is complete and
    nothing more has arrived, `release` when it is gone. Idle connections are kept in the
    order they became idle, so finding the one to shed costs nothing however many are open.
    """

    def __init__(self, maximum: int) -> None:
        if maximum < 1:
            raise ValueError(f"maximum must be at least 1, not {maximum}")
        self.maximum = maximum
        self.counters = ConnectionCounters()
        self._idle: dict[Sheddable, None] = {}  # insertion order: longest idle first
        self._busy: set[Sheddable] = set()
        self._shed_log = RateLimitedLog(log, burst=1, interval=10.0)
        self._refused_log = RateLimitedLog(log, burst=1, interval=10.0)

    def __len__(self) -> int:
        return len(self._idle) + len(self._busy)

    def admit(self, connection: Sheddable) -> bool:
        """Count a newly established connection in, shedding the longest idle one to make
        room; False (the caller closes it) if there is no room and nobody is idle."""
        if len(self) >= self.maximum:
            if not self._idle:
                self.counters.refused += 1
                self._refused_log.warning(
                    "at the connection limit (%d), all busy: refused a new connection "
                    "(counted; logged at most once in 10 s)",
                    self.maximum,
                )
                return False
            oldest = next(iter(self._idle))
            del self._idle[oldest]
            self.counters.shed += 1
            self._shed_log.warning(
                "at the connection limit (%d): closed the longest idle connection to admit "
                "a new one (counted; logged at most once in 10 s)",
                self.maximum,
            )
            oldest.shed()
        self._idle[connection] = None
        self.counters.admitted += 1
        self.counters.peak = max(self.counters.peak, len(self))
        return True

    def busy(self, connection: Sheddable) -> None:
        """A request has begun to arrive on `connection`: it is not shed until `idle`."""
        if connection in self._idle:
            del self._idle[connection]
            self._busy.add(connection)

    def idle(self, connection: Sheddable) -> None:
        """`connection` has no request in progress; it goes last in the shedding order."""
        if connection in self._busy:
            self._busy.discard(connection)
            self._idle[connection] = None

    def release(self, connection: Sheddable) -> None:
        """`connection` is gone (closed by either side, or shed)."""
        self._idle.pop(connection, None)
        self._busy.discard(connection)

    def summary(self) -> str:
        """One line for the log at stop."""
        counters = self.counters
        return (
            f"connections: {counters.admitted} admitted, at most {counters.peak} open at once "
            f"(limit {self.maximum}), {counters.shed} idle ones shed, {counters.refused} refused"
        )


def raise_open_files_limit() -> int:
    """Raise this process's soft open-files limit to its hard limit; returns the limit now
    in force. Logged once at info with both numbers."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == resource.RLIM_INFINITY or soft >= hard:
        log.info("open files: soft limit %s, hard limit %s", _shown(soft), _shown(hard))
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (OSError, ValueError) as exc:
        log.warning("open files: could not raise the soft limit %d to %d: %s", soft, hard, exc)
        return soft
    log.info("open files: raised the soft limit from %d to the hard limit, %d", soft, hard)
    return hard


def _shown(limit: int) -> str:
    return "unlimited" if limit == resource.RLIM_INFINITY else str(limit)


def default_max_connections(open_files: int) -> int:
    """How many connections `open_files` descriptors allow, with `FILES_RESERVE` kept back
    (half of them, if there are few), at most `MAX_CONNECTIONS_CAP`."""
    if open_files == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS_CAP
    return max(1, min(max(open_files - FILES_RESERVE, open_files // 2), MAX_CONNECTIONS_CAP))


def connection_limit(settings: Settings) -> ConnectionLimit:
    """The limit `settings` ask for (`max_connections`, else sized from the open-files limit
    in force); warns when the open-files limit cannot back it."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    fits = default_max_connections(soft)
    if settings.max_connections is None:
        return ConnectionLimit(fits)
    if settings.max_connections > fits:
        log.warning(
            "max_connections %d is more than the open-files limit (%s) allows with %d kept "
            "for the rest: past about %d connections, new ones cannot be accepted",
            settings.max_connections,
            _shown(soft),
            FILES_RESERVE,
            fits,
        )
    return ConnectionLimit(settings.max_connections)

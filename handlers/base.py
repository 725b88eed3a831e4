"""The mechanism every provider's handler base class shares: decode, route, report."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar, Generic, TypeVar

from receiver.catalogs.model import snake_case
from receiver.exceptions import ConfigError, DecodeError
from receiver.inbox.models import State, StoredEvent

__all__ = ["Handler", "method_for"]

log = logging.getLogger("receiver.handlers")

E = TypeVar("E")
Callback = Callable[[Any], Awaitable[None]]


class Handler(Generic[E]):
    """Base of `EnreachHandler` and the other providers' handler classes.

    A provider subclass sets `source_kind`, implements `decode` and `method_name`; an
    integrator subclasses that and overrides `on_<event_type>` methods. An event whose
    method is not overridden (and has no decorated callback) goes to `on_any`.
    """

    source_kind: ClassVar[str] = ""
    provider_name: ClassVar[str] = "this provider"
    """The provider's name in messages (`Enreach`)."""
    known_event_types: ClassVar[tuple[str, ...]] = ()
    """The event types the provider documents."""
    configured_event_types: ClassVar[bool] = False
    """True when an endpoint's config names its event type, so a subclass may add methods."""
    _provider_base: ClassVar[bool] = True

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Callback]] = {}
        self._routes: dict[str, Callback | None] = {}

    # -- provider hooks -------------------------------------------------------------

    def decode(self, stored: StoredEvent) -> E:
        """Turn a stored event into the provider's event object; raise `DecodeError`."""
        raise NotImplementedError

    def method_name(self, event_type: str) -> str:
        """The name of the method that handles `event_type` (e.g. `on_user_wrap_up_started`)."""
        raise NotImplementedError

    def accepts(self, event: E) -> bool:
        """Whether this handler wants `event` at all (subscription filters); default yes."""
        return True

    # -- what integrators override ----------------------------------------------------

    async def on_any(self, event: E) -> None:
        """Receive every event that no specific method or callback handles."""

    async def on_error(self, event: E | None, stored: StoredEvent, error: BaseException) -> None:
        """Hear about a failed attempt; `event` is None when the payload did not decode.

        `stored.state` tells whether another attempt follows: `State.DEAD` when this was the
        last (the delivery is now a dead letter), else `State.IN_PROGRESS`; `stored.attempts`
        counts the failed attempts before this one.
        """

    # -- decorator form -----------------------------------------------------------------

    def on(self, event_type: str) -> Callable[[Callback], Callback]:
        """Register `async def f(event)` for `event_type` on this handler instance."""

        def register(func: Callback) -> Callback:
            if not inspect.iscoroutinefunction(func):
                name = getattr(func, "__name__", repr(func))
                raise TypeError(f"{name} handles {event_type}: define it with async def")
            self._callbacks.setdefault(event_type, []).append(func)
            self._routes.pop(event_type, None)
            return func

        return register

    # -- start-up check ------------------------------------------------------------------

    def check_methods(self, event_types: Iterable[str] = ()) -> list[str]:
        """Refuse `on_*` methods that could never run; return warnings about doubtful ones.

        Raises `ConfigError` (one line) naming each `on_*` method defined without `async def`
        (the dispatcher awaits it) and, where the provider's event types are fixed, each
        `on_*` name that no event type routes to, with the closest one. Where an endpoint's
        config names its event type (`configured_event_types`), such a name is only a warning;
        `event_types` are the types configured for the endpoints this handler serves.
        """
        cls = type(self)
        configured = tuple(event_types) if self.configured_event_types else ()
        routed = {self.method_name(event_type) for event_type in configured}
        known = sorted(_provider_methods(cls) | routed)
        errors: list[str] = []
        warnings: list[str] = []
        for name, owner in _integrator_methods(cls):
            where = f"{owner.__qualname__}.{name}"
            if not inspect.iscoroutinefunction(getattr(self, name)):
                errors.append(f"{where} must be defined with async def (the dispatcher awaits it)")
                continue
            if name in known:
                continue
            close = difflib.get_close_matches(name, known, n=1)
            hint = (
                f"; did you mean {close[0]}?"
                if close
                else " (a helper method's name must not start with on_)"
            )
            if self.configured_event_types:
                shown = f" for its endpoints ({', '.join(configured)})" if configured else ""
                warnings.append(
                    f"{where} matches no {self.provider_name} event type documented or "
                    f"configured{shown}{hint}"
                )
            else:
                errors.append(f"{where} matches no {self.provider_name} event type{hint}")
        types = sorted({*self.known_event_types, *configured})
        for event_type in getattr(self, "_callbacks", {}):  # {} if __init__ was skipped
            if event_type not in types:
                close = difflib.get_close_matches(event_type, types, n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                warnings.append(
                    f"{cls.__qualname__}.on({event_type!r}) names no {self.provider_name} "
                    f"event type documented or configured{hint}"
                )
        if errors:
            raise ConfigError("; ".join(errors))
        return warnings

    # -- the EventHandler protocol ------------------------------------------------------

    async def handle(self, stored: StoredEvent) -> None:
        """Decode `stored` and hand it to its method, callbacks, or `on_any`."""
        try:
            event = self.decode(stored)
        except DecodeError as exc:  # never retried: the delivery is a dead letter
            await self._report(None, dataclasses.replace(stored, state=State.DEAD), exc)
            raise
        if not self.accepts(event):
            return
        callbacks = self._callbacks.get(stored.event_type)
        if callbacks:
            for callback in callbacks:
                await callback(event)
            return
        route = self._route(stored.event_type)
        await (route(event) if route is not None else self.on_any(event))

    async def failed(self, stored: StoredEvent, error: BaseException, *, final: bool) -> None:
        """Tell `on_error` about a failed attempt that did not come from decoding."""
        if isinstance(error, DecodeError):
            return  # already reported by `handle`
        try:
            event: E | None = self.decode(stored)
        except DecodeError:
            event = None
        state = State.DEAD if final else State.IN_PROGRESS
        await self._report(event, dataclasses.replace(stored, state=state), error)

    # -- internals ------------------------------------------------------------------------

    def _route(self, event_type: str) -> Callback | None:
        try:
            return self._routes[event_type]
        except KeyError:
            pass
        route: Callback | None = None
        name = self.method_name(event_type)
        method = getattr(type(self), name, None)
        if method is not None and _is_overridden(type(self), name):
            route = getattr(self, name)
        self._routes[event_type] = route
        return route

    async def _report(self, event: E | None, stored: StoredEvent, error: BaseException) -> None:
        try:
            await self.on_error(event, stored, error)
        except Exception:
            # A failing error hook must never turn into a second failure.
            log.exception("on_error raised while reporting event %s", stored.id)


def _is_overridden(cls: type, name: str) -> bool:
    """True when `name` is defined by an integrator's class, not a provider base class."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return not vars(klass).get("_provider_base", False)
    return False


def _provider_methods(cls: type) -> set[str]:
    """The `on_*` names the provider base classes of `cls` define."""
    return {
        name
        for klass in cls.__mro__
        if vars(klass).get("_provider_base", False)
        for name in vars(klass)
        if name.startswith("on_")
    }


def _integrator_methods(cls: type) -> list[tuple[str, type]]:
    """Each `on_*` name an integrator's class defines, with the class that defines it."""
    found: dict[str, type] = {}
    for klass in cls.__mro__:
        for name in vars(klass):
            if name.startswith("on_") and name not in found:
                found[name] = klass
    return sorted(
        ((name, klass) for name, klass in found.items() if not vars(klass).get("_provider_base")),
        key=lambda item: item[0],
    )


def method_for(event_type: str) -> str:
    """The handler method of a configured event type: `Outbound Call` → `on_outbound_call`."""
    words = "".join(c if c.isalnum() else "_" for c in event_type.strip())
    return "on_" + "_".join(part for part in snake_case(words).split("_") if part)

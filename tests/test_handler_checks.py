"""`check_handler`: what start-up refuses (plain `def`, unreachable `on_*` names) or warns about."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from handlers import BuzzeasyHandler, EnreachHandler, Handler, WebServicesHandler, WfmHandler
from handlers.enreach import EnreachEvent, QueueStatus
from receiver.exceptions import ConfigError
from receiver.handling import LoggingHandler, check_handler


async def _noop(self: object, event: object) -> None:
    """An `on_*` method that does nothing."""


def _plain(self: object, event: object) -> None:
    """An `on_*` method without `async`."""


def subclass(base: type[Handler[Any]], **methods: Callable[..., Any]) -> Handler[Any]:
    """An instance of `Bridge(base)` with `methods`."""
    bridge: type[Handler[Any]] = type("Bridge", (base,), methods)
    return bridge()


@pytest.mark.parametrize(
    "handler",
    [EnreachHandler(), WfmHandler(), WebServicesHandler(), BuzzeasyHandler(), LoggingHandler()],
    ids=type,
)
def test_the_base_classes_pass_as_they_are(handler: object) -> None:
    assert check_handler(handler) == []


class Complete(EnreachHandler):
    """Documented event methods, the base hooks and helpers that are not `on_*`."""

    async def on_queue_status(self, event: QueueStatus) -> None:
        """One documented type."""

    async def on_any(self, event: EnreachEvent) -> None:
        """Everything else."""

    async def on_error(self, event: object, stored: object, error: BaseException) -> None:
        """Failures."""

    def crm_client(self) -> None:
        """A plain helper is fine: the dispatcher never calls it."""


def test_event_methods_base_hooks_and_helpers_pass() -> None:
    assert check_handler(Complete()) == []


@pytest.mark.parametrize(
    ("base", "name", "reason"),
    [
        (
            EnreachHandler,
            "on_user_wrapup_started",
            "Bridge.on_user_wrapup_started matches no Enreach event type; did you mean "
            "on_user_wrap_up_started?",
        ),
        (
            WfmHandler,
            "on_endcall",
            "Bridge.on_endcall matches no Engage WFM event type; did you mean on_end_call?",
        ),
        (EnreachHandler, "on_anything", "did you mean on_any?"),
        (WfmHandler, "on_startup", "(a helper method's name must not start with on_)"),
    ],
)
def test_a_name_no_fixed_event_type_reaches_is_refused_with_the_closest(
    base: type[Handler[Any]], name: str, reason: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(reason)):
        check_handler(subclass(base, **{name: _noop}))


@pytest.mark.parametrize(
    ("base", "name", "configured", "warning"),
    [
        (
            WebServicesHandler,
            "on_post_cal",
            ["PostCall"],
            "Bridge.on_post_cal matches no Engage Web Services event type documented or "
            "configured for its endpoints (PostCall); did you mean on_post_call?",
        ),
        (
            BuzzeasyHandler,
            "on_work_item_close",
            [],
            "Bridge.on_work_item_close matches no Buzzeasy event type documented or "
            "configured; did you mean on_work_item_closed?",
        ),
    ],
)
def test_where_event_types_are_configured_an_unknown_name_is_a_warning(
    base: type[Handler[Any]], name: str, configured: list[str], warning: str
) -> None:
    assert check_handler(subclass(base, **{name: _noop}), configured) == [warning]


@pytest.mark.parametrize(
    ("base", "name", "configured"),
    [
        (WebServicesHandler, "on_supervisor_review", ["Supervisor Review"]),
        (BuzzeasyHandler, "on_callback_requested", ["CallbackRequested"]),
    ],
)
def test_a_method_of_a_configured_event_type_passes(
    base: type[Handler[Any]], name: str, configured: list[str]
) -> None:
    handler = subclass(base, **{name: _noop})
    assert check_handler(handler, configured) == []
    assert check_handler(handler) != []


def test_every_plain_method_is_named_in_one_line() -> None:
    handler = subclass(EnreachHandler, on_queue_status=_plain, on_any=_plain)
    with pytest.raises(ConfigError) as refused:
        check_handler(handler)
    assert str(refused.value) == (
        "Bridge.on_any must be defined with async def (the dispatcher awaits it); "
        "Bridge.on_queue_status must be defined with async def (the dispatcher awaits it)"
    )


def test_callbacks_of_types_the_provider_does_not_know_are_a_warning() -> None:
    app = EnreachHandler()

    @app.on("QueueCallInUserConected")
    async def connected(event: EnreachEvent) -> None:
        """Never called: no such event type."""

    @app.on("QueueStatus")
    async def status(event: EnreachEvent) -> None:
        """A documented type."""

    assert check_handler(app) == [
        "EnreachHandler.on('QueueCallInUserConected') names no Enreach event type documented "
        "or configured; did you mean QueueCallInUserConnected?"
    ]


def test_a_plain_decorated_function_is_refused_where_it_is_decorated() -> None:
    app = WfmHandler()
    with pytest.raises(TypeError, match=r"^login handles AgentLogin: define it with async def$"):

        @app.on("AgentLogin")  # type: ignore[arg-type]  # the mistake under test
        def login(event: object) -> None:
            """Not async."""


def test_what_is_no_handler_is_refused() -> None:
    with pytest.raises(ConfigError, match="object is not a handler"):
        check_handler(object())

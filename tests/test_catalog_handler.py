"""`EnreachHandler`: typed methods, `on_any` as the fallback, subscription-style filters."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import orjson
import pytest

from handlers import EnreachHandler as ExportedHandler
from handlers.base import Handler
from handlers.enreach import (
    EnreachEvent,
    EnreachHandler,
    QueueCallInUserAllocated,
    QueueStatus,
    UserStatus,
)
from handlers.enreach.events import EVENT_CLASSES
from receiver.catalogs.samples import ENREACH_EVENT_TYPES, enreach_sample
from receiver.exceptions import DecodeError
from receiver.handling import EventHandler
from receiver.inbox.models import State, StoredEvent

_IDS = itertools.count(1)


def stored(payload: dict[str, Any] | bytes, event_type: str | None = None) -> StoredEvent:
    """An inbox record holding `payload` (as JSON) under `event_type` (default: its own)."""
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    if event_type is None:
        assert isinstance(payload, dict)
        event_type = payload["EventType"]
    return StoredEvent(
        id=next(_IDS),
        source="enreach",
        dedup_key=str(uuid.uuid4()),
        event_type=event_type,
        order_key=None,
        payload=body,
        state=State.PENDING,
        attempts=0,
        received_at=0.0,
        next_attempt_at=0.0,
        last_error=None,
        finished_at=None,
    )


class Recorder(EnreachHandler):
    """Remembers which method saw which event."""

    def __init__(self, **filters: Any) -> None:
        super().__init__(**filters)
        self.calls: list[tuple[str, EnreachEvent]] = []
        self.errors: list[tuple[EnreachEvent | None, BaseException]] = []

    async def on_queue_call_in_user_allocated(self, event: QueueCallInUserAllocated) -> None:
        self.calls.append(("on_queue_call_in_user_allocated", event))

    async def on_any(self, event: EnreachEvent) -> None:
        self.calls.append(("on_any", event))

    async def on_error(
        self, event: EnreachEvent | None, stored: StoredEvent, error: BaseException
    ) -> None:
        self.errors.append((event, error))


def handle(handler: EnreachHandler, record: StoredEvent) -> None:
    """Run `handler.handle` to completion."""
    asyncio.run(handler.handle(record))


def test_enreach_handler_is_an_event_handler() -> None:
    handler = EnreachHandler()
    assert isinstance(handler, Handler)
    assert isinstance(handler, EventHandler)
    assert handler.source_kind == "enreach"
    assert ExportedHandler is EnreachHandler


def test_overridden_method_receives_its_typed_event() -> None:
    handler = Recorder()
    handle(handler, stored(enreach_sample("QueueCallInUserAllocated", seed=1)))

    [(method, event)] = handler.calls
    assert method == "on_queue_call_in_user_allocated"
    assert isinstance(event, QueueCallInUserAllocated)


@pytest.mark.parametrize(
    "event_type", [t for t in ENREACH_EVENT_TYPES if t != "QueueCallInUserAllocated"]
)
def test_a_method_not_overridden_hands_the_event_to_on_any(event_type: str) -> None:
    handler = Recorder()
    handle(handler, stored(enreach_sample(event_type, seed=1)))

    [(method, event)] = handler.calls
    assert method == "on_any"
    assert event.event_type == event_type
    assert type(event).__name__ == event_type


@pytest.mark.parametrize("event_type", ENREACH_EVENT_TYPES)
def test_generated_method_bodies_pass_the_event_to_on_any(event_type: str) -> None:
    handler = Recorder()
    event = EVENT_CLASSES[event_type](event_type=event_type)
    method = getattr(EnreachHandler, handler.method_name(event_type))

    asyncio.run(method(handler, event))

    assert handler.calls == [("on_any", event)]


def test_undocumented_event_type_goes_to_on_any() -> None:
    payload = enreach_sample("QueueCallInArrived", seed=1)
    payload["EventType"] = "QueueCallInConnected"
    handler = Recorder()

    handle(handler, stored(payload))

    [(method, event)] = handler.calls
    assert method == "on_any"
    assert type(event) is EnreachEvent
    assert event.event_type == "QueueCallInConnected"


def test_method_names_come_from_the_catalog() -> None:
    handler = EnreachHandler()
    assert handler.method_name("UserWrapUpStarted") == "on_user_wrap_up_started"
    assert handler.method_name("QueueCallInUserAllocated") == "on_queue_call_in_user_allocated"
    unknown = handler.method_name("QueueCallInConnected")
    assert not hasattr(Recorder, unknown)
    assert not unknown.isidentifier()


def test_decorated_callbacks_still_take_precedence() -> None:
    handler = Recorder()
    seen: list[EnreachEvent] = []

    @handler.on("QueueStatus")
    async def status(event: EnreachEvent) -> None:
        seen.append(event)

    handle(handler, stored(enreach_sample("QueueStatus", seed=1)))
    assert [type(e) for e in seen] == [QueueStatus]
    assert handler.calls == []


# -- subscriptions ----------------------------------------------------------------------------


def delivered(handler: Recorder, *event_types: str, **overrides: Any) -> list[str]:
    """Which of one sample per event type reach any of the handler's methods."""
    for event_type in event_types:
        handle(handler, stored(enreach_sample(event_type, seed=1, overrides=overrides)))
    return [event.event_type for _, event in handler.calls]


def test_entity_type_filter_from_the_constructor() -> None:
    handler = Recorder(entity_types={"Queue"})
    got = delivered(
        handler, "QueueStatus", "UserStatus", "CallbackListStatus", "QueueAttachedUsers"
    )
    assert got == ["QueueStatus", "QueueAttachedUsers"]


def test_entity_type_filter_as_class_attribute_is_case_insensitive() -> None:
    class CallLists(Recorder):
        entity_types = frozenset({"calllist"})

    got = delivered(CallLists(), "QueueStatus", "CallbackChanged", "CallbackListStatus")
    assert got == ["CallbackChanged", "CallbackListStatus"]


def test_events_without_entity_type_do_not_pass_an_entity_type_filter() -> None:
    handler = Recorder(entity_types={"Queue"})
    payload = enreach_sample("QueueStatus", seed=1)
    del payload["EntityType"]
    handle(handler, stored(payload))
    assert handler.calls == []


def test_entity_id_filter_accepts_strings_and_uuids() -> None:
    wanted = enreach_sample("QueueStatus", seed=1)["EntityId"]
    for ids in ({wanted}, {uuid.UUID(wanted)}, [wanted.upper()]):
        handler = Recorder(entity_ids=ids)
        handle(handler, stored(enreach_sample("QueueStatus", seed=1)))
        handle(handler, stored(enreach_sample("QueueStatus", seed=2)))
        assert [e.entity_id for _, e in handler.calls] == [uuid.UUID(wanted)]


def test_entity_id_filter_as_class_attribute() -> None:
    user = uuid.uuid4()

    class OneUser(Recorder):
        entity_ids = frozenset({user})

    handler = OneUser()
    handle(handler, stored(enreach_sample("UserStatus", seed=1, overrides={"UserId": str(user)})))
    handle(handler, stored(enreach_sample("UserStatus", seed=2)))
    [(_, event)] = handler.calls
    assert isinstance(event, UserStatus)
    assert event.user_id == event.entity_id == user


def test_entity_type_and_id_filters_both_apply() -> None:
    queue = enreach_sample("QueueStatus", seed=1)["EntityId"]
    handler = Recorder(entity_types={"Queue"}, entity_ids={queue})

    handle(handler, stored(enreach_sample("QueueStatus", seed=1)))
    handle(handler, stored(enreach_sample("UserStatus", seed=1, overrides={"EntityId": queue})))
    handle(handler, stored(enreach_sample("QueueStatus", seed=2)))

    assert [e.event_type for _, e in handler.calls] == ["QueueStatus"]


def test_constructor_arguments_override_class_attributes() -> None:
    class Queues(Recorder):
        entity_types = frozenset({"Queue"})

    assert delivered(Queues(entity_types={"User"}), "QueueStatus", "UserStatus") == ["UserStatus"]


# -- decode failures ---------------------------------------------------------------------------


def test_a_body_that_is_not_json_is_a_decode_error_reported_to_on_error() -> None:
    handler = Recorder()
    with pytest.raises(DecodeError, match="not JSON"):
        handle(handler, stored(b"{not json", "QueueStatus"))
    [(event, error)] = handler.errors
    assert event is None
    assert isinstance(error, DecodeError)
    assert handler.calls == []


def test_a_wrong_type_is_a_decode_error_naming_event_and_property() -> None:
    payload = enreach_sample("QueueStatus", seed=1, overrides={"NbrOfRequesters": "many"})
    handler = Recorder()
    with pytest.raises(DecodeError) as caught:
        handle(handler, stored(payload))
    assert caught.value.event_id == payload["Id"]
    assert caught.value.field == "NbrOfRequesters"
    assert handler.errors[0][0] is None

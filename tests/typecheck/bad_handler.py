"""An Enreach handler with typing mistakes; each line marked `expect:` must be rejected by mypy.

tests/test_catalog_typecheck.py checks that mypy reports exactly these errors. pyproject.toml
excludes this folder from the normal mypy run.
"""

from __future__ import annotations

from handlers.enreach import EnreachHandler, QueueStatus, UserWrapUpStarted


class Mistaken(EnreachHandler):
    """Wrong property names and a wrong event class."""

    async def on_user_wrap_up_started(self, event: UserWrapUpStarted) -> None:
        """Wrap-up events carry no caller number."""
        print(event.caller_number)  # expect: attr-defined
        print(event.max_wrap_up_duration_sec)

    async def on_queue_status(self, event: QueueStatus) -> None:
        """The property is `nbr_of_queuing_requesters`."""
        print(event.nbr_of_queueing_requesters)  # expect: attr-defined
        print(event.queue_name)

    async def on_user_wrap_up_terminated(self, event: QueueStatus) -> None:  # expect: override
        """The method of one event type cannot take another's class."""
        print(event.queue_name)

"""A correctly typed Enreach handler; mypy must accept it (see tests/test_catalog_typecheck.py)."""

from __future__ import annotations

from handlers.enreach import (
    EnreachEvent,
    EnreachHandler,
    OpenStatus,
    QueueAttachedUsers,
    QueueCallInUserAllocated,
    QueueStatus,
    UserAvailability,
)


class Dashboard(EnreachHandler):
    """Uses properties of several event classes the way an integrator would."""

    entity_types = frozenset({"Queue"})

    async def on_queue_call_in_user_allocated(self, event: QueueCallInUserAllocated) -> None:
        """Greet the agent by name."""
        name: str = event.user_name or "agent"
        print(name.upper(), event.caller_number, event.queue_id)

    async def on_queue_status(self, event: QueueStatus) -> None:
        """Count waiting calls of open queues."""
        if event.open_status == OpenStatus.OPEN:
            waiting: int = event.nbr_of_queuing_requesters or 0
            print(waiting + 1)

    async def on_queue_attached_users(self, event: QueueAttachedUsers) -> None:
        """List the active users."""
        for user in event.attached_users or ():
            if user.active:
                print(user.user_id, user.priority)

    async def on_user_availability(self, event: UserAvailability) -> None:
        """Note states without an end."""
        print(event.is_continuous, event.end_time)

    async def on_any(self, event: EnreachEvent) -> None:
        """Everything else."""
        print(event.event_type, event.entity_id, event.extra)

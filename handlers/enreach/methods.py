"""One overridable method per Enreach event type.

Generated from the catalog by `python -m receiver.catalogs.codegen`; do not edit.
"""

from __future__ import annotations

from handlers.base import Handler
from handlers.enreach.events import (
    CallbackChanged,
    CallbackListStatus,
    EnreachEvent,
    QueueAttachedUsers,
    QueueCallInArrived,
    QueueCallInComing,
    QueueCallInDisconnected,
    QueueCallInOverflow,
    QueueCallInTransferCancelled,
    QueueCallInTransferConnected,
    QueueCallInTransferStarted,
    QueueCallInUserAllocated,
    QueueCallInUserCancelled,
    QueueCallInUserConnected,
    QueueStatus,
    UserAvailability,
    UserCallInArrived,
    UserCallInComing,
    UserCallInDisconnected,
    UserCallInOverflow,
    UserCallInTransferCancelled,
    UserCallInTransferConnected,
    UserCallInTransferStarted,
    UserCallInUserAllocated,
    UserCallInUserCancelled,
    UserCallInUserConnected,
    UserCallInUserOverflow,
    UserCallOutConnected,
    UserCallOutDisconnected,
    UserCallOutGoing,
    UserStatus,
    UserSupervisionStatus,
    UserWrapUpEnabled,
    UserWrapUpStarted,
    UserWrapUpTerminated,
)

__all__ = ["EnreachMethods"]


class EnreachMethods(Handler[EnreachEvent]):
    """The `on_<event type>` methods of `EnreachHandler`; each passes its event to `on_any`."""

    _provider_base = True

    async def on_user_availability(self, event: UserAvailability) -> None:
        """Handle `UserAvailability`: a user's availability state (Available, Busy, DoNotDisturb,
        OffWork) changed.
        """
        await self.on_any(event)

    async def on_user_call_in_arrived(self, event: UserCallInArrived) -> None:
        """Handle `UserCallInArrived`: an incoming call whose current target is a user entered
        allocation.
        """
        await self.on_any(event)

    async def on_user_call_in_coming(self, event: UserCallInComing) -> None:
        """Handle `UserCallInComing`: a direct incoming call to a user reached the call
        controller.
        """
        await self.on_any(event)

    async def on_user_call_in_disconnected(self, event: UserCallInDisconnected) -> None:
        """Handle `UserCallInDisconnected`: an incoming call to a user was disconnected."""
        await self.on_any(event)

    async def on_user_call_in_overflow(self, event: UserCallInOverflow) -> None:
        """Handle `UserCallInOverflow`: an incoming call whose current target is a user
        overflowed to the next routing target.
        """
        await self.on_any(event)

    async def on_user_call_in_transfer_cancelled(self, event: UserCallInTransferCancelled) -> None:
        """Handle `UserCallInTransferCancelled`: transferring an incoming call whose current
        target is a user was cancelled.
        """
        await self.on_any(event)

    async def on_user_call_in_transfer_connected(self, event: UserCallInTransferConnected) -> None:
        """Handle `UserCallInTransferConnected`: an incoming call whose current target is a user
        was transferred to an overflow target, and the transfer connected.
        """
        await self.on_any(event)

    async def on_user_call_in_transfer_started(self, event: UserCallInTransferStarted) -> None:
        """Handle `UserCallInTransferStarted`: transferring an incoming call whose current target
        is a user to an overflow target began.
        """
        await self.on_any(event)

    async def on_user_call_in_user_allocated(self, event: UserCallInUserAllocated) -> None:
        """Handle `UserCallInUserAllocated`: an incoming call whose current target is a user was
        allocated to that user.
        """
        await self.on_any(event)

    async def on_user_call_in_user_cancelled(self, event: UserCallInUserCancelled) -> None:
        """Handle `UserCallInUserCancelled`: allocating an incoming call to its target user was
        cancelled.
        """
        await self.on_any(event)

    async def on_user_call_in_user_connected(self, event: UserCallInUserConnected) -> None:
        """Handle `UserCallInUserConnected`: an incoming call allocated to its target user was
        connected.
        """
        await self.on_any(event)

    async def on_user_call_in_user_overflow(self, event: UserCallInUserOverflow) -> None:
        """Handle `UserCallInUserOverflow`: a call to a user's work number is overflowing to
        another destination.
        """
        await self.on_any(event)

    async def on_user_call_out_connected(self, event: UserCallOutConnected) -> None:
        """Handle `UserCallOutConnected`: a user's outgoing call was connected."""
        await self.on_any(event)

    async def on_user_call_out_disconnected(self, event: UserCallOutDisconnected) -> None:
        """Handle `UserCallOutDisconnected`: a user's outgoing call was disconnected."""
        await self.on_any(event)

    async def on_user_call_out_going(self, event: UserCallOutGoing) -> None:
        """Handle `UserCallOutGoing`: a user started a direct outgoing call."""
        await self.on_any(event)

    async def on_user_status(self, event: UserStatus) -> None:
        """Handle `UserStatus`: a user's serving status as the queues see it changed: talking,
        available, and whether calls can be allocated to them.
        """
        await self.on_any(event)

    async def on_user_supervision_status(self, event: UserSupervisionStatus) -> None:
        """Handle `UserSupervisionStatus`: a supervisor's status on a call changed."""
        await self.on_any(event)

    async def on_user_wrap_up_enabled(self, event: UserWrapUpEnabled) -> None:
        """Handle `UserWrapUpEnabled`: wrap-up time is enabled for a service call that just
        connected; UserWrapUpStarted and UserWrapUpTerminated follow.
        """
        await self.on_any(event)

    async def on_user_wrap_up_started(self, event: UserWrapUpStarted) -> None:
        """Handle `UserWrapUpStarted`: a call with wrap-up enabled ended and wrap-up time began;
        the user gets no calls until it ends.
        """
        await self.on_any(event)

    async def on_user_wrap_up_terminated(self, event: UserWrapUpTerminated) -> None:
        """Handle `UserWrapUpTerminated`: wrap-up time for a call ended, because the time ran out
        or on request.
        """
        await self.on_any(event)

    async def on_queue_attached_users(self, event: QueueAttachedUsers) -> None:
        """Handle `QueueAttachedUsers`: the users attached to a service queue, with their
        priority and whether they are active.
        """
        await self.on_any(event)

    async def on_queue_call_in_arrived(self, event: QueueCallInArrived) -> None:
        """Handle `QueueCallInArrived`: an incoming call was accepted into a service queue."""
        await self.on_any(event)

    async def on_queue_call_in_coming(self, event: QueueCallInComing) -> None:
        """Handle `QueueCallInComing`: a new incoming call to a service or technical queue
        reached the call controller.
        """
        await self.on_any(event)

    async def on_queue_call_in_disconnected(self, event: QueueCallInDisconnected) -> None:
        """Handle `QueueCallInDisconnected`: an incoming call whose current target is a queue was
        disconnected.
        """
        await self.on_any(event)

    async def on_queue_call_in_overflow(self, event: QueueCallInOverflow) -> None:
        """Handle `QueueCallInOverflow`: an incoming call whose current target is a queue
        overflowed to the next routing point.
        """
        await self.on_any(event)

    async def on_queue_call_in_transfer_cancelled(
        self, event: QueueCallInTransferCancelled
    ) -> None:
        """Handle `QueueCallInTransferCancelled`: transferring an incoming queue call onward was
        cancelled.
        """
        await self.on_any(event)

    async def on_queue_call_in_transfer_connected(
        self, event: QueueCallInTransferConnected
    ) -> None:
        """Handle `QueueCallInTransferConnected`: transferring an incoming queue call onward
        connected.
        """
        await self.on_any(event)

    async def on_queue_call_in_transfer_started(self, event: QueueCallInTransferStarted) -> None:
        """Handle `QueueCallInTransferStarted`: transferring an incoming queue call onward began."""
        await self.on_any(event)

    async def on_queue_call_in_user_allocated(self, event: QueueCallInUserAllocated) -> None:
        """Handle `QueueCallInUserAllocated`: an incoming queue call was allocated to an agent."""
        await self.on_any(event)

    async def on_queue_call_in_user_cancelled(self, event: QueueCallInUserCancelled) -> None:
        """Handle `QueueCallInUserCancelled`: allocating an incoming queue call to an agent was
        cancelled.
        """
        await self.on_any(event)

    async def on_queue_call_in_user_connected(self, event: QueueCallInUserConnected) -> None:
        """Handle `QueueCallInUserConnected`: an incoming queue call was answered by an agent."""
        await self.on_any(event)

    async def on_queue_status(self, event: QueueStatus) -> None:
        """Handle `QueueStatus`: counters describing a service queue right now: calls waiting,
        connected, agents free.
        """
        await self.on_any(event)

    async def on_callback_changed(self, event: CallbackChanged) -> None:
        """Handle `CallbackChanged`: a callback request was created, updated, closed or otherwise
        changed.
        """
        await self.on_any(event)

    async def on_callback_list_status(self, event: CallbackListStatus) -> None:
        """Handle `CallbackListStatus`: a call list's counters changed (checked every 15
        seconds): open, due and assigned requests, and agents serving the list.
        """
        await self.on_any(event)

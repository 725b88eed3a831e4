"""Typed Enreach events and the records nested in them.

Generated from the catalog by `python -m receiver.catalogs.codegen`; do not edit.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from handlers.enreach.enums import (
    Availability,
    CallbackType,
    EntityType,
    OpenStatus,
    RootEntityType,
)
from handlers.enreach.values import empty_mapping, is_continuous

__all__ = [
    "EVENT_CLASSES",
    "NESTED_CLASSES",
    "CallbackAttempt",
    "CallbackChanged",
    "CallbackExtra",
    "CallbackListStatus",
    "CallbackRelatedItem",
    "EnreachEvent",
    "QueueAttachedUser",
    "QueueAttachedUsers",
    "QueueCallInArrived",
    "QueueCallInComing",
    "QueueCallInDisconnected",
    "QueueCallInOverflow",
    "QueueCallInTransferCancelled",
    "QueueCallInTransferConnected",
    "QueueCallInTransferStarted",
    "QueueCallInUserAllocated",
    "QueueCallInUserCancelled",
    "QueueCallInUserConnected",
    "QueueStatus",
    "UserAvailability",
    "UserCallInArrived",
    "UserCallInComing",
    "UserCallInDisconnected",
    "UserCallInOverflow",
    "UserCallInTransferCancelled",
    "UserCallInTransferConnected",
    "UserCallInTransferStarted",
    "UserCallInUserAllocated",
    "UserCallInUserCancelled",
    "UserCallInUserConnected",
    "UserCallInUserOverflow",
    "UserCallOutConnected",
    "UserCallOutDisconnected",
    "UserCallOutGoing",
    "UserStatus",
    "UserSupervisionStatus",
    "UserWrapUpEnabled",
    "UserWrapUpStarted",
    "UserWrapUpTerminated",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueAttachedUser:
    """A user attached to a service queue."""

    active: bool | None = None
    """Whether the user is active in the queue. (`Active`: bool)"""
    priority: int | None = None
    """The user's priority in the queue. (`Priority`: int)"""
    user_id: uuid.UUID | None = None
    """Id of the attached user. (`UserId`: Guid)"""
    extra: Mapping[str, Any] = field(default_factory=empty_mapping, compare=False)
    """Properties the catalog does not know, by the name they came under."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackAttempt:
    """One attempt at handling a callback request."""

    callback_attempt_type_id: int | None = None
    """Result type of the attempt. (`CallbackAttemptTypeId`: int?)"""
    id: uuid.UUID | None = None
    """Id of the attempt. (`Id`: Guid)"""
    note: str | None = None
    """Note the user wrote about the attempt. (`Note`: string)"""
    timestamp: datetime | None = None
    """When the attempt was made. (`Timestamp`: DateTime?)"""
    user_id: uuid.UUID | None = None
    """User who made the attempt. (`UserId`: Guid?)"""
    extra: Mapping[str, Any] = field(default_factory=empty_mapping, compare=False)
    """Properties the catalog does not know, by the name they came under."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackExtra:
    """A named extra value attached to a callback request."""

    id: int | None = None
    """Numeric id of the field. (`Id`: int)"""
    name: str | None = None
    """Name of the field. (`Name`: string)"""
    value: str | None = None
    """Value of the field. (`Value`: string)"""
    extra: Mapping[str, Any] = field(default_factory=empty_mapping, compare=False)
    """Properties the catalog does not know, by the name they came under."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackRelatedItem:
    """Another callback request related to this one."""

    id: uuid.UUID | None = None
    """Id of the related request. (`Id`: Guid)"""
    is_closed: bool | None = None
    """Whether the related request is closed. (`IsClosed`: bool)"""
    list_id: uuid.UUID | None = None
    """Call list of the related request. (`ListId`: Guid?)"""
    status_id: int | None = None
    """Raw status id of the related request's last attempt. (`StatusId`: int?)"""
    extra: Mapping[str, Any] = field(default_factory=empty_mapping, compare=False)
    """Properties the catalog does not know, by the name they came under."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EnreachEvent:
    """Any Enreach event: the properties every type carries, and the payload as received."""

    id: uuid.UUID | None = None
    """Unique id of this event; repeated deliveries of one event carry the same id. (`Id`: Guid)"""
    timestamp: datetime | None = None
    """When the event happened, on the sender's clock (no time zone). (`Timestamp`: DateTime)"""
    root_entity_type: RootEntityType | None = None
    """Kind of top-level container the event belongs to (Organization). (`RootEntityType`:
    RootEntityType)
    """
    root_entity_id: uuid.UUID | None = None
    """Id of the root entity, i.e. the organization. (`RootEntityId`: Guid)"""
    entity_type: EntityType | None = None
    """Kind of entity the event is about: User, Queue or CallList. (`EntityType`: EntityType)"""
    entity_id: uuid.UUID | None = None
    """Id of the entity the event is about; subscriptions select on it. (`EntityId`: Guid)"""
    event_type: str
    """Name of the event type, such as QueueCallInArrived. (`EventType`: string)"""
    payload: Mapping[str, Any] = field(default_factory=empty_mapping, compare=False, repr=False)
    """The decoded JSON object, as sent."""
    raw: bytes = field(default=b"", compare=False, repr=False)
    """The request body, byte for byte."""
    extra: Mapping[str, Any] = field(default_factory=empty_mapping, compare=False)
    """Properties the catalog does not know, by the name they came under."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserAvailability(EnreachEvent):
    """A user's availability state (Available, Busy, DoNotDisturb, OffWork) changed."""

    event_type: str = "UserAvailability"
    availability: Availability | None = None
    """Availability state: Available, Busy, DoNotDisturb or OffWork. (`Availability`: string)"""
    end_time: datetime | None = None
    """When the state ends; DateTime.MaxValue when it has no planned end. (`EndTime`: DateTime)"""
    event_source: str | None = None
    """Where the availability change came from, as the sender records it. (`EventSource`: string)"""
    note: str | None = None
    """Free-text note the user wrote. (`Note`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    profile_id: uuid.UUID | None = None
    """Id of the availability profile. (`ProfileId`: Guid)"""
    start_time: datetime | None = None
    """When the state starts. (`StartTime`: DateTime)"""
    user_id: uuid.UUID | None = None
    """Id of the user the event concerns. (`UserId`: Guid)"""
    user_name: str | None = None
    """Login name of the user the event concerns. (`UserName`: string)"""

    @property
    def is_continuous(self) -> bool:
        """Whether the state has no end (`EndTime` is DateTime.MaxValue)."""
        return is_continuous(self.end_time)


@dataclass(frozen=True, slots=True, kw_only=True)
class UserCallInArrived(EnreachEvent):
    """An incoming call whose current target is a user entered allocation."""

    event_type: str = "UserCallInArrived"
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""
    user_id: uuid.UUID | None = None
    """Id of the user the event concerns. (`UserId`: Guid)"""
    user_name: str | None = None
    """Login name of the user the event concerns. (`UserName`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserCallInComing(EnreachEvent):
    """A direct incoming call to a user reached the call controller."""

    event_type: str = "UserCallInComing"
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""
    user_id: uuid.UUID | None = None
    """Id of the user the event concerns. (`UserId`: Guid)"""
    user_name: str | None = None
    """Login name of the user the event concerns. (`Username`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserCallInDisconnected(EnreachEvent):
    """An incoming call to a user was disconnected."""

    event_type: str = "UserCallInDisconnected"
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    reason: str | None = None
    """Why it happened; 'remote' or 'local' for disconnects and cancellations. (`Reason`: string)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""
    tech_reason: str | None = None
    """Technical cause, such as a SIP cause code or busy_on_busy. (`TechReason`: string)"""
    user_id: uuid.UUID | None = None
    """Id of the user the event concerns. (`UserId`: Guid)"""
    user_name: str | None = None
    """Login name of the user the event concerns. (`Username`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserCallInOverflow(EnreachEvent):
    """An incoming call whose current target is a user overflowed to the next routing target."""

    event_type: str = "UserCallInOverflow"
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    connected_target: str | None = None
    """Target that was connected: a user id or a phone number. (`ConnectedTarget`: string)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    overflow_applet: str | None = None
    """Name of the routing applet that overflowed the call. (`OverflowApplet`: string)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""
    tech_event: str | None = None
    """Technical event name. (`TechEvent`: string)"""
    tech_number: str | None = None
    """Technical source number, if any. (`TechNumber`: string)"""
    tech_queue_id: uuid.UUID | None = None
    """Id of the technical queue holding the call; may differ from the service queue.
    (`TechQueueId`: Guid)
    """
    tech_queue_name: str | None = None
    """Name of the technical queue holding the call. (`TechQueueName`: string)"""
    tech_source: str | None = None
    """Source type of the overflow. (`TechSource`: string)"""
    user_id: uuid.UUID | None = None
    """Id of the user the event concerns. (`UserId`: Guid)"""
    user_name: str | None = None
    """Login name of the user the event concerns. (`Username`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserCallInTransferCancelled(EnreachEvent):
    """Transferring an incoming call whose current target is a user was cancelled."""

    event_type: str = "UserCallInTransferCancelled"
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    detailed_reason: str | None = None
    """More specific reason, when the sender knows one. (`DetailedReason`: string)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    reason: str | None = None
    """Why it happened; 'remote' or 'local' for disconnects and cancellations. (`Reason`: string)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""
    tech_queue_id: uuid.UUID | None = None
    """Id of the technical queue holding the call; may differ from the service queue.
    (`TechQueueId`: Guid)
    """
    tech_queue_name: str | None = None
    """Name of the technical queue holding the call. (`TechQueueName`: string)"""
    tech_source: str | None = None
    """Technical source type. (`TechSource`: string)"""
    transfer_applet: str | None = None
    """Name of the routing applet doing the transfer. (`TransferApplet`: string)"""
    user_id: uuid.UUID | None = None
    """Id of the user the event concerns. (`UserId`: Guid)"""
    user_name: str | None = None
    """Login name of the user the event concerns. (`Username`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserCallInTransferConnected(EnreachEvent):
    """An incoming call whose current target is a user was transferred to an overflow target, and
    the transfer connected.
    """

    event_type: str = "UserCallInTransferConnected"
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    connected_target: str | None = None
    """Target that was connected: a user id or a phone number. (`ConnectedTarget`: string)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""
    tech_queue_id: uuid.UUID | None = None
    """Id of the technical queue holding the call; may differ from the service queue.
    (`TechQueueId`: Guid)
    """
    tech_queue_name: str | None = None
    """Name of the technical queue holding the call. (`TechQueueName`: string)"""
    tech_source: str | None = None
    """Technical source type. (`TechSource`: string)"""
    transfer_applet: str | None = None
    """Name of the routing applet doing the transfer. (`TransferApplet`: string)"""
    transfer_source: str | None = None
    """Where the transfer started from. (`TransferSource`: string)"""
    user_id: uuid.UUID | None = None
    """Id of the user the event concerns. (`UserId`: Guid)"""
    user_name: str | None = None
    """Login name of the user the event concerns. (`Username`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserCallInTransferStarted(EnreachEvent):
    """Transferring an incoming call whose current target is a user to an overflow target began."""

    event_type: str = "UserCallInTransferStarted"
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""
    tech_queue_id: uuid.UUID | None = None
    """Id of the technical queue holding the call; may differ from the service queue.
    (`TechQueueId`: Guid)
    """
    tech_queue_name: str | None = None
    """Name of the technical queue holding the call. (`TechQueueName`: string)"""
    tech_source: str | None = None
    """Technical source type. (`TechSource`: string)"""
    transfer_applet: str | None = None
    """Name of the routing applet doing the transfer. (`TransferApplet`: string)"""
    transfer_source: str | None = None
    """Where the transfer started from. (`TransferSource`: string)"""
    transfer_target: str | None = None
    """Where the call is transferred: a user id or a phone number. (`TransferTarget`: string)"""
    user_id: uuid.UUID | None = None
    """Id of the user the event concerns. (`UserId`: Guid)"""
    user_name: str | None = None
    """Login name of the user the event concerns. (`Username`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserCallInUserAllocated(EnreachEvent):
    """An incoming call whose current target is a user was allocated to that user."""

    event_type: str = "UserCallInUserAllocated"
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    detailed_reason: str | None = None
    """More specific reason, when the sender knows one. (`DetailedReason`: string)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""
    user_id: uuid.UUID | None = None
    """Id of the user the event concerns. (`UserId`: Guid)"""
    user_name: str | None = None
    """Login name of the user the event concerns. (`UserName`: string)"""
    user_number: str | None = None
    """Phone number of the user the call went to. (`UserNumber`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserCallInUserCancelled(EnreachEvent):
    """Allocating an incoming call to its target user was cancelled."""

    event_type: str = "UserCallInUserCancelled"
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    detailed_reason: str | None = None
    """More specific reason, when the sender knows one. (`DetailedReason`: string)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    reason: str | None = None
    """Why it happened; 'remote' or 'local' for disconnects and cancellations. (`Reason`: string)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""
    user_id: uuid.UUID | None = None
    """Id of the user the event concerns. (`UserId`: Guid)"""
    user_name: str | None = None
    """Login name of the user the event concerns. (`UserName`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserCallInUserConnected(EnreachEvent):
    """An incoming call allocated to its target user was connected."""

    event_type: str = "UserCallInUserConnected"
    agent_leg_id: str | None = None
    """Id of the call leg forked towards the agent. (`AgentLegId`: string)"""
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""
    user_id: uuid.UUID | None = None
    """Id of the user the event concerns. (`UserId`: Guid)"""
    user_name: str | None = None
    """Login name of the user the event concerns. (`UserName`: string)"""
    user_number: str | None = None
    """Phone number of the user the call went to. (`UserNumber`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserCallInUserOverflow(EnreachEvent):
    """A call to a user's work number is overflowing to another destination."""

    event_type: str = "UserCallInUserOverflow"
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    reason: str | None = None
    """Why the call overflows: AVAActiveProfile, BusyForTechnicalError, DND, OffWork, NoAnswer,
    InterruptOverflow, BusyOnBusy, TransferAll or BlindTransfer. (`Reason`: string)
    """
    target: str | None = None
    """Where the call goes next: a user id, a phone number, or a list of targets. (`Target`:
    string)
    """
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""
    user_id: uuid.UUID | None = None
    """Id of the user the event concerns. (`UserId`: Guid)"""
    user_name: str | None = None
    """Login name of the user the event concerns. (`Username`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserCallOutConnected(EnreachEvent):
    """A user's outgoing call was connected."""

    event_type: str = "UserCallOutConnected"
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""
    user_id: uuid.UUID | None = None
    """Id of the user the event concerns. (`UserId`: Guid)"""
    user_name: str | None = None
    """Login name of the user the event concerns. (`UserName`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserCallOutDisconnected(EnreachEvent):
    """A user's outgoing call was disconnected."""

    event_type: str = "UserCallOutDisconnected"
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    reason: str | None = None
    """Why it happened; 'remote' or 'local' for disconnects and cancellations. (`Reason`: string)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""
    tech_reason: str | None = None
    """Technical cause, such as a SIP cause code or busy_on_busy. (`TechReason`: string)"""
    user_id: uuid.UUID | None = None
    """Id of the user the event concerns. (`UserId`: Guid)"""
    user_name: str | None = None
    """Login name of the user the event concerns. (`UserName`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserCallOutGoing(EnreachEvent):
    """A user started a direct outgoing call."""

    event_type: str = "UserCallOutGoing"
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""
    user_id: uuid.UUID | None = None
    """Id of the user the event concerns. (`UserId`: Guid)"""
    user_name: str | None = None
    """Login name of the user the event concerns. (`UserName`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserStatus(EnreachEvent):
    """A user's serving status as the queues see it changed: talking, available, and whether
    calls can be allocated to them.
    """

    event_type: str = "UserStatus"
    active_queue_id: uuid.UUID | None = None
    """Queue the user is presumably talking in right now, if any. (`ActiveQueueId`: Guid?)"""
    active_queues: int | None = None
    """Number of queues the user is active in. (`ActiveQueues`: int)"""
    available: bool | None = None
    """True when the availability state is Available (typically: not DoNotDisturb). (`Available`:
    bool)
    """
    can_be_allocated_to: bool | None = None
    """Best estimate, combined from several statuses, of whether a call can go to the user now.
    (`CanBeAllocatedTo`: bool)
    """
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    parked_calls: int | None = None
    """Number of calls the user has parked. (`ParkedCalls`: int)"""
    schedule: bool | None = None
    """True unless the availability state is OffWork. (`Schedule`: bool)"""
    service_terminals: int | None = None
    """Number of terminals the user has active. (`ServiceTerminals`: int)"""
    serving: bool | None = None
    """True when the user is serving in queues. (`Serving`: bool)"""
    serving_callback: bool | None = None
    """True when the user is serving in call lists. (`ServingCallback`: bool)"""
    talking: bool | None = None
    """True while the user has a call, incoming or outgoing, even before it connects. (`Talking`:
    bool)
    """
    user_id: uuid.UUID | None = None
    """Id of the user the event concerns. (`UserId`: Guid)"""
    wrap_up_end: datetime | None = None
    """When the running wrap-up time ends; null when none is running. (`WrapUpEnd`: DateTime?)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserSupervisionStatus(EnreachEvent):
    """A supervisor's status on a call changed."""

    event_type: str = "UserSupervisionStatus"
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    queue_id: uuid.UUID | None = None
    """Id of the service queue. (`QueueId`: Guid?)"""
    queue_name: str | None = None
    """Name of the service queue. (`QueueName`: string)"""
    state: str | None = None
    """Supervision state of the call; the provider does not publish its values. (`State`:
    SupervisionState)
    """
    supervisor_leg_id: str | None = None
    """Id of the supervisor's own call leg, when there is one. (`SupervisorLegId`: string)"""
    supervisor_user_id: uuid.UUID | None = None
    """Id of the supervising user. (`SupervisorUserId`: Guid)"""
    supervisor_user_name: str | None = None
    """Login name of the supervising user. (`SupervisorUserName`: string)"""
    target_user_id: uuid.UUID | None = None
    """Id of the supervised user. (`TargetUserId`: Guid)"""
    target_user_name: str | None = None
    """Login name of the supervised user. (`TargetUserName`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserWrapUpEnabled(EnreachEvent):
    """Wrap-up time is enabled for a service call that just connected; UserWrapUpStarted and
    UserWrapUpTerminated follow.
    """

    event_type: str = "UserWrapUpEnabled"
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    max_wrap_up_duration_sec: int | None = None
    """Longest wrap-up allowed, in seconds. (`MaxWrapUpDurationSec`: int)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    queue_id: uuid.UUID | None = None
    """Id of the service queue. (`QueueId`: Guid)"""
    user_id: uuid.UUID | None = None
    """Id of the user the event concerns. (`UserId`: Guid)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserWrapUpStarted(EnreachEvent):
    """A call with wrap-up enabled ended and wrap-up time began; the user gets no calls until it
    ends.
    """

    event_type: str = "UserWrapUpStarted"
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    max_wrap_up_duration_sec: int | None = None
    """Longest wrap-up allowed, in seconds. (`MaxWrapUpDurationSec`: int)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    queue_id: uuid.UUID | None = None
    """Id of the service queue. (`QueueId`: Guid)"""
    user_id: uuid.UUID | None = None
    """Id of the user the event concerns. (`UserId`: Guid)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserWrapUpTerminated(EnreachEvent):
    """Wrap-up time for a call ended, because the time ran out or on request."""

    event_type: str = "UserWrapUpTerminated"
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    elapsed_time_sec: int | None = None
    """How long wrap-up lasted, in seconds. (`ElapsedTimeSec`: int)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    queue_id: uuid.UUID | None = None
    """Id of the service queue. (`QueueId`: Guid)"""
    reason: str | None = None
    """Why wrap-up ended, such as 'manual' or 'timer'. (`Reason`: string)"""
    user_id: uuid.UUID | None = None
    """Id of the user the event concerns. (`UserId`: Guid)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueAttachedUsers(EnreachEvent):
    """The users attached to a service queue, with their priority and whether they are active."""

    event_type: str = "QueueAttachedUsers"
    attached_users: tuple[QueueAttachedUser, ...] | None = None
    """Users attached to the queue. (`AttachedUsers`: List<QueueAttachedUser>)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    queue_id: uuid.UUID | None = None
    """Id of the service queue. (`QueueId`: Guid)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallInArrived(EnreachEvent):
    """An incoming call was accepted into a service queue."""

    event_type: str = "QueueCallInArrived"
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    queue_id: uuid.UUID | None = None
    """Id of the service queue. (`QueueId`: Guid)"""
    queue_name: str | None = None
    """Name of the service queue. (`QueueName`: string)"""
    queue_number: str | None = None
    """Phone number of the service queue. (`QueueNumber`: string)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallInComing(EnreachEvent):
    """A new incoming call to a service or technical queue reached the call controller."""

    event_type: str = "QueueCallInComing"
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    queue_id: uuid.UUID | None = None
    """Id of the service queue. (`QueueId`: Guid)"""
    queue_name: str | None = None
    """Name of the service queue. (`QueueName`: string)"""
    queue_number: str | None = None
    """Phone number of the service queue. (`QueueNumber`: string)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallInDisconnected(EnreachEvent):
    """An incoming call whose current target is a queue was disconnected."""

    event_type: str = "QueueCallInDisconnected"
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    queue_id: uuid.UUID | None = None
    """Id of the service queue. (`QueueId`: Guid)"""
    queue_name: str | None = None
    """Name of the service queue. (`QueueName`: string)"""
    reason: str | None = None
    """Why it happened; 'remote' or 'local' for disconnects and cancellations. (`Reason`: string)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""
    tech_reason: str | None = None
    """Technical cause, such as a SIP cause code or busy_on_busy. (`TechReason`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallInOverflow(EnreachEvent):
    """An incoming call whose current target is a queue overflowed to the next routing point."""

    event_type: str = "QueueCallInOverflow"
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    overflow_applet: str | None = None
    """Name of the routing applet that overflowed the call. (`OverflowApplet`: string)"""
    queue_id: uuid.UUID | None = None
    """Id of the service queue. (`QueueId`: Guid)"""
    queue_name: str | None = None
    """Name of the service queue. (`QueueName`: string)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""
    tech_event: str | None = None
    """Technical event name. (`TechEvent`: string)"""
    tech_number: str | None = None
    """Technical source number, if any. (`TechNumber`: string)"""
    tech_queue_id: uuid.UUID | None = None
    """Id of the technical queue holding the call; may differ from the service queue.
    (`TechQueueId`: Guid)
    """
    tech_queue_name: str | None = None
    """Name of the technical queue holding the call. (`TechQueueName`: string)"""
    tech_source: str | None = None
    """Technical source type. (`TechSource`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallInTransferCancelled(EnreachEvent):
    """Transferring an incoming queue call onward was cancelled."""

    event_type: str = "QueueCallInTransferCancelled"
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    detailed_reason: str | None = None
    """More specific reason, when the sender knows one. (`DetailedReason`: string)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    queue_id: uuid.UUID | None = None
    """Id of the service queue. (`QueueId`: Guid)"""
    queue_name: str | None = None
    """Name of the service queue. (`QueueName`: string)"""
    reason: str | None = None
    """Why it happened; 'remote' or 'local' for disconnects and cancellations. (`Reason`: string)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""
    tech_queue_id: uuid.UUID | None = None
    """Id of the technical queue holding the call; may differ from the service queue.
    (`TechQueueId`: Guid)
    """
    tech_queue_name: str | None = None
    """Name of the technical queue holding the call. (`TechQueueName`: string)"""
    tech_source: str | None = None
    """Technical source type. (`TechSource`: string)"""
    transfer_applet: str | None = None
    """Name of the routing applet doing the transfer. (`TransferApplet`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallInTransferConnected(EnreachEvent):
    """Transferring an incoming queue call onward connected."""

    event_type: str = "QueueCallInTransferConnected"
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    connected_target: str | None = None
    """Target that was connected: a user id or a phone number. (`ConnectedTarget`: string)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    queue_id: uuid.UUID | None = None
    """Id of the service queue. (`QueueId`: Guid)"""
    queue_name: str | None = None
    """Name of the service queue. (`QueueName`: string)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""
    tech_queue_id: uuid.UUID | None = None
    """Id of the technical queue holding the call; may differ from the service queue.
    (`TechQueueId`: Guid)
    """
    tech_queue_name: str | None = None
    """Name of the technical queue holding the call. (`TechQueueName`: string)"""
    tech_source: str | None = None
    """Technical source type. (`TechSource`: string)"""
    transfer_applet: str | None = None
    """Name of the routing applet doing the transfer. (`TransferApplet`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallInTransferStarted(EnreachEvent):
    """Transferring an incoming queue call onward began."""

    event_type: str = "QueueCallInTransferStarted"
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    queue_id: uuid.UUID | None = None
    """Id of the service queue. (`QueueId`: Guid)"""
    queue_name: str | None = None
    """Name of the service queue. (`QueueName`: string)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""
    tech_queue_id: uuid.UUID | None = None
    """Id of the technical queue holding the call; may differ from the service queue.
    (`TechQueueId`: Guid)
    """
    tech_queue_name: str | None = None
    """Name of the technical queue holding the call. (`TechQueueName`: string)"""
    tech_type: str | None = None
    """Technical source type. (`TechType`: string)"""
    transfer_applet: str | None = None
    """Name of the routing applet doing the transfer. (`TransferApplet`: string)"""
    transfer_source: str | None = None
    """Where the transfer started from. (`TransferSource`: string)"""
    transfer_target: str | None = None
    """Where the call is transferred: a user id or a phone number. (`TransferTarget`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallInUserAllocated(EnreachEvent):
    """An incoming queue call was allocated to an agent."""

    event_type: str = "QueueCallInUserAllocated"
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    detailed_reason: str | None = None
    """More specific reason, when the sender knows one. (`DetailedReason`: string)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    queue_id: uuid.UUID | None = None
    """Id of the service queue. (`QueueId`: Guid)"""
    queue_name: str | None = None
    """Name of the service queue. (`QueueName`: string)"""
    queue_number: str | None = None
    """Phone number of the service queue. (`QueueNumber`: string)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""
    user_id: uuid.UUID | None = None
    """Id of the user the event concerns. (`UserId`: Guid)"""
    user_name: str | None = None
    """Login name of the user the event concerns. (`UserName`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallInUserCancelled(EnreachEvent):
    """Allocating an incoming queue call to an agent was cancelled."""

    event_type: str = "QueueCallInUserCancelled"
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    detailed_reason: str | None = None
    """More specific reason, when the sender knows one. (`DetailedReason`: string)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    queue_id: uuid.UUID | None = None
    """Id of the service queue. (`QueueId`: Guid)"""
    queue_name: str | None = None
    """Name of the service queue. (`QueueName`: string)"""
    queue_number: str | None = None
    """Phone number of the service queue. (`QueueNumber`: string)"""
    reason: str | None = None
    """Why it happened; 'remote' or 'local' for disconnects and cancellations. (`Reason`: string)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""
    user_id: uuid.UUID | None = None
    """Id of the user the event concerns. (`UserId`: Guid)"""
    user_name: str | None = None
    """Login name of the user the event concerns. (`UserName`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCallInUserConnected(EnreachEvent):
    """An incoming queue call was answered by an agent."""

    event_type: str = "QueueCallInUserConnected"
    agent_leg_id: str | None = None
    """Id of the call leg forked towards the agent. (`AgentLegId`: string)"""
    caller_number: str | None = None
    """Number the call came from. (`CallerNumber`: string)"""
    call_id: uuid.UUID | None = None
    """Id of the call in the core system. (`CallId`: Guid)"""
    leg_id: str | None = None
    """Id of the call leg in the core system. (`LegId`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    queue_id: uuid.UUID | None = None
    """Id of the service queue. (`QueueId`: Guid)"""
    queue_name: str | None = None
    """Name of the service queue. (`QueueName`: string)"""
    queue_number: str | None = None
    """Phone number of the service queue. (`QueueNumber`: string)"""
    target_number: str | None = None
    """Number the caller dialled. (`TargetNumber`: string)"""
    user_id: uuid.UUID | None = None
    """Id of the user the event concerns. (`UserId`: Guid)"""
    user_name: str | None = None
    """Login name of the user the event concerns. (`UserName`: string)"""
    user_number: str | None = None
    """Phone number of the user the call went to. (`UserNumber`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueStatus(EnreachEvent):
    """Counters describing a service queue right now: calls waiting, connected, agents free."""

    event_type: str = "QueueStatus"
    max_wait_time: int | None = None
    """Longest current wait among calls in the queue. (`MaxWaitTime`: long)"""
    nbr_of_agents_checked_in_queue: int | None = None
    """Agents attached to the queue, away or not. (`NbrOfAgentsCheckedInQueue`: int)"""
    nbr_of_agents_immediately_free: int | None = None
    """Agents free to take a call right now. (`NbrOfAgentsImmediatelyFree`: int)"""
    nbr_of_agents_long_term_away: int | None = None
    """Agents unavailable for a longer time (for example DoNotDisturb).
    (`NbrOfAgentsLongTermAway`: int)
    """
    nbr_of_agents_on_wrap_up: int | None = None
    """Agents in wrap-up time. (`NbrOfAgentsOnWrapUp`: int)"""
    nbr_of_agents_short_term_away: int | None = None
    """Agents briefly unavailable (for example already on a call). (`NbrOfAgentsShortTermAway`:
    int)
    """
    nbr_of_allocated: int | None = None
    """Calls in the queue allocated to an agent. (`NbrOfAllocated`: int)"""
    nbr_of_connected: int | None = None
    """Calls in the queue connected to an agent. (`NbrOfConnected`: int)"""
    nbr_of_not_served_requesters: int | None = None
    """Calls in the queue that no agent is serving right now. (`NbrOfNotServedRequesters`: int)"""
    nbr_of_providers: int | None = None
    """Agents (providers) in the queue. (`NbrOfProviders`: int)"""
    nbr_of_queuing_requesters: int | None = None
    """Calls waiting in the queue. (`NbrOfQueuingRequesters`: int)"""
    nbr_of_requesters: int | None = None
    """Calls (requesters) in the queue in total. (`NbrOfRequesters`: int)"""
    nbr_of_serving_agents_estimate: int | None = None
    """Estimated number of agents serving the queue. (`NbrOfServingAgentsEstimate`: int)"""
    open_status: OpenStatus | None = None
    """Estimate of whether the queue is open; see OpenStatus. (`OpenStatus`: int)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    queue_id: uuid.UUID | None = None
    """Id of the service queue. (`QueueId`: Guid)"""
    queue_name: str | None = None
    """Name of the service queue. (`QueueName`: string)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackChanged(EnreachEvent):
    """A callback request was created, updated, closed or otherwise changed."""

    event_type: str = "CallbackChanged"
    assigned_user_id: uuid.UUID | None = None
    """User the request is assigned to, if any. (`AssignedUserId`: Guid?)"""
    calculated_priority: str | None = None
    """Priority the sender computed for the request. (`CalculatedPriority`: string)"""
    callback_attempts: tuple[CallbackAttempt, ...] | None = None
    """Every handling attempt so far. (`CallbackAttempts`: List<CallbackAttempt>)"""
    callback_extras: tuple[CallbackExtra, ...] | None = None
    """Extra named values attached to the request. (`CallbackExtras`: List<CallbackExtra>)"""
    callback_id: uuid.UUID | None = None
    """Id of the callback request. (`CallBackId`: Guid)"""
    callback_related_items: tuple[CallbackRelatedItem, ...] | None = None
    """Other requests related to this one. (`CallbackRelatedItems`: List<CallbackRelatedItem>)"""
    call_id: uuid.UUID | None = None
    """Id of the call that led to the request, if any. (`CallId`: Guid?)"""
    call_list_id: uuid.UUID | None = None
    """Id of the call list. (`CallListId`: Guid)"""
    channel_in: str | None = None
    """Channel the request came in through, usually a service queue. (`ChannelIn`: string)"""
    classification_id: uuid.UUID | None = None
    """Classification entry of the request, once classified. (`ClassificationId`: Guid?)"""
    contact_message: str | None = None
    """Message the contact left; usually empty. (`ContactMessage`: string)"""
    contact_name: str | None = None
    """Name of the contact; usually empty. (`ContactName`: string)"""
    contact_number: str | None = None
    """Number to call back. (`ContactNumber`: string)"""
    creation_time: datetime | None = None
    """When the request was created. (`CreationTime`: DateTime)"""
    due_date: datetime | None = None
    """When the request should be handled by. (`DueDate`: DateTime?)"""
    expiry_date: datetime | None = None
    """When the request expires unless closed first. (`ExpiryDate`: DateTime?)"""
    last_attempt_note: str | None = None
    """Note on the latest attempt. (`LastAttemptNote`: string)"""
    last_attempt_timestamp: datetime | None = None
    """When the latest attempt was made. (`LastAttemptTimestamp`: DateTime?)"""
    last_attempt_type_id: int | None = None
    """Result type of the latest attempt. (`LastAttemptTypeId`: int?)"""
    last_attempt_user_id: uuid.UUID | None = None
    """User who made the latest attempt. (`LastAttemptUserId`: Guid?)"""
    last_modified_user_id: uuid.UUID | None = None
    """Last user to change the request; null when new or changed by an admin.
    (`LastModifiedUserId`: Guid?)
    """
    modified: datetime | None = None
    """When the request last changed. (`Modified`: DateTime)"""
    not_before: datetime | None = None
    """The request should not be handled before this time. (`NotBefore`: DateTime?)"""
    note: str | None = None
    """Internal notes on the request. (`Note`: string)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    recording_id: uuid.UUID | None = None
    """Audio recording belonging to the request, if any. (`RecordingId`: Guid?)"""
    transcript_id: uuid.UUID | None = None
    """Transcript made from the recording, if any. (`TranscriptId`: Guid?)"""
    type_id: CallbackType | None = None
    """How the request came about; see CallbackType. (`TypeId`: short)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackListStatus(EnreachEvent):
    """A call list's counters changed (checked every 15 seconds): open, due and assigned
    requests, and agents serving the list.
    """

    event_type: str = "CallbackListStatus"
    call_list_id: uuid.UUID | None = None
    """Id of the call list. (`CallListId`: Guid)"""
    expires_in_24h: int | None = None
    """Requests that expire today. (`ExpiresIn24h`: int)"""
    is_auto_allocate: bool | None = None
    """Whether the list hands requests to agents automatically. (`IsAutoAllocate`: bool)"""
    next_hour_over_due_date: int | None = None
    """Requests that pass their due date within the next hour. (`NextHourOverDueDate`: int)"""
    next_hour_revealed_not_before: int | None = None
    """Requests that become allocable within the next hour. (`NextHourRevealedNotBefore`: int)"""
    organization_id: uuid.UUID | None = None
    """Id of the organization (tenant). (`OrganizationId`: Guid)"""
    total_active_agents: int | None = None
    """Agents marked active in the list, serving or not. (`TotalActiveAgents`: int)"""
    total_assigned: int | None = None
    """Requests assigned to an agent. (`TotalAssigned`: int)"""
    total_auto_allocate_agents: int | None = None
    """Agents both active in the list and serving call lists. (`TotalAutoAllocateAgents`: int)"""
    total_free_for_allocation: int | None = None
    """Requests that can be allocated now. (`TotalFreeForAllocation`: int)"""
    total_hiding_not_before: int | None = None
    """Requests held back because their NotBefore time has not come. (`TotalHidingNotBefore`:
    int)
    """
    total_open_requests: int | None = None
    """Open, unhandled requests. (`TotalOpenRequests`: int)"""
    total_over_due_date: int | None = None
    """Requests already past their due date. (`TotalOverDueDate`: int)"""
    total_serving_agents: int | None = None
    """Agents serving call lists. (`TotalServingAgents`: int)"""
    total_serving_auto_allocate_agents: int | None = None
    """Agents that can be handed a request automatically right now (active, serving, and the list
    auto-allocates). (`TotalServingAutoAllocateAgents`: int)
    """


EVENT_CLASSES: Mapping[str, type[EnreachEvent]] = {
    "UserAvailability": UserAvailability,
    "UserCallInArrived": UserCallInArrived,
    "UserCallInComing": UserCallInComing,
    "UserCallInDisconnected": UserCallInDisconnected,
    "UserCallInOverflow": UserCallInOverflow,
    "UserCallInTransferCancelled": UserCallInTransferCancelled,
    "UserCallInTransferConnected": UserCallInTransferConnected,
    "UserCallInTransferStarted": UserCallInTransferStarted,
    "UserCallInUserAllocated": UserCallInUserAllocated,
    "UserCallInUserCancelled": UserCallInUserCancelled,
    "UserCallInUserConnected": UserCallInUserConnected,
    "UserCallInUserOverflow": UserCallInUserOverflow,
    "UserCallOutConnected": UserCallOutConnected,
    "UserCallOutDisconnected": UserCallOutDisconnected,
    "UserCallOutGoing": UserCallOutGoing,
    "UserStatus": UserStatus,
    "UserSupervisionStatus": UserSupervisionStatus,
    "UserWrapUpEnabled": UserWrapUpEnabled,
    "UserWrapUpStarted": UserWrapUpStarted,
    "UserWrapUpTerminated": UserWrapUpTerminated,
    "QueueAttachedUsers": QueueAttachedUsers,
    "QueueCallInArrived": QueueCallInArrived,
    "QueueCallInComing": QueueCallInComing,
    "QueueCallInDisconnected": QueueCallInDisconnected,
    "QueueCallInOverflow": QueueCallInOverflow,
    "QueueCallInTransferCancelled": QueueCallInTransferCancelled,
    "QueueCallInTransferConnected": QueueCallInTransferConnected,
    "QueueCallInTransferStarted": QueueCallInTransferStarted,
    "QueueCallInUserAllocated": QueueCallInUserAllocated,
    "QueueCallInUserCancelled": QueueCallInUserCancelled,
    "QueueCallInUserConnected": QueueCallInUserConnected,
    "QueueStatus": QueueStatus,
    "CallbackChanged": CallbackChanged,
    "CallbackListStatus": CallbackListStatus,
}
"""The class of each documented event type, by `EventType`."""

NESTED_CLASSES: Mapping[str, type[Any]] = {
    "QueueAttachedUser": QueueAttachedUser,
    "CallbackAttempt": CallbackAttempt,
    "CallbackExtra": CallbackExtra,
    "CallbackRelatedItem": CallbackRelatedItem,
}
"""The class of each nested type, by the catalog's name."""

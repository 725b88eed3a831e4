"""The Enreach (formerly Benemen) webhook catalog, transcribed from the provider's tables.

This module is the one place an Enreach event type is described. Event classes, handler
methods, JSON Schemas and sample payloads are all made from it; after adding or changing an
entry run `python -m receiver.catalogs.codegen` to regenerate `handlers/enreach/`.

Property names and type strings are kept exactly as the provider's tables write them (only
`String` is normalised to `string`). The tables are not consistent in casing: some write
`UserName`, others `Username`, and real payloads may differ from their own table. Payloads are
therefore matched case-insensitively, and each concept has one Python attribute:
`Username`/`UserName` → `user_name`, `CallBackId` → `callback_id` (its siblings are spelt
`Callback...`), `ExpiresIn24h` → `expires_in_24h`. Every other attribute is the snake_case
of the table's name.
"""

from __future__ import annotations

from receiver.catalogs.model import Enumeration, Event, Member, NestedType, Property, snake_case

__all__ = [
    "COMMON_PROPERTIES",
    "ENTITY_KEYS",
    "ENTITY_KEY_EXCEPTIONS",
    "ENUMERATIONS",
    "EVENTS",
    "EVENT_TYPES",
    "NESTED_TYPES",
    "OBSERVED_NAMES",
    "OPAQUE_TYPES",
    "attribute_name",
    "entity_key",
]

ATTRIBUTE_NAMES = {
    "Username": "user_name",
    "CallBackId": "callback_id",
    "ExpiresIn24h": "expires_in_24h",
}
"""Attribute names that are not the plain snake_case of the table's property name."""

OPAQUE_TYPES = {"SupervisionState": "string"}
"""Named types whose values the provider does not publish: carried as the text sent."""

ENTITY_KEYS = {"User": "UserId", "Queue": "QueueId", "CallList": "CallListId"}
"""For each entity group, the property that holds the same id as `EntityId`."""

ENTITY_KEY_EXCEPTIONS = {"UserSupervisionStatus": "SupervisorUserId"}
"""Events of a group without its usual key property. The provider does not say which user a
supervision event's `EntityId` names; the supervisor is assumed."""

OBSERVED_NAMES = {"QueueCallInUserAllocated": {"UserName": "Username"}}
"""Property names real payloads use where they differ from the table (the provider's own
example request), so that sample payloads look like what actually arrives."""


def entity_key(event: Event) -> str:
    """The property of `event` that carries the same id as its `EntityId`."""
    return ENTITY_KEY_EXCEPTIONS.get(event.name) or ENTITY_KEYS[event.entity]


def attribute_name(name: str) -> str:
    """The Python attribute for a table property name (`CallerNumber` → `caller_number`)."""
    return ATTRIBUTE_NAMES.get(name) or snake_case(name)


# Descriptions shared by every table that uses the property; an entry in a table may give its
# own when the meaning there is narrower.
_GLOSSARY = {
    # common properties
    "Id": "Unique id of this event; repeated deliveries of one event carry the same id.",
    "Timestamp": "When the event happened, on the sender's clock (no time zone).",
    "RootEntityType": "Kind of top-level container the event belongs to (Organization).",
    "RootEntityId": "Id of the root entity, i.e. the organization.",
    "EntityType": "Kind of entity the event is about: User, Queue or CallList.",
    "EntityId": "Id of the entity the event is about; subscriptions select on it.",
    "EventType": "Name of the event type, such as QueueCallInArrived.",
    # calls
    "AgentLegId": "Id of the call leg forked towards the agent.",
    "CallerNumber": "Number the call came from.",
    "CallId": "Id of the call in the core system.",
    "ConnectedTarget": "Target that was connected: a user id or a phone number.",
    "DetailedReason": "More specific reason, when the sender knows one.",
    "LegId": "Id of the call leg in the core system.",
    "OrganizationId": "Id of the organization (tenant).",
    "OverflowApplet": "Name of the routing applet that overflowed the call.",
    "Reason": "Why it happened; 'remote' or 'local' for disconnects and cancellations.",
    "Target": "Where the call goes next: a user id, a phone number, or a list of targets.",
    "TargetNumber": "Number the caller dialled.",
    "TechEvent": "Technical event name.",
    "TechNumber": "Technical source number, if any.",
    "TechQueueId": "Id of the technical queue holding the call; may differ from the service queue.",
    "TechQueueName": "Name of the technical queue holding the call.",
    "TechReason": "Technical cause, such as a SIP cause code or busy_on_busy.",
    "TechSource": "Technical source type.",
    "TechType": "Technical source type.",
    "TransferApplet": "Name of the routing applet doing the transfer.",
    "TransferSource": "Where the transfer started from.",
    "TransferTarget": "Where the call is transferred: a user id or a phone number.",
    # users and queues
    "QueueId": "Id of the service queue.",
    "QueueName": "Name of the service queue.",
    "QueueNumber": "Phone number of the service queue.",
    "UserId": "Id of the user the event concerns.",
    "UserName": "Login name of the user the event concerns.",
    "Username": "Login name of the user the event concerns.",
    "UserNumber": "Phone number of the user the call went to.",
    # availability
    "Availability": "Availability state: Available, Busy, DoNotDisturb or OffWork.",
    "EndTime": "When the state ends; DateTime.MaxValue when it has no planned end.",
    "EventSource": "Where the availability change came from, as the sender records it.",
    "Note": "Free-text note the user wrote.",
    "ProfileId": "Id of the availability profile.",
    "StartTime": "When the state starts.",
    # user status
    "ActiveQueueId": "Queue the user is presumably talking in right now, if any.",
    "ActiveQueues": "Number of queues the user is active in.",
    "Available": "True when the availability state is Available (typically: not DoNotDisturb).",
    "CanBeAllocatedTo": "Best estimate, combined from several statuses, of whether a call can go"
    " to the user now.",
    "ParkedCalls": "Number of calls the user has parked.",
    "Schedule": "True unless the availability state is OffWork.",
    "ServiceTerminals": "Number of terminals the user has active.",
    "Serving": "True when the user is serving in queues.",
    "ServingCallback": "True when the user is serving in call lists.",
    "Talking": "True while the user has a call, incoming or outgoing, even before it connects.",
    "WrapUpEnd": "When the running wrap-up time ends; null when none is running.",
    # supervision
    "State": "Supervision state of the call; the provider does not publish its values.",
    "SupervisorLegId": "Id of the supervisor's own call leg, when there is one.",
    "SupervisorUserId": "Id of the supervising user.",
    "SupervisorUserName": "Login name of the supervising user.",
    "TargetUserId": "Id of the supervised user.",
    "TargetUserName": "Login name of the supervised user.",
    # wrap-up
    "ElapsedTimeSec": "How long wrap-up lasted, in seconds.",
    "MaxWrapUpDurationSec": "Longest wrap-up allowed, in seconds.",
    # queue status
    "AttachedUsers": "Users attached to the queue.",
    "MaxWaitTime": "Longest current wait among calls in the queue.",
    "NbrOfAgentsCheckedInQueue": "Agents attached to the queue, away or not.",
    "NbrOfAgentsImmediatelyFree": "Agents free to take a call right now.",
    "NbrOfAgentsLongTermAway": "Agents unavailable for a longer time (for example DoNotDisturb).",
    "NbrOfAgentsOnWrapUp": "Agents in wrap-up time.",
    "NbrOfAgentsShortTermAway": "Agents briefly unavailable (for example already on a call).",
    "NbrOfAllocated": "Calls in the queue allocated to an agent.",
    "NbrOfConnected": "Calls in the queue connected to an agent.",
    "NbrOfNotServedRequesters": "Calls in the queue that no agent is serving right now.",
    "NbrOfProviders": "Agents (providers) in the queue.",
    "NbrOfQueuingRequesters": "Calls waiting in the queue.",
    "NbrOfRequesters": "Calls (requesters) in the queue in total.",
    "NbrOfServingAgentsEstimate": "Estimated number of agents serving the queue.",
    "OpenStatus": "Estimate of whether the queue is open; see OpenStatus.",
    "Active": "Whether the user is active in the queue.",
    "Priority": "The user's priority in the queue.",
    # callback requests
    "AssignedUserId": "User the request is assigned to, if any.",
    "CalculatedPriority": "Priority the sender computed for the request.",
    "CallbackAttempts": "Every handling attempt so far.",
    "CallbackExtras": "Extra named values attached to the request.",
    "CallBackId": "Id of the callback request.",
    "CallbackRelatedItems": "Other requests related to this one.",
    "CallListId": "Id of the call list.",
    "ChannelIn": "Channel the request came in through, usually a service queue.",
    "ClassificationId": "Classification entry of the request, once classified.",
    "ContactMessage": "Message the contact left; usually empty.",
    "ContactName": "Name of the contact; usually empty.",
    "ContactNumber": "Number to call back.",
    "CreationTime": "When the request was created.",
    "DueDate": "When the request should be handled by.",
    "ExpiryDate": "When the request expires unless closed first.",
    "LastAttemptNote": "Note on the latest attempt.",
    "LastAttemptTimestamp": "When the latest attempt was made.",
    "LastAttemptTypeId": "Result type of the latest attempt.",
    "LastAttemptUserId": "User who made the latest attempt.",
    "LastModifiedUserId": "Last user to change the request; null when new or changed by an admin.",
    "Modified": "When the request last changed.",
    "NotBefore": "The request should not be handled before this time.",
    "RecordingId": "Audio recording belonging to the request, if any.",
    "TranscriptId": "Transcript made from the recording, if any.",
    "TypeId": "How the request came about; see CallbackType.",
    # call list status
    "ExpiresIn24h": "Requests that expire today.",
    "IsAutoAllocate": "Whether the list hands requests to agents automatically.",
    "NextHourOverDueDate": "Requests that pass their due date within the next hour.",
    "NextHourRevealedNotBefore": "Requests that become allocable within the next hour.",
    "TotalActiveAgents": "Agents marked active in the list, serving or not.",
    "TotalAssigned": "Requests assigned to an agent.",
    "TotalAutoAllocateAgents": "Agents both active in the list and serving call lists.",
    "TotalFreeForAllocation": "Requests that can be allocated now.",
    "TotalHidingNotBefore": "Requests held back because their NotBefore time has not come.",
    "TotalOpenRequests": "Open, unhandled requests.",
    "TotalOverDueDate": "Requests already past their due date.",
    "TotalServingAgents": "Agents serving call lists.",
    "TotalServingAutoAllocateAgents": "Agents that can be handed a request automatically right"
    " now (active, serving, and the list auto-allocates).",
}


def _p(
    name: str,
    type_: str,
    description: str | None = None,
    *,
    enum: str | None = None,
    open_ended: bool = False,
) -> Property:
    return Property(
        name=name,
        type=type_,
        description=description or _GLOSSARY[name],
        attribute=attribute_name(name),
        enum=enum,
        open_ended=open_ended,
    )


def _event(name: str, entity: str, description: str, *properties: Property) -> Event:
    return Event(name=name, entity=entity, description=description, properties=properties)


COMMON_PROPERTIES: tuple[Property, ...] = (
    _p("Id", "Guid"),
    _p("Timestamp", "DateTime"),
    _p("RootEntityType", "RootEntityType"),
    _p("RootEntityId", "Guid"),
    _p("EntityType", "EntityType"),
    _p("EntityId", "Guid"),
    _p("EventType", "string"),
)
"""Properties every event carries, whatever its type."""

# Properties that recur across the call events, in the tables' (alphabetical) order.
_CALLER = _p("CallerNumber", "string")
_CALL = _p("CallId", "Guid")
_LEG = _p("LegId", "string")
_ORG = _p("OrganizationId", "Guid")
_TARGET = _p("TargetNumber", "string")
_USER = _p("UserId", "Guid")
_USER_NAME = _p("UserName", "string")
_USERNAME = _p("Username", "string")
_QUEUE = _p("QueueId", "Guid")
_QUEUE_NAME = _p("QueueName", "string")
_QUEUE_NUMBER = _p("QueueNumber", "string")
_REASON = _p("Reason", "string")
_DETAILED = _p("DetailedReason", "string")
_TECH_QUEUE = _p("TechQueueId", "Guid")
_TECH_QUEUE_NAME = _p("TechQueueName", "string")
_TECH_SOURCE = _p("TechSource", "string")
_TRANSFER_APPLET = _p("TransferApplet", "string")
_TRANSFER_SOURCE = _p("TransferSource", "string")
_TRANSFER_TARGET = _p("TransferTarget", "string")
_CONNECTED = _p("ConnectedTarget", "string")
_USER_NUMBER = _p("UserNumber", "string")
_AGENT_LEG = _p("AgentLegId", "string")
_WRAP_UP_MAX = _p("MaxWrapUpDurationSec", "int")

_USER_EVENTS = (
    _event(
        "UserAvailability",
        "User",
        "A user's availability state (Available, Busy, DoNotDisturb, OffWork) changed.",
        _p("Availability", "string", enum="Availability"),
        _p("EndTime", "DateTime", open_ended=True),
        _p("EventSource", "string"),
        _p("Note", "string"),
        _ORG,
        _p("ProfileId", "Guid"),
        _p("StartTime", "DateTime"),
        _USER,
        _USER_NAME,
    ),
    _event(
        "UserCallInArrived",
        "User",
        "An incoming call whose current target is a user entered allocation.",
        _CALLER,
        _CALL,
        _LEG,
        _ORG,
        _TARGET,
        _USER,
        _USER_NAME,
    ),
    _event(
        "UserCallInComing",
        "User",
        "A direct incoming call to a user reached the call controller.",
        _CALLER,
        _CALL,
        _LEG,
        _ORG,
        _TARGET,
        _USER,
        _USERNAME,
    ),
    _event(
        "UserCallInDisconnected",
        "User",
        "An incoming call to a user was disconnected.",
        _CALLER,
        _CALL,
        _LEG,
        _ORG,
        _REASON,
        _TARGET,
        _p("TechReason", "string"),
        _USER,
        _USERNAME,
    ),
    _event(
        "UserCallInOverflow",
        "User",
        "An incoming call whose current target is a user overflowed to the next routing target.",
        _CALLER,
        _CALL,
        _CONNECTED,
        _LEG,
        _ORG,
        _p("OverflowApplet", "string"),
        _TARGET,
        _p("TechEvent", "string"),
        _p("TechNumber", "string"),
        _TECH_QUEUE,
        _TECH_QUEUE_NAME,
        _p("TechSource", "string", "Source type of the overflow."),
        _USER,
        _USERNAME,
    ),
    _event(
        "UserCallInTransferCancelled",
        "User",
        "Transferring an incoming call whose current target is a user was cancelled.",
        _CALLER,
        _CALL,
        _DETAILED,
        _LEG,
        _ORG,
        _REASON,
        _TARGET,
        _TECH_QUEUE,
        _TECH_QUEUE_NAME,
        _TECH_SOURCE,
        _TRANSFER_APPLET,
        _USER,
        _USERNAME,
    ),
    _event(
        "UserCallInTransferConnected",
        "User",
        "An incoming call whose current target is a user was transferred to an overflow target,"
        " and the transfer connected.",
        _CALLER,
        _CALL,
        _CONNECTED,
        _LEG,
        _ORG,
        _TARGET,
        _TECH_QUEUE,
        _TECH_QUEUE_NAME,
        _TECH_SOURCE,
        _TRANSFER_APPLET,
        _TRANSFER_SOURCE,
        _USER,
        _USERNAME,
    ),
    _event(
        "UserCallInTransferStarted",
        "User",
        "Transferring an incoming call whose current target is a user to an overflow target began.",
        _CALLER,
        _CALL,
        _LEG,
        _ORG,
        _TARGET,
        _TECH_QUEUE,
        _TECH_QUEUE_NAME,
        _TECH_SOURCE,
        _TRANSFER_APPLET,
        _TRANSFER_SOURCE,
        _TRANSFER_TARGET,
        _USER,
        _USERNAME,
    ),
    _event(
        "UserCallInUserAllocated",
        "User",
        "An incoming call whose current target is a user was allocated to that user.",
        _CALLER,
        _CALL,
        _DETAILED,
        _LEG,
        _ORG,
        _TARGET,
        _USER,
        _USER_NAME,
        _USER_NUMBER,
    ),
    _event(
        "UserCallInUserCancelled",
        "User",
        "Allocating an incoming call to its target user was cancelled.",
        _CALLER,
        _CALL,
        _DETAILED,
        _LEG,
        _ORG,
        _REASON,
        _TARGET,
        _USER,
        _USER_NAME,
    ),
    _event(
        "UserCallInUserConnected",
        "User",
        "An incoming call allocated to its target user was connected.",
        _AGENT_LEG,
        _CALLER,
        _CALL,
        _LEG,
        _ORG,
        _TARGET,
        _USER,
        _USER_NAME,
        _USER_NUMBER,
    ),
    _event(
        "UserCallInUserOverflow",
        "User",
        "A call to a user's work number is overflowing to another destination.",
        _CALLER,
        _CALL,
        _LEG,
        _ORG,
        _p(
            "Reason",
            "string",
            "Why the call overflows: AVAActiveProfile, BusyForTechnicalError, DND, OffWork,"
            " NoAnswer, InterruptOverflow, BusyOnBusy, TransferAll or BlindTransfer.",
        ),
        _p("Target", "string"),
        _TARGET,
        _USER,
        _USERNAME,
    ),
    _event(
        "UserCallOutConnected",
        "User",
        "A user's outgoing call was connected.",
        _CALLER,
        _CALL,
        _LEG,
        _ORG,
        _TARGET,
        _USER,
        _USER_NAME,
    ),
    _event(
        "UserCallOutDisconnected",
        "User",
        "A user's outgoing call was disconnected.",
        _CALLER,
        _CALL,
        _LEG,
        _ORG,
        _REASON,
        _TARGET,
        _p("TechReason", "string"),
        _USER,
        _USER_NAME,
    ),
    _event(
        "UserCallOutGoing",
        "User",
        "A user started a direct outgoing call.",
        _CALLER,
        _CALL,
        _LEG,
        _ORG,
        _TARGET,
        _USER,
        _USER_NAME,
    ),
    _event(
        "UserStatus",
        "User",
        "A user's serving status as the queues see it changed: talking, available, and whether"
        " calls can be allocated to them.",
        _p("ActiveQueueId", "Guid?"),
        _p("ActiveQueues", "int"),
        _p("Available", "bool"),
        _p("CanBeAllocatedTo", "bool"),
        _ORG,
        _p("ParkedCalls", "int"),
        _p("Schedule", "bool"),
        _p("ServiceTerminals", "int"),
        _p("Serving", "bool"),
        _p("ServingCallback", "bool"),
        _p("Talking", "bool"),
        _USER,
        _p("WrapUpEnd", "DateTime?"),
    ),
    _event(
        "UserSupervisionStatus",
        "User",
        "A supervisor's status on a call changed.",
        _CALL,
        _LEG,
        _ORG,
        _p("QueueId", "Guid?"),
        _QUEUE_NAME,
        _p("State", "SupervisionState"),
        _p("SupervisorLegId", "string"),
        _p("SupervisorUserId", "Guid"),
        _p("SupervisorUserName", "string"),
        _p("TargetUserId", "Guid"),
        _p("TargetUserName", "string"),
    ),
    _event(
        "UserWrapUpEnabled",
        "User",
        "Wrap-up time is enabled for a service call that just connected; UserWrapUpStarted and"
        " UserWrapUpTerminated follow.",
        _CALL,
        _LEG,
        _WRAP_UP_MAX,
        _ORG,
        _QUEUE,
        _USER,
    ),
    _event(
        "UserWrapUpStarted",
        "User",
        "A call with wrap-up enabled ended and wrap-up time began; the user gets no calls until"
        " it ends.",
        _CALL,
        _LEG,
        _WRAP_UP_MAX,
        _ORG,
        _QUEUE,
        _USER,
    ),
    _event(
        "UserWrapUpTerminated",
        "User",
        "Wrap-up time for a call ended, because the time ran out or on request.",
        _CALL,
        _p("ElapsedTimeSec", "int"),
        _LEG,
        _ORG,
        _QUEUE,
        _p("Reason", "string", "Why wrap-up ended, such as 'manual' or 'timer'."),
        _USER,
    ),
)

_QUEUE_EVENTS = (
    _event(
        "QueueAttachedUsers",
        "Queue",
        "The users attached to a service queue, with their priority and whether they are active.",
        _p("AttachedUsers", "List<QueueAttachedUser>"),
        _ORG,
        _QUEUE,
    ),
    _event(
        "QueueCallInArrived",
        "Queue",
        "An incoming call was accepted into a service queue.",
        _CALLER,
        _CALL,
        _LEG,
        _ORG,
        _QUEUE,
        _QUEUE_NAME,
        _QUEUE_NUMBER,
        _TARGET,
    ),
    _event(
        "QueueCallInComing",
        "Queue",
        "A new incoming call to a service or technical queue reached the call controller.",
        _CALLER,
        _CALL,
        _LEG,
        _ORG,
        _QUEUE,
        _QUEUE_NAME,
        _QUEUE_NUMBER,
        _TARGET,
    ),
    _event(
        "QueueCallInDisconnected",
        "Queue",
        "An incoming call whose current target is a queue was disconnected.",
        _CALLER,
        _CALL,
        _LEG,
        _ORG,
        _QUEUE,
        _QUEUE_NAME,
        _REASON,
        _TARGET,
        _p("TechReason", "string"),
    ),
    _event(
        "QueueCallInOverflow",
        "Queue",
        "An incoming call whose current target is a queue overflowed to the next routing point.",
        _CALLER,
        _CALL,
        _LEG,
        _ORG,
        _p("OverflowApplet", "string"),
        _QUEUE,
        _QUEUE_NAME,
        _TARGET,
        _p("TechEvent", "string"),
        _p("TechNumber", "string"),
        _TECH_QUEUE,
        _TECH_QUEUE_NAME,
        _TECH_SOURCE,
    ),
    _event(
        "QueueCallInTransferCancelled",
        "Queue",
        "Transferring an incoming queue call onward was cancelled.",
        _CALLER,
        _CALL,
        _DETAILED,
        _LEG,
        _ORG,
        _QUEUE,
        _QUEUE_NAME,
        _REASON,
        _TARGET,
        _TECH_QUEUE,
        _TECH_QUEUE_NAME,
        _TECH_SOURCE,
        _TRANSFER_APPLET,
    ),
    _event(
        "QueueCallInTransferConnected",
        "Queue",
        "Transferring an incoming queue call onward connected.",
        _CALLER,
        _CALL,
        _CONNECTED,
        _LEG,
        _ORG,
        _QUEUE,
        _QUEUE_NAME,
        _TARGET,
        _TECH_QUEUE,
        _TECH_QUEUE_NAME,
        _TECH_SOURCE,
        _TRANSFER_APPLET,
    ),
    _event(
        "QueueCallInTransferStarted",
        "Queue",
        "Transferring an incoming queue call onward began.",
        _CALLER,
        _CALL,
        _LEG,
        _ORG,
        _QUEUE,
        _QUEUE_NAME,
        _TARGET,
        _TECH_QUEUE,
        _TECH_QUEUE_NAME,
        _p("TechType", "string"),
        _TRANSFER_APPLET,
        _TRANSFER_SOURCE,
        _TRANSFER_TARGET,
    ),
    _event(
        "QueueCallInUserAllocated",
        "Queue",
        "An incoming queue call was allocated to an agent.",
        _CALLER,
        _CALL,
        _DETAILED,
        _LEG,
        _ORG,
        _QUEUE,
        _QUEUE_NAME,
        _QUEUE_NUMBER,
        _TARGET,
        _USER,
        _USER_NAME,
    ),
    _event(
        "QueueCallInUserCancelled",
        "Queue",
        "Allocating an incoming queue call to an agent was cancelled.",
        _CALLER,
        _CALL,
        _DETAILED,
        _LEG,
        _ORG,
        _QUEUE,
        _QUEUE_NAME,
        _QUEUE_NUMBER,
        _REASON,
        _TARGET,
        _USER,
        _USER_NAME,
    ),
    _event(
        "QueueCallInUserConnected",
        "Queue",
        "An incoming queue call was answered by an agent.",
        _AGENT_LEG,
        _CALLER,
        _CALL,
        _LEG,
        _ORG,
        _QUEUE,
        _QUEUE_NAME,
        _QUEUE_NUMBER,
        _TARGET,
        _USER,
        _USER_NAME,
        _USER_NUMBER,
    ),
    _event(
        "QueueStatus",
        "Queue",
        "Counters describing a service queue right now: calls waiting, connected, agents free.",
        _p("MaxWaitTime", "long"),
        _p("NbrOfAgentsCheckedInQueue", "int"),
        _p("NbrOfAgentsImmediatelyFree", "int"),
        _p("NbrOfAgentsLongTermAway", "int"),
        _p("NbrOfAgentsOnWrapUp", "int"),
        _p("NbrOfAgentsShortTermAway", "int"),
        _p("NbrOfAllocated", "int"),
        _p("NbrOfConnected", "int"),
        _p("NbrOfNotServedRequesters", "int"),
        _p("NbrOfProviders", "int"),
        _p("NbrOfQueuingRequesters", "int"),
        _p("NbrOfRequesters", "int"),
        _p("NbrOfServingAgentsEstimate", "int"),
        _p("OpenStatus", "int", enum="OpenStatus"),
        _ORG,
        _QUEUE,
        _QUEUE_NAME,
    ),
)

_CALL_LIST_EVENTS = (
    _event(
        "CallbackChanged",
        "CallList",
        "A callback request was created, updated, closed or otherwise changed.",
        _p("AssignedUserId", "Guid?"),
        _p("CalculatedPriority", "string"),
        _p("CallbackAttempts", "List<CallbackAttempt>"),
        _p("CallbackExtras", "List<CallbackExtra>"),
        _p("CallBackId", "Guid"),
        _p("CallbackRelatedItems", "List<CallbackRelatedItem>"),
        _p("CallId", "Guid?", "Id of the call that led to the request, if any."),
        _p("CallListId", "Guid"),
        _p("ChannelIn", "string"),
        _p("ClassificationId", "Guid?"),
        _p("ContactMessage", "string"),
        _p("ContactName", "string"),
        _p("ContactNumber", "string"),
        _p("CreationTime", "DateTime"),
        _p("DueDate", "DateTime?"),
        _p("ExpiryDate", "DateTime?"),
        _p("LastAttemptNote", "string"),
        _p("LastAttemptTimestamp", "DateTime?"),
        _p("LastAttemptTypeId", "int?"),
        _p("LastAttemptUserId", "Guid?"),
        _p("LastModifiedUserId", "Guid?"),
        _p("Modified", "DateTime"),
        _p("NotBefore", "DateTime?"),
        _p("Note", "string", "Internal notes on the request."),
        _ORG,
        _p("RecordingId", "Guid?"),
        _p("TranscriptId", "Guid?"),
        _p("TypeId", "short", enum="CallbackType"),
    ),
    _event(
        "CallbackListStatus",
        "CallList",
        "A call list's counters changed (checked every 15 seconds): open, due and assigned"
        " requests, and agents serving the list.",
        _p("CallListId", "Guid"),
        _p("ExpiresIn24h", "int"),
        _p("IsAutoAllocate", "bool"),
        _p("NextHourOverDueDate", "int"),
        _p("NextHourRevealedNotBefore", "int"),
        _ORG,
        _p("TotalActiveAgents", "int"),
        _p("TotalAssigned", "int"),
        _p("TotalAutoAllocateAgents", "int"),
        _p("TotalFreeForAllocation", "int"),
        _p("TotalHidingNotBefore", "int"),
        _p("TotalOpenRequests", "int"),
        _p("TotalOverDueDate", "int"),
        _p("TotalServingAgents", "int"),
        _p("TotalServingAutoAllocateAgents", "int"),
    ),
)

EVENTS: tuple[Event, ...] = _USER_EVENTS + _QUEUE_EVENTS + _CALL_LIST_EVENTS
"""Every documented event type, grouped by entity (User, Queue, CallList)."""

EVENT_TYPES: tuple[str, ...] = tuple(event.name for event in EVENTS)
"""The names of the documented event types, as sent in `EventType`."""

NESTED_TYPES: tuple[NestedType, ...] = (
    NestedType(
        "QueueAttachedUser",
        "A user attached to a service queue.",
        (
            _p("Active", "bool"),
            _p("Priority", "int"),
            _p("UserId", "Guid", "Id of the attached user."),
        ),
    ),
    NestedType(
        "CallbackAttempt",
        "One attempt at handling a callback request.",
        (
            _p("CallbackAttemptTypeId", "int?", "Result type of the attempt."),
            _p("Id", "Guid", "Id of the attempt."),
            _p("Note", "string", "Note the user wrote about the attempt."),
            _p("Timestamp", "DateTime?", "When the attempt was made."),
            _p("UserId", "Guid?", "User who made the attempt."),
        ),
    ),
    NestedType(
        "CallbackExtra",
        "A named extra value attached to a callback request.",
        (
            _p("Id", "int", "Numeric id of the field."),
            _p("Name", "string", "Name of the field."),
            _p("Value", "string", "Value of the field."),
        ),
    ),
    NestedType(
        "CallbackRelatedItem",
        "Another callback request related to this one.",
        (
            _p("Id", "Guid", "Id of the related request."),
            _p("IsClosed", "bool", "Whether the related request is closed."),
            _p("ListId", "Guid?", "Call list of the related request."),
            _p("StatusId", "int?", "Raw status id of the related request's last attempt."),
        ),
    ),
)
"""Records that appear only inside events."""


def _members(*pairs: tuple[str, str]) -> tuple[Member, ...]:
    """Members of a string enumeration, whose wire value is the name itself."""
    return tuple(Member(name, name, description) for name, description in pairs)


ENUMERATIONS: tuple[Enumeration, ...] = (
    Enumeration(
        "RootEntityType",
        "Kind of top-level container an event belongs to.",
        "string",
        _members(
            ("Undefined", "Placeholder kept for compatibility with types added later."),
            ("Organization", "An organization (tenant); every current event belongs to one."),
        ),
    ),
    Enumeration(
        "EntityType",
        "Kind of entity an event is about.",
        "string",
        _members(
            ("Undefined", "Placeholder kept for compatibility with types added later."),
            ("User", "An end user, such as an agent."),
            ("Queue", "A service pool: one queue that handles service calls."),
            ("CallList", "A call list of callback requests and outbound calls."),
        ),
    ),
    Enumeration(
        "Availability",
        "A user's availability state.",
        "string",
        _members(
            ("Available", "Can take calls."),
            ("Busy", "Busy."),
            ("DoNotDisturb", "Does not want calls."),
            ("OffWork", "Not working."),
        ),
    ),
    Enumeration(
        "OpenStatus",
        "Estimate of whether a service queue is open.",
        "integer",
        (
            Member("NA", 0, "Not available."),
            Member(
                "NoActiveHandler", 1, "No active handling endpoint or number: in effect closed."
            ),
            Member(
                "NoActiveHandlerUncertain",
                2,
                "No active handler, but scripts on some handlers make it uncertain.",
            ),
            Member("Closed", 3, "The only active handler is ServiceClosed."),
            Member(
                "ClosedUncertain",
                4,
                "The only active handler is ServiceClosed, but scripts make it uncertain.",
            ),
            Member("Open", 5, "The queue is open."),
            Member("OpenUncertain", 6, "The queue is open, but scripts make it uncertain."),
        ),
    ),
    Enumeration(
        "CallbackType",
        "How a callback request came about (`TypeId`).",
        "integer",
        (
            Member("ExplicitRequest", 1, "The caller explicitly asked to be called back."),
            Member("OverflownCall", 2, "A call overflowed into the call list."),
            Member("ManualItem", 3, "Someone created the item by hand."),
        ),
    ),
)
"""Enumerations with documented values (`SupervisionState` has none; see `OPAQUE_TYPES`)."""

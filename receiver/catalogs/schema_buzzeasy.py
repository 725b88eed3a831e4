"""JSON Schemas of the Buzzeasy (Geomant) service hooks, one per hook of `catalogs.buzzeasy`.

Each hook POSTs a JSON body with the integrator's key in `x-api-key` to a callback URL of its
own: the URL, not the body, names the event type, so the union of the hooks is an `anyOf`.
WorkItemClosed follows the provider's published example (camelCase names, a unique `id`);
the other hooks are documented in prose, and their properties carry the names the prose gives.
Timestamps are UTC with 7 fraction digits and `Z`. A property may be null; names match ignoring
case and underscores when decoded (`handlers.buzzeasy`), which also reads a few other
spellings.
"""

from __future__ import annotations

from collections.abc import Sequence

from receiver.catalogs import buzzeasy
from receiver.catalogs.schema_base import (
    DATETIME_PATTERN,
    ProviderSchema,
    Refs,
    Schema,
    empty_response,
)

__all__ = ["BUZZEASY", "PROPERTIES"]

_AGENT = "Agent"


def _text(description: str) -> Schema:
    return {"description": description, "type": ["string", "null"]}


def _time(description: str) -> Schema:
    return {"description": description, "type": ["string", "null"], "pattern": DATETIME_PATTERN}


_ID: Schema = {
    "description": "The event's unique id (32 hex digits).",
    "type": ["string", "integer"],
}

PROPERTIES: dict[str, dict[str, Schema]] = {
    "AbandonedConversation": {
        "customerPhoneNumber": _text("The customer's phone number."),
        "timeInQueue": {
            "description": "How long the customer waited: seconds, or `HH:MM:SS[.fffffff]`.",
            "type": ["number", "string", "null"],
        },
        "timestamp": _time("When the customer hung up (UTC)."),
        "queue": {
            "description": "The queue's name, or an object with its `name`.",
            "anyOf": [
                {"type": ["string", "null"]},
                {"type": "object", "properties": {"name": {"type": "string"}}},
            ],
        },
        "queueId": _text("The queue's id."),
    },
    "OutboundCall": {
        "agentID": _text("The agent who placed the call."),
        "targetPhoneNumber": _text("The dialled number."),
        "Timestamp": _time("When the call was started (UTC)."),
    },
    "WorkItemClosed": {
        "mediaType": _text("`Webchat`, `Voice`, `Email`, ..."),
        "isOutbound": {"description": "Whether the agent started it.", "type": ["boolean", "null"]},
        "createdAt": _time("When the work item was created (UTC)."),
        "closedAt": _time("When the agent closed it (UTC)."),
        "agent": {"description": "The agent who handled it."},
        "customerIdentifier": _text("The customer's phone number or other identifier."),
        "customerId": _text("The customer."),
        "primaryConversationId": _text("The conversation the work item belongs to."),
        "completionCode": _text("The agent's completion code."),
        "notes": _text("The agent's notes."),
        "result": _text("The outcome (`Handled`)."),
    },
}
"""Each hook's properties beyond `id`; `agent` is completed with a `$ref` to `Agent`."""

_DESCRIPTIONS = {
    "AbandonedConversation": "A customer hung up while waiting in a queue.",
    "OutboundCall": "An agent started an outbound call.",
    "WorkItemClosed": "An agent closed a work item (a call, chat, e-mail, ...).",
}


def _definitions(event_types: Sequence[str], refs: Refs) -> dict[str, Schema]:
    definitions: dict[str, Schema] = {}
    for name in event_types:
        properties = {"id": _ID}
        for key, schema in PROPERTIES[name].items():
            properties[key] = {**schema, "$ref": refs(_AGENT)} if key == "agent" else schema
        definitions[name] = {
            "title": name,
            "description": _DESCRIPTIONS[name],
            "type": "object",
            "properties": properties,
            "required": ["id"] if name == "WorkItemClosed" else [],
            "additionalProperties": True,
        }
    definitions[_AGENT] = {
        "title": _AGENT,
        "description": "An agent as a hook names one.",
        "type": ["object", "null"],
        "properties": {
            "id": _text("The agent's id (24 hex digits)."),
            "name": _text("The agent's display name."),
            "email": _text("The agent's e-mail address."),
            "phone": _text("The agent's phone number."),
        },
        "additionalProperties": True,
    }
    return definitions


def _webhook(event_type: str, operation_id: str, refs: Refs) -> Schema:
    return {
        "post": {
            "operationId": operation_id,
            "summary": _DESCRIPTIONS[event_type],
            "tags": ["Buzzeasy"],
            "security": [{"buzzeasyApiKey": []}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": refs(event_type)}}},
            },
            "responses": empty_response(),
        }
    }


BUZZEASY = ProviderSchema(
    name="buzzeasy",
    title="Buzzeasy",
    description="Requests a Buzzeasy (Geomant) service hook POSTs to its callback URL, one"
    " URL per hook (the URL, not the body, names the event type): a JSON body, the"
    " integrator's key in x-api-key. Answer 200 with no body.",
    union_description="The JSON body of any documented Buzzeasy service hook; which one is"
    " known from the URL it was sent to.",
    event_types=buzzeasy.EVENT_TYPES,
    exclusive=False,
    security_schemes={
        "buzzeasyApiKey": {
            "type": "apiKey",
            "in": "header",
            "name": "x-api-key",
            "description": "The integrator's key, configured with the hook, sent as is.",
        }
    },
    definitions=_definitions,
    webhook=_webhook,
)
"""The Buzzeasy schemas: every documented service hook."""

"""JSON Schemas of RingCentral Engage Voice requests, made from `receiver.catalogs.engage`.

WFM "Generic HTTP" sends the fields of an agent or end call event URL-encoded in the query
string of a GET (the product's default), or with "Send body as JSON" as a JSON object in a
POST (a form body is accepted too). Every value is text; `external_agent_id` may be null in
JSON. The schema of an event type describes that set of fields, whichever way it travels; the
fields tell the four event types apart (`event_type` LOGIN / LOGOUT, a `call_state` for an end
call), so their union is a `oneOf`.

Web Services send what the administrator's template says, for the trigger the service is
attached to: any names, any body kind (JSON, form, XML, text, or URL parameters only), values
substituted as text, a tag without a value left as is (`#agent_username#`). The schema lists
the documented tags under the names the documented JSON template uses (`agentId`,
`callStart`); the receiver also matches other spellings and the endpoint's `fields` option.
Every trigger sends the same kind of body, so their union is an `anyOf`.

Both authenticate with a header/value pair the administrator configures (the endpoint's
`auth_header`, default `Authorization`) or Basic credentials.
"""

from __future__ import annotations

from collections.abc import Sequence

from receiver.catalogs import engage
from receiver.catalogs.schema_base import ProviderSchema, Refs, Schema, empty_response, open_enum

__all__ = ["ENGAGE_SECURITY", "ENGAGE_WEB_SERVICES", "ENGAGE_WFM", "camel_case"]

_WALL_TIME = r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})?$"
_ANSWERED_ONLY = ("agent_id", "external_agent_id", "username")
_NOT_AN_AGENT_STATE = ("LOGIN", "LOGOUT", *engage.END_CALL_TYPES)

_WFM_FIELDS: dict[str, Schema] = {
    "agent_id": {"description": "The agent's id in Engage."},
    "prev_state": open_enum(engage.AGENT_STATES, "The state the agent left."),
    "prev_aux_state": {"description": "The auxiliary (sub) state the agent left."},
    "agent_phone": {"description": "The agent's phone number."},
    "source_ip": {"description": "The address the agent works from."},
    "external_agent_id": {
        "description": "The agent's id in the workforce management system; null when unset.",
        "type": ["string", "null"],
    },
    "duration": {"description": "Time in the previous state (the unit is not documented)."},
    "agent_login_id": {"description": "The agent's login session."},
    "account_id": {"description": "The Engage account."},
    "event_aux_type": {"description": "The auxiliary (sub) state entered, such as `Available`."},
    "date_time": {
        "description": "When it happened: wall-clock time, no zone (`2020-06-30 19:44:01`).",
        "pattern": _WALL_TIME,
    },
    "pending_disp": {"description": "`true` while the agent's last call awaits a disposition."},
    "username": {"description": "The agent's user name."},
    "call_id": {"description": "The call."},
    "call_source_id": {"description": "The queue (gate) or campaign the call came through."},
    "call_source_name": {"description": "The name of the queue or campaign."},
    "dnis": {"description": "The number dialled."},
    "call_type": open_enum(engage.CALL_TYPES, "ACD (inbound queue) or VPD (outbound dialer)."),
    "recording_url": {"description": "The recording; empty when unanswered."},
    "queue_duration": {"description": "Seconds the call waited in queue."},
    "agent_disposition": {"description": "The agent's disposition; empty when unanswered."},
    "gate_name": {"description": "The queue (gate) or campaign."},
    "gate_id": {"description": "The queue (gate) or campaign id."},
    "call_state": open_enum(engage.CALL_STATES, "How the call ended."),
    "call_duration": {"description": "Seconds."},
    "call_start": {
        "description": "When the call started: wall-clock time, no zone (`2020-06-30 21:36:37`).",
        "pattern": _WALL_TIME,
    },
    "ani": {"description": "The caller's number."},
}
"""Each WFM field's schema beyond `{"type": "string"}` (`event_type` is per event type)."""

_WFM_EVENTS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], Schema]] = {
    "AgentLogin": (
        "An agent logged in.",
        engage.LOGIN_FIELDS,
        engage.LOGIN_FIELDS,
        {"const": "LOGIN"},
    ),
    "AgentLogout": (
        "An agent logged out.",
        engage.LOGIN_FIELDS,
        engage.LOGIN_FIELDS,
        {"const": "LOGOUT"},
    ),
    "AgentState": (
        "An agent entered a state (a default or a custom one); on a call, with the call.",
        engage.AGENT_FIELDS + engage.CALL_FIELDS,
        engage.AGENT_FIELDS,
        {
            **open_enum(
                (s for s in engage.AGENT_STATES if s not in _NOT_AN_AGENT_STATE),
                "The state entered.",
            ),
            "not": {"enum": list(_NOT_AN_AGENT_STATE)},
        },
    ),
    "EndCall": (
        "A call ended (inbound ACD-CALL or outbound VPD-CALL); answered calls name the agent.",
        engage.END_CALL_FIELDS,
        tuple(f for f in engage.END_CALL_FIELDS if f not in _ANSWERED_ONLY),
        open_enum(engage.END_CALL_TYPES, "Inbound (ACD-CALL) or outbound (VPD-CALL)."),
    ),
}
"""Event type → (description, fields, required fields, schema of `event_type`)."""

_TRIGGERS: dict[str, str] = {
    "Dequeue": "A call left the queue.",
    "AgentConnect": "An agent was connected to a call.",
    "PostCall": "A call ended.",
    "TransferTermination": "A transfer leg ended.",
    "AgentTermination": "An agent's segment of a call ended (once per agent of a call).",
    "PostDisposition": "An agent dispositioned a call.",
}
"""Each trigger of the catalog → what happened."""

_WEB_SERVICE_TYPES: dict[str, str] = {
    "CallDetails": "A web service call at an endpoint left at the default event type.",
    **{trigger: _TRIGGERS[trigger] for trigger in engage.TRIGGERS},
}
"""Web service event type (the endpoint's `event_type`: the default, or a trigger) → summary."""

_TAG_NOTES: dict[str, str] = {
    "uii": "The call's unique id, shared by every agent segment.",
    "agent_username": "Usually the agent's e-mail address.",
    "call_start": "When the call started, wall-clock time (`2020-04-22 00:00:00.0000`).",
    "duration": "Seconds, or `HH:MM:SS`.",
    "call_duration": "Seconds, or `HH:MM:SS`.",
    "agent_recording_url": "The dual-channel agent recording.",
}

_WEB_SERVICE_BODY = "WebServiceFields"

ENGAGE_SECURITY: dict[str, Schema] = {
    "engageHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "The header/value pair configured in Engage: the endpoint's secret as"
        " the whole value. The endpoint's `auth_header` option may name another header.",
    },
    "engageBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "Basic credentials of a user from the endpoint's `basic_users_env`.",
    },
}
"""How an Engage endpoint authenticates (either scheme)."""


def camel_case(name: str) -> str:
    """`agent_username` → `agentUsername`: the spelling of the documented JSON template."""
    first, *rest = name.split("_")
    return first + "".join(word.title() for word in rest)


def _wfm_definitions(event_types: Sequence[str], refs: Refs) -> dict[str, Schema]:
    return {name: _wfm_event(name) for name in event_types}


def _wfm_event(event_type: str) -> Schema:
    description, fields, required, state = _WFM_EVENTS[event_type]
    properties = {
        name: {"type": "string", **(state if name == "event_type" else _WFM_FIELDS[name])}
        for name in fields
    }
    return {
        "title": event_type,
        "description": description,
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": True,
        **({} if event_type == "EndCall" else {"not": {"required": ["call_state"]}}),
    }


def _wfm_webhook(event_type: str, operation_id: str, refs: Refs) -> Schema:
    schema = {"$ref": refs(event_type)}
    common: Schema = {
        "summary": _WFM_EVENTS[event_type][0],
        "tags": ["Engage Voice WFM"],
        "security": [{"engageHeader": []}, {"engageBasic": []}],
        "responses": {
            "200": {
                **empty_response()["200"],
                "headers": {
                    "Validation-Token": {
                        "description": "The request's Validation-Token, echoed.",
                        "schema": {"type": "string"},
                    }
                },
            }
        },
    }
    validation = {
        "name": "Validation-Token",
        "in": "header",
        "required": False,
        "description": "Sent by the agent-state subscription API; echoed in the response.",
        "schema": {"type": "string"},
    }
    fields = {
        "name": "fields",
        "in": "query",
        "required": True,
        "style": "form",
        "explode": True,
        "description": "Every field as its own URL parameter (the product's default).",
        "schema": schema,
    }
    body = {"schema": schema}
    return {
        "get": {
            **common,
            "operationId": f"{operation_id}.query",
            "parameters": [fields, validation],
        },
        "post": {
            **common,
            "operationId": operation_id,
            "description": 'With "Send body as JSON", a JSON object; a form body is read too.',
            "parameters": [validation],
            "requestBody": {
                "required": True,
                "content": {"application/json": body, "application/x-www-form-urlencoded": body},
            },
        },
    }


def _web_service_definitions(event_types: Sequence[str], refs: Refs) -> dict[str, Schema]:
    definitions: dict[str, Schema] = {
        name: {
            "title": name,
            "description": _WEB_SERVICE_TYPES[name],
            "$ref": refs(_WEB_SERVICE_BODY),
        }
        for name in event_types
    }
    properties = {
        camel_case(field): {
            "description": f"`#{tag}#`. {_TAG_NOTES.get(field, '')}".strip(),
            "type": "string",
        }
        for field, tag in engage.WEB_SERVICE_TAGS.items()
    }
    definitions[_WEB_SERVICE_BODY] = {
        "title": _WEB_SERVICE_BODY,
        "description": "The fields of the administrator's template, values as text; a tag"
        " without a value arrives as itself (`#agent_username#`) and means missing.",
        "type": "object",
        "properties": properties,
        "minProperties": 1,
        "additionalProperties": True,
    }
    return definitions


def _web_service_webhook(event_type: str, operation_id: str, refs: Refs) -> Schema:
    schema = {"$ref": refs(event_type)}
    return {
        "post": {
            "operationId": operation_id,
            "summary": _WEB_SERVICE_TYPES[event_type],
            "description": "The method (GET, POST, PUT, PATCH, DELETE) and body kind are the"
            " administrator's; URL parameters are read with every kind (the body wins).",
            "tags": ["Engage Voice Web Services"],
            "security": [{"engageHeader": []}, {"engageBasic": []}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": schema},
                    "application/x-www-form-urlencoded": {"schema": schema},
                    "application/xml": {"schema": schema},
                    "text/plain": {"schema": {"type": "string"}},
                },
            },
            "responses": empty_response(),
        }
    }


ENGAGE_WFM = ProviderSchema(
    name="engage-wfm",
    title="Engage Voice WFM",
    description='Requests RingCentral Engage Voice\'s Workforce Management "Generic HTTP"'
    " integration sends to its Agent Event URL and Call Event URL: an event's fields"
    " URL-encoded in the query string of a GET (the default), or a JSON object in a POST"
    ' ("Send body as JSON"). The configured header/value pair (or Basic credentials)'
    " authenticates it. There is no event id. Answer 200 with no body within 3 seconds.",
    union_description="The fields of any documented Engage Voice WFM event.",
    event_types=engage.WFM_EVENT_TYPES,
    exclusive=True,
    security_schemes=ENGAGE_SECURITY,
    definitions=_wfm_definitions,
    webhook=_wfm_webhook,
)
"""The Engage Voice WFM schemas: agent login, logout, state and end call events."""

ENGAGE_WEB_SERVICES = ProviderSchema(
    name="engage-web-services",
    title="Engage Voice Web Services",
    description="Requests a RingCentral Engage Voice web service sends when its trigger"
    " fires: the administrator's template filled in, as JSON (the receiver's default),"
    " form data, XML, text or URL parameters only, with the method the administrator chose."
    " The configured header/value pair (or Basic credentials) authenticates it."
    " Answer 200 with no body.",
    union_description="The fields of any Engage Voice web service call.",
    event_types=tuple(_WEB_SERVICE_TYPES),
    exclusive=False,
    security_schemes=ENGAGE_SECURITY,
    definitions=_web_service_definitions,
    webhook=_web_service_webhook,
)
"""The Engage Voice Web Services schemas: one event type per trigger, one body shape."""

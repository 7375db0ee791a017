"""What Twilio and Exotel post to this server, described for the OpenAPI document.

The webhook and the status callbacks read their bodies as forms (so a field
Twilio adds tomorrow does no harm, and the signature covers them all); these
descriptions put the fields in `/openapi.json` anyway, for readers and for
fuzzers, along with the plain-text refusals those routes answer. Twilio's
`X-Twilio-Signature` header is not listed: it is a credential, not data.
"""

from __future__ import annotations

from typing import Any

FORM = "application/x-www-form-urlencoded"


def _fields(
    names: dict[str, str], required: tuple[str, ...], others: dict[str, Any] | None = None
) -> dict[str, Any]:
    properties: dict[str, dict[str, Any]] = {
        name: {"type": "string", "description": d} for name, d in names.items()
    }
    for name in required:
        properties[name]["minLength"] = 1
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": {"type": "string"} if others is None else others,
    }


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


# Starlette refuses a malformed form itself, in FastAPI's JSON shape.
BAD_FORM = {
    "description": "A body that is not a form, or lacks a required field",
    "content": {
        "text/plain": {"schema": {"type": "string"}},
        "application/json": {"schema": {"type": "object"}},
    },
}
NO_CONTENT = {"description": "Noted"}
Responses = dict[int | str, dict[str, Any]]
TWILIO_SIGNED: Responses = {403: _text("Missing or wrong X-Twilio-Signature"), 400: BAD_FORM}
EXOTEL_TOKEN: Responses = {403: _text("Missing or wrong token"), 400: BAD_FORM}

VOICE_WEBHOOK: dict[str, Any] = {
    "requestBody": {
        "content": {
            FORM: {
                "schema": _fields(
                    {
                        "CallSid": "The call",
                        "AccountSid": "The Twilio account",
                        "From": "The caller",
                        "To": "The number called",
                        "CallStatus": "ringing",
                        "Direction": "inbound",
                    },
                    required=(),
                )
            }
        }
    },
}

STATUS_CALLBACK: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            FORM: {
                "schema": _fields(
                    {
                        "CallSid": "The call placed",
                        "CallStatus": "queued, initiated, ringing, in-progress, completed, …",
                        "AnsweredBy": "Answering machine detection's verdict",
                        "CallDuration": "Seconds, once completed",
                        "SequenceNumber": "The callback's place in order, from 0",
                    },
                    required=("CallSid", "CallStatus"),
                )
            }
        },
    },
}

RECORDING_STATUS_CALLBACK: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            FORM: {
                "schema": _fields(
                    {
                        "CallSid": "The call recorded",
                        "RecordingSid": "RE followed by 32 hex characters",
                        "RecordingStatus": "in-progress, completed, absent or failed",
                        "RecordingUrl": "Where Twilio keeps it",
                        "RecordingDuration": "Seconds, once completed",
                    },
                    required=("CallSid", "RecordingSid", "RecordingStatus"),
                )
            }
        },
    },
}

_DIAL_RESULT_FORM = _fields(
    {
        "CallSid": "The call transferred",
        "DialCallStatus": "How the dial ended",
        "From": "The caller",
        "To": "The number called",
        "Direction": "inbound or outbound-api",
    },
    required=("CallSid", "DialCallStatus"),
)
_DIAL_RESULT_FORM["properties"]["CallSid"]["pattern"] = "^CA[0-9a-f]{32}$"
_DIAL_RESULT_FORM["properties"]["DialCallStatus"]["enum"] = [
    "completed", "answered", "busy", "no-answer", "failed", "canceled"
]  # fmt: skip
DIAL_RESULT: dict[str, Any] = {
    "requestBody": {"required": True, "content": {FORM: {"schema": _DIAL_RESULT_FORM}}}
}

WHISPER: dict[str, Any] = {
    "requestBody": {
        "content": {FORM: {"schema": _fields({"CallSid": "The agent's leg"}, required=())}}
    },
}

_EXOTEL_NAMES = {
    "CallSid": "The call placed",
    "Status": "completed, failed, busy, no-answer",
    "EventType": "answered or terminal",
    "ConversationDuration": "Seconds talked",
}
# `answered` events carry no Status: the call is in progress.
_STATUS_OR_ANSWERED = [
    {"required": ["Status"], "properties": {"Status": {"minLength": 1}}},
    {"required": ["EventType"], "properties": {"EventType": {"enum": ["answered"]}}},
]
_EXOTEL_FORM = _fields(_EXOTEL_NAMES, required=("CallSid",)) | {"anyOf": _STATUS_OR_ANSWERED}
_EXOTEL_JSON = _fields(_EXOTEL_NAMES, required=("CallSid",), others={})
_EXOTEL_JSON["properties"]["ConversationDuration"]["type"] = ["string", "integer"]
_EXOTEL_JSON["anyOf"] = _STATUS_OR_ANSWERED
EXOTEL_STATUS_CALLBACK: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            FORM: {"schema": _EXOTEL_FORM},
            "application/json": {"schema": _EXOTEL_JSON},
        },
    },
}

"""Generate event: POST /api/v1/event and /api/v2/event. Shape checks here, storage in
marketing.events.

v1 `params` is a list of `{"name", "value"}` whose values are strings (nested JSON travels as
an escaped string); v2 also takes nested JSON values, and `params` may be a plain object.
Params are stored as one object `{name: value}` (a repeated name keeps its last value): that
is what templates read as `$data`. An event type that declares its params checks them
(marketing.event_params): a refusing type answers 400 naming each param, a flagging one
stores the event marked invalid. `occurredAt` (ISO 8601) dates a past event; without it the
event occurred when it arrived.
"""

import datetime as dt
import functools

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from config.core.api_auth import APIKeyAuthentication
from config.core.errors import HeraldError
from config.core.models import Scope
from config.core.parsers import json_body_load, json_text_load
from marketing.api import examples
from marketing.event_params import occurred_at_parse
from marketing.events import (
    BODY_MAX_BYTES,
    EVENT_TYPE_KEY_MAX,
    EVENT_TYPE_KEY_RE,
    KEY_VALUE_MAX,
    contact_lookup_for,
    event_ingest,
    event_type_key_problem,
)

PARAM_NAME_MAX = 200
# How far ahead of the server's clock an `occurredAt` may be: senders' clocks drift.
OCCURRED_AT_SKEW = dt.timedelta(minutes=5)

EVENT_DESCRIPTION = (
    "Generate event. `eventTypeKey` (1-100 characters: letters, digits, `- _ . :`; a new type "
    "is created on first use), `keyValue` (1-300 characters; a contact id, email or phone "
    "links the event to that contact, as do params contactId, externalCustomerId, email, "
    "phone), `params` ({name, value} pairs: templates read them as `$data`), `occurredAt` "
    "(optional, ISO 8601: when a past event happened; at most 5 minutes ahead of the server's "
    "clock; without an offset, UTC). At most 20 kB. An event type that declares its params "
    'refuses an event that breaks them with 400 `{"params.<name>": [problem]}` (or stores '
    "it flagged invalid, as the type says). Answers `{id}` once stored; workflows run in a "
    "worker."
)
_EVENT_FIELDS = {
    "eventTypeKey": serializers.RegexField(
        EVENT_TYPE_KEY_RE.pattern,
        max_length=EVENT_TYPE_KEY_MAX,
        help_text="The event type's key; created on first use.",
    ),
    "keyValue": serializers.CharField(
        max_length=KEY_VALUE_MAX, help_text="The event's key: often the contact's email or id."
    ),
    "occurredAt": serializers.DateTimeField(
        required=False,
        help_text="When the event happened (ISO 8601), for events sent after the fact; "
        "default: its arrival.",
    ),
}
EVENT_REQUEST = inline_serializer(
    "EventRequest",
    {
        **_EVENT_FIELDS,
        "params": inline_serializer(
            "EventParam",
            {
                "name": serializers.CharField(max_length=PARAM_NAME_MAX),
                "value": serializers.CharField(
                    allow_blank=True,
                    allow_null=True,
                    help_text="A string (numbers and true/false are taken as text); send "
                    "nested JSON as an escaped string, or use /api/v2/event.",
                ),
            },
            many=True,
            required=False,
        ),
    },
)


@extend_schema_field(
    {
        "oneOf": [
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "maxLength": PARAM_NAME_MAX},
                        "value": {"description": "Any JSON value."},
                    },
                    "required": ["name"],
                },
            },
            {"type": "object", "additionalProperties": {}, "description": "{name: value}"},
        ],
        "description": "[{name, value}] pairs whose values may be nested JSON, or one object "
        "{name: value}.",
    }
)
class _ParamsV2Field(serializers.JSONField):
    pass


EVENT_V2_REQUEST = inline_serializer(
    "EventV2Request", {**_EVENT_FIELDS, "params": _ParamsV2Field(required=False)}
)
EVENT_RESPONSE = inline_serializer(
    "EventResponse", {"id": serializers.IntegerField(help_text="The stored event.")}
)


def _error(field: str, problem: str) -> ValidationError:
    return ValidationError({field: [problem]})


def _scalar_text(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return value if isinstance(value, str) else str(value)
    return None


def params_parse(raw, *, version: int) -> dict:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        # Form-encoded requests carry params as a JSON string.
        try:
            raw = json_text_load(raw)
        except ValueError:
            raise _error("params", "must be a list of {name, value} objects") from None
    if isinstance(raw, dict) and version >= 2:
        return {str(name): value for name, value in raw.items()}
    if not isinstance(raw, list):
        expected = "a list of {name, value} objects"
        if version >= 2:
            expected += " or a JSON object"
        raise _error("params", f"must be {expected}")
    params: dict = {}
    for index, item in enumerate(raw):
        where = f"params[{index}]"
        if not isinstance(item, dict) or "name" not in item:
            raise _error(where, 'must be an object {"name": ..., "value": ...}')
        unknown = set(item) - {"name", "value"}
        if unknown:
            raise _error(where, f"unknown key(s) {sorted(unknown)}; expected name and value")
        name = item["name"]
        if not isinstance(name, str) or not name.strip():
            raise _error(f"{where}.name", "must be a non-empty string")
        if len(name) > PARAM_NAME_MAX:
            raise _error(f"{where}.name", f"at most {PARAM_NAME_MAX} characters")
        value = item.get("value")
        if version < 2:
            value = _scalar_text(value)
            if value is None:
                raise _error(
                    f"{where}.value",
                    "must be a string in v1; send nested JSON as an escaped string, "
                    "or use /api/v2/event",
                )
        params[name] = value
    return params


class EventView(APIView):
    """Store an event and answer at once; workflows run in workers."""

    required_scope = Scope.EVENTS
    version = 1

    @extend_schema(
        summary="Generate event",
        request=EVENT_REQUEST,
        responses={200: EVENT_RESPONSE},
        examples=[examples.GENERATE_EVENT, examples.EVENT_STORED],
        description=EVENT_DESCRIPTION,
    )
    def post(self, request):
        body_size_check(request)
        event_id = event_store(request.data, version=self.version)
        return Response({"id": event_id}, status=status.HTTP_200_OK)

    @classmethod
    def as_view(cls, **initkwargs):
        """DRF's view behind a fast path for the common request (`_fast_post`)."""
        drf_view = super().as_view(**initkwargs)

        def view(request, *args, **kwargs):
            response = _fast_post(request, cls.version) if request.method == "POST" else None
            return response if response is not None else drf_view(request, *args, **kwargs)

        # DRF's attributes (cls, initkwargs, csrf_exempt) carry over, so the schema generator
        # and the CSRF middleware see the view as DRF's.
        return functools.update_wrapper(view, drf_view)


class EventV2View(EventView):
    version = 2

    @extend_schema(
        summary="Generate event (params with nested JSON)",
        request=EVENT_V2_REQUEST,
        responses={200: EVENT_RESPONSE},
        examples=[examples.GENERATE_EVENT, examples.GENERATE_EVENT_V2, examples.EVENT_STORED],
        description=EVENT_DESCRIPTION,
    )
    def post(self, request):
        return super().post(request)


_ALLOW = ", ".join(EventView().allowed_methods)  # the Allow header DRF's answer carries


def body_size_check(request) -> None:
    # Checked before parsing, from the declared length first so a huge body is never read:
    # the limit exists to bound the work an event costs.
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    length = declared if declared > BODY_MAX_BYTES else len(request.body)
    if length > BODY_MAX_BYTES:
        raise _error(
            "body", f"at most {BODY_MAX_BYTES} bytes (20 kB) per event; got {length} bytes"
        )


def event_store(data, *, version: int) -> int:
    """Check a parsed Generate event body and store the event; return its id. Raises
    ValidationError (or a HeraldError: occurredAt, declared params) naming the field."""
    if hasattr(data, "dict"):  # form-encoded
        data = data.dict()
    if not isinstance(data, dict):
        raise _error("non_field_errors", "the body must be a JSON object")
    type_key = data.get("eventTypeKey")
    problem = event_type_key_problem(type_key)
    if problem:
        raise _error("eventTypeKey", problem)
    key_value = data.get("keyValue")
    if isinstance(key_value, int) and not isinstance(key_value, bool):
        key_value = str(key_value)
    if not isinstance(key_value, str) or not key_value.strip():
        raise _error("keyValue", "required (a non-empty string)")
    if len(key_value) > KEY_VALUE_MAX:
        raise _error("keyValue", f"at most {KEY_VALUE_MAX} characters (got {len(key_value)})")
    params = params_parse(data.get("params"), version=version)
    occurred_at = occurred_at_parse(
        data.get("occurredAt"), now=timezone.now(), skew=OCCURRED_AT_SKEW
    )
    key_value = key_value.strip()
    return event_ingest(
        type_key=type_key,
        key_value=key_value,
        params=params,
        lookup=contact_lookup_for(key_value=key_value, params=params),
        occurred_at=occurred_at,
    )


# --- The fast path ------------------------------------------------------------------------
#
# Event ingest is Herald's busiest request, and for a valid event DRF's machinery (its
# Request wrapper, content negotiation, parser selection, the Response and its rendering)
# cost about as much as the view's own checks and the INSERT together. The common request
# (an API key with the events right, a JSON body, an answer in JSON) is therefore served
# here with the same authentication, checks and storage; anything else — no or a bad key,
# a missing right, another Content-Type or Accept, a body that is not valid JSON or fails a
# check — goes to the DRF view, which answers it exactly as before (a failing request
# repeats the cheap checks, never the INSERT, which runs last).
_JSON_TYPES = {
    "application/json",
    "application/json; charset=utf-8",
    "application/json;charset=utf-8",
}
_ANY_JSON = {"", "*/*", "application/json", "application/*"}
_api_key_authentication = APIKeyAuthentication()


def _fast_post(request, version: int) -> HttpResponse | None:
    meta = request.META
    if (
        meta.get("CONTENT_TYPE", "").lower() not in _JSON_TYPES
        or meta.get("HTTP_ACCEPT", "").strip() not in _ANY_JSON
        or meta.get("QUERY_STRING")  # perhaps DRF's ?format= override
    ):
        return None
    try:
        identity = _api_key_authentication.authenticate(request)
        if identity is None or not identity[1].grants(EventView.required_scope):
            return None
        body_size_check(request)
        data = json_body_load(request.body)  # the API's JSON parser, NUL check included
    except APIException:
        return None
    request.user = identity[0]  # as DRF's Request does
    try:
        event_id = event_store(data, version=version)
    except (ValidationError, HeraldError):  # the DRF view answers it (the API's error handler)
        return None
    response = HttpResponse(f'{{"id":{event_id}}}', content_type="application/json")
    response["Allow"] = _ALLOW
    return response

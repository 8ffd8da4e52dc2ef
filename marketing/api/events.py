"""Generate event: POST /api/v1/event and /api/v2/event. Shape checks here, storage in
marketing.events.

v1 `params` is a list of `{"name", "value"}` whose values are strings (nested JSON travels as
an escaped string); v2 also takes nested JSON values, and `params` may be a plain object.
Params are stored as one object `{name: value}` (a repeated name keeps its last value): that
is what templates read as `$data`.
"""

import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations.models import Scope
from marketing.events import (
    BODY_MAX_BYTES,
    KEY_VALUE_MAX,
    contact_lookup_for,
    event_ingest,
    event_type_key_problem,
)

PARAM_NAME_MAX = 200


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
            raw = json.loads(raw)
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
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT},
        description=(
            "Generate event. Body: `eventTypeKey` (1-100 characters: letters, digits, "
            "`- _ . :`; a new type is created on first use), `keyValue` (1-300 characters; a "
            "contact id, email or phone links the event to that contact, as do params "
            "contactId, externalCustomerId, email, phone), `params` (v1: `[{name, value}]` with "
            "string values; v2: values may be nested JSON, or `params` an object). At most "
            "20 kB. Answers `{id}` once stored; processing runs in a worker."
        ),
    )
    def post(self, request):
        # Checked before parsing, from the declared length first so a huge body is never
        # read: the limit exists to bound the work an event costs.
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        length = declared if declared > BODY_MAX_BYTES else len(request.body)
        if length > BODY_MAX_BYTES:
            raise _error(
                "body", f"at most {BODY_MAX_BYTES} bytes (20 kB) per event; got {length} bytes"
            )
        data = request.data
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
        params = params_parse(data.get("params"), version=self.version)
        key_value = key_value.strip()
        event_id = event_ingest(
            type_key=type_key,
            key_value=key_value,
            params=params,
            lookup=contact_lookup_for(key_value=key_value, params=params),
        )
        return Response({"id": event_id}, status=status.HTTP_200_OK)


class EventV2View(EventView):
    version = 2

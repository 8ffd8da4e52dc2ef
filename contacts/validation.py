"""Parse and normalise eSputnik v1 Contact objects, and serialise contacts back to them.

`contact_parse` turns one request object into a dict keyed by `Contact` column names holding
only what the request carried (so updates touch only those columns), or a list of
`(field, problem)` errors. It runs on 3000-row batches: no queries inside, custom fields are
loaded once per batch by the caller.
"""

import dataclasses
import datetime
import functools
import json
import re
import zoneinfo
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from contacts.channels import email_normalise, phone_normalise
from contacts.models import Contact, CustomField, CustomFieldType

FieldProblem = tuple[str, str]
# value → (normalised, None) or (None, problem), as contacts.channels answers.
Normaliser = Callable[[object], tuple[str | None, str | None]]

NAME_MAX = 40
TEXT_FIELD_MAX = 1000
ADDRESS_LIMITS = {"region": 100, "town": 100, "address": 255, "postcode": 20}
LANGUAGE_RE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "off"})

# The eSputnik v1 API's standard field names (contactFields) → the Contact columns they cover.
STANDARD_FIELDS: dict[str, tuple[str, ...]] = {
    "firstName": ("first_name",),
    "lastName": ("last_name",),
    "email": ("email",),
    "sms": ("phone",),
    "channels": ("email", "phone", "extra_channels"),
    "otherChannels": ("extra_channels",),
    "address": ("region", "town", "address", "postcode"),
    "region": ("region",),
    "town": ("town",),
    "postcode": ("postcode",),
    "languageCode": ("language_code",),
    "timeZone": ("time_zone",),
    "externalCustomerId": ("external_customer_id",),
    "tags": ("tags",),
}

# Columns a write may set, in the order the bulk SQL uses them.
WRITABLE_COLUMNS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "extra_channels",
    "region",
    "town",
    "address",
    "postcode",
    "language_code",
    "time_zone",
    "external_customer_id",
    "tags",
    "fields",
)

# A contact with its personal data erased; also what a new contact starts from.
PERSONAL_DATA_BLANKS: dict[str, object] = {
    "first_name": "",
    "last_name": "",
    "email": "",
    "phone": "",
    "extra_channels": [],
    "region": "",
    "town": "",
    "address": "",
    "postcode": "",
    "language_code": "",
    "time_zone": "",
    "external_customer_id": None,
    "tags": [],
    "fields": {},
}


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def custom_value_normalise(field: CustomField, value) -> tuple[object, str | None]:
    """The JSON value stored in Contact.fields, or a problem. None/"" clears the field."""
    if value is None or value == "":
        return None, None
    kind = field.type
    if kind == CustomFieldType.NUMBER:
        # Plain integers (most numbers in imports) need no Decimal round trip.
        if isinstance(value, str) and value.isascii() and value.isdigit():
            return int(value), None
        if isinstance(value, bool):
            return None, "must be a number"
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return None, f"'{value}' is not a number"
        if not number.is_finite():
            return None, f"'{value}' is not a number"
        return (int(number) if number == number.to_integral_value() else float(number)), None
    if kind == CustomFieldType.DATE:
        text = str(value).strip()
        try:
            if len(text) == 10:
                return datetime.date.fromisoformat(text).isoformat(), None
            return datetime.datetime.fromisoformat(text).date().isoformat(), None
        except ValueError:
            return None, f"'{value}' is not an ISO date (YYYY-MM-DD)"
    if kind == CustomFieldType.BOOLEAN:
        if isinstance(value, bool):
            return value, None
        word = str(value).strip().lower()
        if word in TRUE_WORDS:
            return True, None
        if word in FALSE_WORDS:
            return False, None
        return None, f"'{value}' is not a yes/no value (true or false)"
    if isinstance(value, (dict, list)):
        return None, "must be a string"
    text = value if isinstance(value, str) else json.dumps(value)
    if kind == CustomFieldType.CHOICE:
        if text not in field.allowed_values:
            allowed = ", ".join(field.allowed_values)
            return None, f"'{text}' is not one of the allowed values ({allowed})"
        return text, None
    if len(text) > TEXT_FIELD_MAX:
        return None, f"must be at most {TEXT_FIELD_MAX} characters"
    return text, None


def _string(raw: dict, key: str, limit: int, errors: list[FieldProblem], prefix: str = ""):
    value = raw[key]
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        errors.append((prefix + key, "must be a string"))
        return None
    value = value.strip()
    if len(value) > limit:
        errors.append((prefix + key, f"must be at most {limit} characters"))
        return None
    return value


def contact_parse(
    raw, *, custom_fields: dict[int, CustomField]
) -> tuple[dict | None, list[FieldProblem]]:
    """One eSputnik v1 Contact object → (columns present in it, errors). Unknown keys are ignored,
    as eSputnik does (clients send read-only `groups`, `id`, … back)."""
    if not isinstance(raw, dict):
        return None, [("", "must be a JSON object")]
    errors: list[FieldProblem] = []
    data: dict = {}

    if "id" in raw and raw["id"] not in (None, ""):
        try:
            data["id"] = int(raw["id"])
        except (TypeError, ValueError):
            errors.append(("id", "must be an integer"))

    for key, column in (("firstName", "first_name"), ("lastName", "last_name")):
        if key in raw:
            value = _string(raw, key, NAME_MAX, errors)
            if value is not None:
                data[column] = value

    if "channels" in raw:
        _parse_channels(raw["channels"], data, errors)

    if "address" in raw and raw["address"] is not None:
        address = raw["address"]
        if not isinstance(address, dict):
            errors.append(("address", "must be an object {region, town, address, postcode}"))
        else:
            for key, limit in ADDRESS_LIMITS.items():
                if key in address:
                    value = _string(address, key, limit, errors, "address.")
                    if value is not None:
                        data[key] = value

    if "languageCode" in raw:
        value = _string(raw, "languageCode", 10, errors)
        if value and not LANGUAGE_RE.match(value):
            errors.append(("languageCode", f"'{value}' is not a language code (e.g. en, uk)"))
        elif value is not None:
            data["language_code"] = value

    if "timeZone" in raw:
        value = _string(raw, "timeZone", 64, errors)
        if value and value not in _time_zones():
            errors.append(("timeZone", f"'{value}' is not an IANA time zone (e.g. Europe/Kyiv)"))
        elif value is not None:
            data["time_zone"] = value

    if "externalCustomerId" in raw:
        value = _string(raw, "externalCustomerId", 255, errors)
        if value is not None:
            data["external_customer_id"] = value or None

    if "tags" in raw and raw["tags"] is not None:
        tags = raw["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            errors.append(("tags", "must be a list of strings"))
        elif any(len(t) > 100 for t in tags):
            errors.append(("tags", "each tag must be at most 100 characters"))
        else:
            data["tags"] = list(dict.fromkeys(t.strip() for t in tags if t.strip()))

    if "fields" in raw and raw["fields"] is not None:
        _parse_fields(raw["fields"], custom_fields, data, errors)

    return (None if errors else data), errors


# A flat contact's string columns: (eSputnik v1 key, sub-key) → (column, length limit).
_FLAT_STRINGS: dict[tuple[str, str | None], tuple[str, int]] = {
    ("firstName", None): ("first_name", NAME_MAX),
    ("lastName", None): ("last_name", NAME_MAX),
    **{("address", key): (key, limit) for key, limit in ADDRESS_LIMITS.items()},
    ("languageCode", None): ("language_code", 10),
    ("timeZone", None): ("time_zone", 64),
    ("externalCustomerId", None): ("external_customer_id", 255),
}


def flat_contact_parse(
    plan: "FlatPlan", values: list[str], custom_fields: dict[int, CustomField]
) -> dict | None:
    """A contact given as one string per target of `plan` (a CSV row: values stripped of
    surrounding whitespace, an empty string absent) → the columns contact_parse would give
    for the Contact object it stands for, or None if any value is refused (contact_parse then
    words the errors).

    The same normalisers and limits as contact_parse, without building the Contact object and
    walking it: a file import runs this a million times.
    """
    data: dict = {}
    for position, column, limit in plan.strings:
        text = values[position]
        if text:
            if len(text) > limit:
                return None
            data[column] = text
    language = data.get("language_code")
    if language and not LANGUAGE_RE.match(language):
        return None
    zone = data.get("time_zone")
    if zone and zone not in _time_zones():
        return None
    if "external_customer_id" in data:
        data["external_customer_id"] = data["external_customer_id"] or None
    for position, column, normalise in plan.channels:
        value = values[position]
        if value:
            normalised, problem = normalise(value)
            if problem:
                return None
            data[column] = normalised
    if plan.fields:
        fields = {}
        known = plan.custom_values
        for position, field_id in plan.fields:
            value = values[position]
            if value:
                result = known.get((field_id, value))
                if result is None:
                    field = custom_fields.get(field_id)
                    if field is None:
                        return None
                    result = custom_value_normalise(field, value)
                    if len(known) < _KNOWN_VALUES_LIMIT:
                        known[(field_id, value)] = result
                stored, problem = result
                if problem:
                    return None
                fields[str(field_id)] = stored
        if fields:
            data["fields"] = fields
    return data


@dataclasses.dataclass(frozen=True)
class FlatPlan:
    """Where a flat contact's values go, by kind, worked out once per file."""

    strings: tuple[tuple[int, str, int], ...]  # position, column, length limit
    channels: tuple[tuple[int, str, Normaliser], ...]  # position, column, normaliser
    fields: tuple[tuple[int, int], ...]  # position, custom field id
    # (custom field id, value) → custom_value_normalise's result, for the values a file
    # repeats (choices, flags, small numbers): a plan serves one file, read against one
    # catalogue of custom fields.
    custom_values: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)


# The custom values a plan remembers, at most (a few MB).
_KNOWN_VALUES_LIMIT = 20000


def flat_plan(targets: list[tuple[str, str | int | None]]) -> FlatPlan:
    """The plan for values given per target: ("firstName", None), ("address", "town"),
    ("channel", "sms"), ("field", 12), … (csv_import's header targets)."""
    strings: list[tuple[int, str, int]] = []
    channels: list[tuple[int, str, Normaliser]] = []
    fields: list[tuple[int, int]] = []
    for position, target in enumerate(targets):
        match target:
            case ("channel", "email"):
                channels.append((position, "email", email_normalise))
            case ("channel", "sms"):
                channels.append((position, "phone", phone_normalise))
            case ("field", int(field_id)):
                fields.append((position, field_id))
            case (kind, str() | None as sub):
                # Unknown kinds raise: a target this parser does not know must not pass
                # silently.
                strings.append((position, *_FLAT_STRINGS[(kind, sub)]))
            case _:
                raise KeyError(target)
    return FlatPlan(tuple(strings), tuple(channels), tuple(fields))


def _parse_channels(channels, data: dict, errors: list[FieldProblem]) -> None:
    if channels is None:
        return
    if not isinstance(channels, list):
        errors.append(("channels", "must be a list of {type, value} objects"))
        return
    extra = []
    for position, channel in enumerate(channels):
        where = f"channels[{position}]"
        if not isinstance(channel, dict):
            errors.append((where, "must be an object {type, value}"))
            continue
        kind = channel.get("type")
        if not isinstance(kind, str) or not kind:
            errors.append((where + ".type", "is required (email, sms, mobilepush, …)"))
            continue
        kind = kind.lower()
        value = channel.get("value")
        if kind == "email":
            email, problem = email_normalise(value)
            if problem:
                errors.append((where + ".value", problem))
            else:
                data["email"] = email
        elif kind == "sms":
            phone, problem = phone_normalise(value)
            if problem:
                errors.append((where + ".value", problem))
            else:
                data["phone"] = phone
        else:
            if not isinstance(value, str) or not value:
                errors.append((where + ".value", "must be a non-empty string"))
            else:
                extra.append({"type": kind, "value": value})
    if extra:
        data["extra_channels"] = extra


def _parse_fields(fields, custom_fields, data: dict, errors: list[FieldProblem]) -> None:
    if not isinstance(fields, list):
        errors.append(("fields", "must be a list of {id, value} objects"))
        return
    parsed = {}
    for position, item in enumerate(fields):
        where = f"fields[{position}]"
        if not isinstance(item, dict) or "id" not in item:
            errors.append((where, "must be an object {id, value}"))
            continue
        try:
            field_id = int(item["id"])
        except (TypeError, ValueError):
            errors.append((where + ".id", "must be a custom field id (integer)"))
            continue
        field = custom_fields.get(field_id)
        if field is None:
            errors.append((where + ".id", f"no custom field with id {field_id}"))
            continue
        value, problem = custom_value_normalise(field, item.get("value"))
        if problem:
            errors.append((where + ".value", problem))
        else:
            parsed[str(field_id)] = value
    data["fields"] = parsed


def missing_required(
    data: dict, custom_fields: dict[int, CustomField], existing: dict | None = None
) -> list[FieldProblem]:
    """Required custom fields a contact would lack after this write."""
    required = [field for field in custom_fields.values() if field.required]
    if not required:
        return []
    values = {**(existing or {}), **data.get("fields", {})}
    return [
        ("fields", f"custom field {field.id} ({field.name}) is required")
        for field in required
        if values.get(str(field.id)) in (None, "")
    ]


def new_contact_errors(parsed: dict, custom_fields, existing_fields=None) -> list[FieldProblem]:
    errors = missing_required(parsed, custom_fields, existing_fields)
    if not (
        parsed.get("email")
        or parsed.get("phone")
        or parsed.get("extra_channels")
        or parsed.get("external_customer_id")
    ):
        errors.append(("channels", "a new contact needs an email or sms channel"))
    return errors


def errors_reason(errors: list[FieldProblem]) -> str:
    return "; ".join(f"{field}: {problem}" if field else problem for field, problem in errors)


def errors_body(errors: list[FieldProblem], prefix: str = "") -> dict:
    """DRF-style 400 body: {"field": ["problem", …]}."""
    body: dict[str, list[str]] = {}
    for field, problem in errors:
        key = f"{prefix}.{field}" if prefix and field else (prefix or field or "non_field_errors")
        body.setdefault(key, []).append(problem)
    return body


def fields_merge(current: dict, changes: dict) -> dict:
    merged = {**current, **changes}
    return {key: value for key, value in merged.items() if value is not None}


def contact_to_api(contact: Contact, *, groups: list[str] | None = None) -> dict:
    """A contact as the eSputnik v1 API's Contact object. `groups` defaults to the prefetched
    segments."""
    channels = []
    if contact.email:
        channels.append({"type": "email", "value": contact.email})
    if contact.phone:
        channels.append({"type": "sms", "value": contact.phone})
    channels.extend(contact.extra_channels or [])
    if groups is None:
        groups = [segment.name for segment in contact.segments.all()]
    return {
        "id": contact.id,
        "firstName": contact.first_name,
        "lastName": contact.last_name,
        "channels": channels,
        "address": {
            "region": contact.region,
            "town": contact.town,
            "address": contact.address,
            "postcode": contact.postcode,
        },
        "fields": [
            {"id": int(key) if key.isdigit() else key, "value": value}
            for key, value in sorted(contact.fields.items())
        ],
        "externalCustomerId": contact.external_customer_id,
        "languageCode": contact.language_code,
        "timeZone": contact.time_zone,
        "groups": groups,
        "tags": list(contact.tags or []),
        "confirmed": contact.confirmed,
        "source": contact.source,
        "createdAt": contact.created_at.isoformat() if contact.created_at else None,
        "updatedAt": contact.updated_at.isoformat() if contact.updated_at else None,
        "deleted": contact.deleted_at is not None,
    }


def contact_shape_errors(
    raw, custom_fields: dict[int, CustomField] | None = None
) -> list[FieldProblem]:
    """The checks a bulk request answers at once, each row alone: its shape, its channels
    (an email or phone the import could not store: the same checks and words as
    contact_parse's) and, given the catalogue, its custom field ids and values. What needs
    the stored contacts (dedupe, conflicts, a new contact's required fields) runs in the
    job and is reported by the import status."""
    if not isinstance(raw, dict):
        return [("", "must be a JSON object")]
    errors: list[FieldProblem] = []
    channels = raw.get("channels")
    if channels is not None:
        _parse_channels(channels, {}, errors)
    for key in ("firstName", "lastName"):
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            errors.append((key, "must be a string"))
        elif value and len(value.strip()) > NAME_MAX:
            errors.append((key, f"must be at most {NAME_MAX} characters"))
    for key, kind, label in (
        ("address", dict, "an object"),
        ("fields", list, "a list of {id, value} objects"),
        ("tags", list, "a list of strings"),
    ):
        value = raw.get(key)
        if value is not None and not isinstance(value, kind):
            errors.append((key, f"must be {label}"))
    fields = raw.get("fields")
    if custom_fields is not None and isinstance(fields, list) and fields:
        _parse_fields(fields, custom_fields, {}, errors)
    return errors


DEDUPE_ON = ("email", "sms", "email_or_sms", "id", "fieldId")
EVENT_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


def _string_list(value, field: str, errors: list[FieldProblem]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        errors.append((field, "must be a list of non-empty strings"))
        return []
    return list(dict.fromkeys(v.strip() for v in value))


def import_options_parse(body: dict) -> tuple[dict, list[FieldProblem]]:
    """The options of POST /v1/contacts (and CSV imports) → normalised options, errors."""
    errors: list[FieldProblem] = []
    options: dict = {}
    dedupe_on = body.get("dedupeOn") or "email"
    if dedupe_on not in DEDUPE_ON:
        errors.append(("dedupeOn", f"must be one of {', '.join(DEDUPE_ON)}"))
    options["dedupeOn"] = dedupe_on
    if dedupe_on == "fieldId":
        try:
            options["fieldId"] = int(body["fieldId"])
        except (KeyError, TypeError, ValueError):
            errors.append(("fieldId", "dedupeOn=fieldId needs fieldId, a custom field id"))
    contact_fields = body.get("contactFields")
    if contact_fields is not None:
        names = _string_list(contact_fields, "contactFields", errors)
        unknown = [name for name in names if name not in STANDARD_FIELDS]
        if unknown:
            errors.append(
                (
                    "contactFields",
                    f"unknown field(s) {', '.join(unknown)}; known: {', '.join(STANDARD_FIELDS)}",
                )
            )
        options["contactFields"] = names
    ids = body.get("customFieldsIDs")
    if ids is not None:
        try:
            if not isinstance(ids, list):
                raise TypeError
            options["customFieldsIDs"] = [int(i) for i in ids]
        except (TypeError, ValueError):
            errors.append(("customFieldsIDs", "must be a list of custom field ids (integers)"))
    options["groupNames"] = _string_list(body.get("groupNames"), "groupNames", errors)
    options["groupNamesExclude"] = _string_list(
        body.get("groupNamesExclude"), "groupNamesExclude", errors
    )
    restore = body.get("restoreDeleted", False)
    if isinstance(restore, str) and restore.lower() in TRUE_WORDS | FALSE_WORDS:
        restore = restore.lower() in TRUE_WORDS
    if not isinstance(restore, bool):
        errors.append(("restoreDeleted", "must be true or false"))
    options["restoreDeleted"] = restore is True
    event_key = body.get("eventKeyForNewContacts")
    if event_key not in (None, ""):
        if not isinstance(event_key, str) or not EVENT_KEY_RE.match(event_key):
            errors.append(
                ("eventKeyForNewContacts", "must be latin letters and digits without spaces")
            )
        else:
            options["eventKeyForNewContacts"] = event_key
    return options, errors

"""Parse and normalise seed (eSputnik) Contact objects, and serialise contacts back to them.

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

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from contacts.models import Contact, CustomField, CustomFieldType

FieldError = tuple[str, str]

NAME_MAX = 40
TEXT_FIELD_MAX = 1000
ADDRESS_LIMITS = {"region": 100, "town": 100, "address": 255, "postcode": 20}
LANGUAGE_RE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "off"})

# The seed's standard field names (contactFields) → the Contact columns they cover.
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


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def custom_fields_load() -> dict[int, CustomField]:
    return {field.id: field for field in CustomField.objects.all()}


# RFC 5322 dot-atom: the only ASCII local parts email-validator accepts unquoted.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM_LOCAL = re.compile(rf"^{_ATEXT}+(?:\.{_ATEXT}+)*$")


@functools.lru_cache(maxsize=8192)
def _email_domain(domain: str) -> str | None:
    """The normalised domain, per email-validator, or None. Cached: domains repeat (gmail.com)
    while addresses do not, and the domain rules are most of email-validator's cost."""
    try:
        return validate_email(f"x@{domain}", check_deliverability=False).domain.lower()
    except EmailNotValidError:
        return None


def email_normalise(value) -> tuple[str | None, str | None]:
    """(normalised address, None) or (None, problem)."""
    if not isinstance(value, str) or not value.strip():
        return None, "must be a non-empty string"
    address = value.strip()
    local, at, domain = address.rpartition("@")
    # Fast path for plain ASCII addresses: the local part is checked here exactly as
    # email-validator would, the domain by email-validator itself (cached).
    if at and len(local) <= 64 and len(address) <= 254 and _DOT_ATOM_LOCAL.match(local):
        normalised_domain = _email_domain(domain) if domain.isascii() else None
        if normalised_domain is not None:
            return f"{local}@{normalised_domain}".lower(), None
    try:
        result = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return None, f"'{value}' is not a valid email address ({exc})"
    return result.normalized.lower(), None


def _phone_digits_e164(digits: str) -> str | None:
    """The E.164 form of "+<digits>" when it is valid and plainly written, else None (decide
    with the full parser).

    phonenumbers.parse spends most of its time finding a number inside free text (RFC 3966,
    extensions, punctuation, letters); for ASCII digits after "+" all of that is identity,
    and what remains is the library's own country-code split. Numbers whose national part
    starts with 0 (Italian leading zeros) or matches the region's national prefix pattern
    (which parse might strip) are left to the full parser, so an accepted number has exactly
    the country code and national number parse would give, and validity is then the
    library's own check on that number (_national_check). tests/contacts/
    test_validation_fast.py compares both paths over every country code.
    """
    if not 3 <= len(digits) <= _PHONE_MAX_DIGITS or not (digits.isascii() and digits.isdigit()):
        return None
    country_code, national = _split_calling_code(digits)
    if not country_code:
        return None
    key = (country_code, len(national))
    check = _NATIONAL_CHECKS.get(key)
    if check is None:
        check = _NATIONAL_CHECKS[key] = _national_check(*key)
    return "+" + digits if check(national) else None


# parse's own bounds: a national number of 2 to 17 digits after a calling code of up to 3.
_PHONE_MAX_DIGITS = 20


def _calling_code_prefixes() -> dict[str, tuple[int, int]]:
    """Every string of one to three digits that starts with a calling code → (the code, its
    length): phonenumbers' _extract_country_code (the shortest prefix that is a calling code,
    none starting with 0) as one dictionary lookup on a number's first three digits."""
    codes = {str(code): code for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}
    prefixes = {}
    for length in (1, 2, 3):
        for number in range(10 ** (length - 1), 10**length):
            digits = str(number)
            for size in range(1, length + 1):
                code = codes.get(digits[:size])
                if code is not None:
                    prefixes[digits] = (code, size)
                    break
    return prefixes


_CALLING_CODE_PREFIXES = _calling_code_prefixes()


def _split_calling_code(digits: str) -> tuple[int, str]:
    split = _CALLING_CODE_PREFIXES.get(digits[:3])
    if split is None:
        return 0, digits
    return split[0], digits[split[1] :]


# (calling code, national number length) → the check of a national number of that code and
# length (_national_check), built when first needed.
_NATIONAL_CHECKS: dict[tuple[int, int], Callable[[str], object]] = {}


def _never(national: str) -> bool:
    return False


def _phone_metadata(country_code: int):
    region = phonenumbers.region_code_for_country_code(country_code)
    return phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)


def _national_check(country_code: int, length: int) -> Callable[[str], object]:
    """A check that a national number of `length` digits (after `country_code`) needs no
    more than the split: it does not start with 0 nor match the national prefix for parsing
    (parse might strip either), and phonenumbers.is_valid_number holds for it.

    is_valid_number asks whether the number has a type in its region: it matches the
    general description and then premium rate, toll free, …, fixed line, or mobile (mobile
    only when its pattern differs from fixed line's), each a length check and a full match.
    For a calling code of a single region all of that is one regular expression, built for
    this length: a type whose possible lengths exclude it is left out, so no length is
    checked per number, and one pass of the regex engine replaces a dozen Python-level
    calls. Elsewhere (+1, +7, +44: several regions) the library decides."""
    metadata = _phone_metadata(country_code)
    if metadata is None or not 2 <= length <= 17:
        return _never
    prefix = metadata.national_prefix_for_parsing
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    if len(regions) == 1 and not (prefix and _GROUP_REFERENCE.search(prefix)):
        try:
            general = _phone_desc_regex(metadata.general_desc, length)
            kinds = [_phone_desc_regex(getattr(metadata, name), length) for name in _TYPE_DESCS]
            if not metadata.same_mobile_and_fixed_line_pattern:
                kinds.append(_phone_desc_regex(metadata.mobile, length))
        except ValueError:
            pass
        else:
            kinds = [kind for kind in kinds if kind is not None]
            if general is not None and kinds:
                refused = f"(?!0)(?!{prefix})" if prefix else "(?!0)"
                return re.compile(f"{refused}(?={general})(?:{'|'.join(kinds)})").match
    prefix_match = re.compile(prefix).match if prefix else _never

    def library_check(national: str) -> bool:
        if national[0] == "0" or prefix_match(national):
            return False
        number = phonenumbers.PhoneNumber(country_code=country_code, national_number=int(national))
        return phonenumbers.is_valid_number(number)

    return library_check


# A named group or a back reference could change meaning once patterns are combined.
_GROUP_REFERENCE = re.compile(r"\\(?!d)|\(\?P")

# is_valid_number's number types, in its order (mobile is added when it differs from fixed
# line).
_TYPE_DESCS = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
)


def _phone_desc_regex(desc, length: int) -> str | None:
    """A desc as the library matches a national number of `length` digits against it: None
    when it cannot match (no pattern, or the length is not among its possible lengths), else
    its pattern, anchored at the end. Raises ValueError for a pattern unsafe to combine."""
    if desc is None or not desc.national_number_pattern:
        return None
    # An empty list allows every length; -1 alone marks "no number of this type".
    if desc.possible_length and length not in desc.possible_length:
        return None
    pattern = desc.national_number_pattern
    if _GROUP_REFERENCE.search(pattern):
        raise ValueError("leave this region to the library")
    return f"(?:{pattern})\\Z"


def phone_normalise(value) -> tuple[str | None, str | None]:
    """(E.164 number, None) or (None, problem). The seed sends "380942583691" without "+"."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        return None, "must be a non-empty string"
    raw = value.strip()
    # The common case, decided without the free-text parser; the first candidate below.
    fast = _phone_digits_e164(raw[2:] if raw.startswith("00") else raw.removeprefix("+"))
    if fast is not None:
        return fast, None
    full = phone_e164_full(raw)
    if full is not None:
        return full, None
    return None, f"'{value}' is not a valid phone number (international format, e.g. +380942583691)"


def phone_e164_full(raw: str) -> str | None:
    """The E.164 form of a stripped phone text by phonenumbers' free-text parser alone, or None
    (the reference the fast path agrees with)."""
    # A national number without "+" (e.g. 0501234567) names no country: refused, not guessed.
    candidates = [raw] if raw.startswith("+") else ["+" + raw]
    if raw.startswith("00"):
        candidates.insert(0, "+" + raw[2:])
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, None)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


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


def _string(raw: dict, key: str, limit: int, errors: list[FieldError], prefix: str = ""):
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
) -> tuple[dict | None, list[FieldError]]:
    """One seed Contact object → (columns present in it, errors). Unknown keys are ignored,
    as eSputnik does (clients send read-only `groups`, `id`, … back)."""
    if not isinstance(raw, dict):
        return None, [("", "must be a JSON object")]
    errors: list[FieldError] = []
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


# A flat contact's string columns: (seed key, sub-key) → (column, length limit).
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
    for the seed object it stands for, or None if any value is refused (contact_parse then
    words the errors).

    The same normalisers and limits as contact_parse, without building the seed object and
    walking it: a file import runs this a million times.
    """
    data: dict = {}
    for position, column, limit in plan.strings:
        text = values[position]
        if text:
            if len(text) > limit:
                return None
            data[column] = text
    text = data.get("language_code")
    if text and not LANGUAGE_RE.match(text):
        return None
    text = data.get("time_zone")
    if text and text not in _time_zones():
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
                normalised, problem = result
                if problem:
                    return None
                fields[str(field_id)] = normalised
        if fields:
            data["fields"] = fields
    return data


@dataclasses.dataclass(frozen=True)
class FlatPlan:
    """Where a flat contact's values go, by kind, worked out once per file."""

    strings: tuple[tuple[int, str, int], ...]  # position, column, length limit
    channels: tuple[tuple[int, str, object], ...]  # position, column, normaliser
    fields: tuple[tuple[int, int], ...]  # position, custom field id
    # (custom field id, value) → custom_value_normalise's result, for the values a file
    # repeats (choices, flags, small numbers): a plan serves one file, read against one
    # catalogue of custom fields.
    custom_values: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)


# The custom values a plan remembers, at most (a few MB).
_KNOWN_VALUES_LIMIT = 20000


def flat_plan(targets: list[tuple[str, object]]) -> FlatPlan:
    """The plan for values given per target: ("firstName", None), ("address", "town"),
    ("channel", "sms"), ("field", 12), … (csv_import's header targets)."""
    strings, channels, fields = [], [], []
    for position, (kind, sub) in enumerate(targets):
        if kind == "channel" and sub == "email":
            channels.append((position, "email", email_normalise))
        elif kind == "channel" and sub == "sms":
            channels.append((position, "phone", phone_normalise))
        elif kind == "field":
            fields.append((position, sub))
        else:
            # Unknown kinds raise: a target this parser does not know must not pass silently.
            strings.append((position, *_FLAT_STRINGS[(kind, sub)]))
    return FlatPlan(tuple(strings), tuple(channels), tuple(fields))


def _parse_channels(channels, data: dict, errors: list[FieldError]) -> None:
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


def _parse_fields(fields, custom_fields, data: dict, errors: list[FieldError]) -> None:
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
) -> list[FieldError]:
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


def errors_reason(errors: list[FieldError]) -> str:
    return "; ".join(f"{field}: {problem}" if field else problem for field, problem in errors)


def errors_body(errors: list[FieldError], prefix: str = "") -> dict:
    """DRF-style 400 body: {"field": ["problem", …]}."""
    body: dict[str, list[str]] = {}
    for field, problem in errors:
        key = f"{prefix}.{field}" if prefix and field else (prefix or field or "non_field_errors")
        body.setdefault(key, []).append(problem)
    return body


def fields_merge(current: dict, changes: dict) -> dict:
    merged = {**current, **changes}
    return {key: value for key, value in merged.items() if value is not None}


def contact_to_seed(contact: Contact, *, groups: list[str] | None = None) -> dict:
    """A contact as the seed's Contact object. `groups` defaults to the prefetched segments."""
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


def contact_shape_errors(raw) -> list[FieldError]:
    """Cheap structural checks a bulk request answers at once; full checks run in the job."""
    if not isinstance(raw, dict):
        return [("", "must be a JSON object")]
    errors: list[FieldError] = []
    channels = raw.get("channels")
    if channels is not None:
        if not isinstance(channels, list):
            errors.append(("channels", "must be a list of {type, value} objects"))
        else:
            for position, channel in enumerate(channels):
                if not isinstance(channel, dict) or not isinstance(channel.get("type"), str):
                    errors.append((f"channels[{position}]", "must be an object {type, value}"))
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
    return errors


DEDUPE_ON = ("email", "sms", "email_or_sms", "id", "fieldId")
EVENT_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


def _string_list(value, field: str, errors: list[FieldError]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        errors.append((field, "must be a list of non-empty strings"))
        return []
    return list(dict.fromkeys(v.strip() for v in value))


def import_options_parse(body: dict) -> tuple[dict, list[FieldError]]:
    """The options of POST /v1/contacts (and CSV imports) → normalised options, errors."""
    errors: list[FieldError] = []
    options: dict = {}
    dedupe_on = body.get("dedupeOn") or "email"
    if dedupe_on not in DEDUPE_ON:
        errors.append(("dedupeOn", f"must be one of {', '.join(DEDUPE_ON)}"))
    options["dedupeOn"] = dedupe_on
    if dedupe_on == "fieldId":
        try:
            options["fieldId"] = int(body.get("fieldId"))
        except (TypeError, ValueError):
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

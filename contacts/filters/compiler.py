"""The segment filter compiler: the dynamic filter language, compiled to one SQL query over
Contact, and the segment resolution built on it.

A filter is a JSON object (the CRM campaigns API's DynamicQuery style, Mongo-like). That API's
audience wrapper `{"datatype": "contact", "where": {...}}` is accepted and unwrapped.

    {"tags": {"$in": ["prospect", "vip"]}, "languageCode": "en",
     "fields.12": {"$gte": 50}, "$or": [{"town": "Kyiv"}, {"region": "Lviv"}]}

- Several keys in one object mean AND; a bare value means `$eq`; several operators on one
  field mean AND (`{"fields.12": {"$gte": 1, "$lt": 5}}`).
- Logic: `$and: [filters]`, `$or: [filters]`, `$not: filter` at filter level, and
  `{"<field>": {"$not": {operators}}}` at field level.
- Operators: $eq $ne $gt $gte $lt $lte $in $nin $contains $exists ($all is an alias of
  $contains for tags). `{"x": null}` means `{"x": {"$exists": false}}`.
- A list value may also be sent as a comma-separated string (`"vip,prospect"`).
- Negation is two-valued: `$ne`, `$nin` and `$not` match contacts that lack the value
  (an empty town, a missing custom field), as users expect.

Fields:

- Standard (strings): firstName, lastName, email (compared lower-cased), sms (alias phone),
  region, town, address, postcode, languageCode, timeZone, externalCustomerId, source
  (a ContactSource value). `$exists` means "not empty"; `$contains` is a case-insensitive
  substring; `$gt`.. compare as text.
- id (contact id, integer); createdAt (ISO datetime, or a date meaning that whole day in the
  current time zone); confirmed (boolean); unsubscribed (boolean: the contact's email is on
  the unsubscribed list).
- channels: which channels a contact can be reached on. `{"channels": {"$contains": "email"}}`
  (or bare `"email"`): has that channel; `$in`: has any of them; `$nin`: has none; `$exists`:
  has any channel at all. email and sms are the contact's email/phone columns, other channel
  types live in `extra_channels`.
- tags: bare string or `$contains`/`$all` (string or list): has all of them (`tags @> …`);
  `$in`: has any (`tags && …`); `$nin`: has none; `$eq`/`$ne` with a list: exactly that set;
  `$exists`: has at least one tag. Both forms are served by the GIN index on tags.
- segment (alias segments): membership of a segment by id. Bare id, `$eq`, `$ne`, `$in`,
  `$nin`. A static segment is its member rows; a dynamic one is its own filter, inlined.
- `rfm.recency`, `rfm.frequency`, `rfm.monetary`: the contact's RFM scores (integers 1-5,
  5 best; marketing.rfm) with $eq $ne $in $nin $gt $gte $lt $lte $exists. A contact without
  delivered orders has no scores: it matches only `$exists: false` and the negations.
- `fields.<id>`: a custom field, typed by CustomField.type. `$eq`/`$in` compile to JSONB
  containment (`fields @> '{"<id>": value}'`), which the jsonb_path_ops GIN index serves.
  Numbers compare numerically, dates (ISO `YYYY-MM-DD` values) as dates; values of the wrong
  shape stored in a contact never match an ordering comparison (they never raise).
  Numbers are matched by `$eq` whether stored as JSON numbers or canonical numeric strings.

Deleted contacts are always excluded. Any unknown field or operator, or a value of the wrong
type, raises FilterError(path, message) with a path like `fields.12.$gt` or `$or.1.town`.

(A little over 600 lines: this reference of the language stays beside its one compiler.)
"""

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import (
    CharField,
    DecimalField,
    Exists,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    IsNull,
    LessThan,
    LessThanOrEqual,
)
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from config.core.errors import HeraldError
from contacts.custom_fields import custom_fields_load
from contacts.filters.expressions import JsonIsoDate, JsonKeyText, JsonNumber, Total
from contacts.models import (
    ChannelType,
    Contact,
    ContactSource,
    CustomField,
    CustomFieldType,
    Segment,
    SegmentKind,
    SegmentMembership,
    Unsubscribed,
)

MAX_DEPTH = 12
MAX_LIST = 10_000
# A dynamic segment may refer to another; this bounds the chain (and stops cycles).
MAX_SEGMENT_NESTING = 5


class FilterError(HeraldError):
    """A filter the user wrote is wrong; `path` names where (e.g. `fields.12.$gt`). The API
    names it under the request's `filter` (`filter.fields.12.$gt`)."""

    def __init__(self, path: str, message: str):
        super().__init__(message, field=path)
        self.path = path or "filter"

    def body(self) -> dict[str, Any]:
        return {self.request_field: [self.message]}

    @property
    def request_field(self) -> str:
        return "filter" if self.path == "filter" else f"filter.{self.path}"


STRING_FIELDS = {
    "firstName": "first_name",
    "lastName": "last_name",
    "email": "email",
    "sms": "phone",
    "phone": "phone",
    "region": "region",
    "town": "town",
    "address": "address",
    "postcode": "postcode",
    "languageCode": "language_code",
    "timeZone": "time_zone",
    "externalCustomerId": "external_customer_id",
    "source": "source",
}
ORDER_OPS = {
    "$gt": GreaterThan,
    "$gte": GreaterThanOrEqual,
    "$lt": LessThan,
    "$lte": LessThanOrEqual,
}
ALL_OPS = {"$eq", "$ne", "$in", "$nin", "$contains", "$exists", "$not", "$all", *ORDER_OPS}
# Fields that apps above contacts add to the language (marketing's RFM scores), installed when
# Django loads those apps: name → predicate(op, value, path) → Q over contacts.
REGISTERED_FIELDS: dict[str, Callable[[str, Any, str], Q]] = {}


def filter_field_register(name: str, predicate: Callable[[str, Any, str], Q]) -> None:
    REGISTERED_FIELDS[name] = predicate


CUSTOM_FIELD_RE = re.compile(r"fields\.([0-9]{1,18})")


class _Compiler:
    def __init__(self, segment_depth: int = 0, pending: Segment | None = None):
        self.segment_depth = segment_depth
        self._custom_fields: dict[int, CustomField] | None = None
        # A segment about to be saved: read as it will be, not as it is stored.
        self.pending = pending

    # -- structure -------------------------------------------------------------------------

    def filter(self, node: Any, path: str, depth: int = 0) -> Q:
        if depth > MAX_DEPTH:
            raise FilterError(path, f"nested deeper than {MAX_DEPTH} levels")
        if not isinstance(node, dict):
            raise FilterError(path, "expected an object")
        q = Q()
        for key, value in node.items():
            sub = _join(path, key)
            if key == "$and":
                q &= self._all(self._filter_list(value, sub, depth))
            elif key == "$or":
                parts = self._filter_list(value, sub, depth)
                either = Q()
                for part in parts:
                    either |= part
                q &= either
            elif key == "$not":
                q &= ~self.filter(value, sub, depth + 1)
            elif key.startswith("$"):
                raise FilterError(sub, f"unknown operator {key!r} here")
            else:
                q &= self.field(key, value, sub, depth)
        return q

    def _filter_list(self, value: Any, path: str, depth: int) -> list[Q]:
        if not isinstance(value, list) or not value:
            raise FilterError(path, "expected a non-empty list of filters")
        return [self.filter(item, f"{path}.{i}", depth + 1) for i, item in enumerate(value)]

    @staticmethod
    def _all(parts: list[Q]) -> Q:
        q = Q()
        for part in parts:
            q &= part
        return q

    def field(self, name: str, spec: Any, path: str, depth: int) -> Q:
        if depth > MAX_DEPTH:
            raise FilterError(path, f"nested deeper than {MAX_DEPTH} levels")
        predicate = self._predicate_for(name, path)
        if not isinstance(spec, dict):
            spec = {"$eq": spec}
        if not spec:
            raise FilterError(path, "expected at least one operator")
        q = Q()
        for op, value in spec.items():
            sub = f"{path}.{op}"
            if op not in ALL_OPS:
                raise FilterError(sub, f"unknown operator {op!r}")
            if op == "$not":
                if not isinstance(value, dict):
                    raise FilterError(sub, "expected an object of operators")
                q &= ~self.field(name, value, sub, depth + 1)
                continue
            if value is None and op in ("$eq", "$ne"):
                op, value = "$exists", op == "$ne"
            if op == "$exists" and not isinstance(value, bool):
                raise FilterError(sub, "expected true or false")
            q &= predicate(op, value, sub)
        return q

    def _predicate_for(self, name: str, path: str):
        if name in STRING_FIELDS:
            return lambda op, value, sub: self.string_field(name, op, value, sub)
        if name == "id":
            return self.id_field
        if name == "createdAt":
            return self.created_at
        if name == "confirmed":
            return lambda op, value, sub: self.boolean(Q(confirmed=True), op, value, sub)
        if name == "unsubscribed":
            unsubscribed = Q(Exists(Unsubscribed.objects.filter(email=OuterRef("email"))))
            return lambda op, value, sub: self.boolean(unsubscribed, op, value, sub)
        if name == "channels":
            return self.channels
        if name == "tags":
            return self.tags
        if name in ("segment", "segments"):
            return self.segment
        if name in REGISTERED_FIELDS:
            return REGISTERED_FIELDS[name]
        match = CUSTOM_FIELD_RE.fullmatch(name)
        if match:
            field = self.custom_fields().get(int(match.group(1)))
            if field is None:
                raise FilterError(path, f"no custom field with id {match.group(1)}")
            return lambda op, value, sub: self.custom_field(field, op, value, sub)
        raise FilterError(path, f"unknown field {name!r}")

    # -- field families --------------------------------------------------------------------

    def string_field(self, name: str, op: str, value: Any, path: str) -> Q:
        column = STRING_FIELDS[name]
        if op == "$exists":
            present = Q(**{f"{column}__gt": ""})  # NULL and "" are both "absent"
            return present if value else ~present
        if op in ("$in", "$nin"):
            values = [
                self._string(name, v, f"{path}.{i}") for i, v in enumerate(list_value(value, path))
            ]
            q = Q(**{f"{column}__in": values})
            return q if op == "$in" else ~q
        if op in ("$all",):
            raise FilterError(path, f"operator {op!r} does not apply to {name}")
        text = self._string(name, value, path)
        if op == "$eq":
            return Q(**{column: text})
        if op == "$ne":
            return ~Q(**{column: text})
        if op == "$contains":
            return Q(**{f"{column}__icontains": text})
        return Q(**{f"{column}__{ORDER_OPS[op].lookup_name}": text})

    @staticmethod
    def _string(name: str, value: Any, path: str) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise FilterError(path, "expected a string")
        text = str(value).strip()
        if name == "email":
            text = text.lower()
        if name == "source" and text not in ContactSource.values:
            raise FilterError(path, f"unknown source {text!r}; one of {ContactSource.values}")
        return text

    def id_field(self, op: str, value: Any, path: str) -> Q:
        if op == "$exists":
            return Q() if value else Q(pk__in=[])
        if op in ("$in", "$nin"):
            ids = [_int(v, f"{path}.{i}") for i, v in enumerate(list_value(value, path))]
            q = Q(pk__in=ids)
            return q if op == "$in" else ~q
        if op in ("$contains", "$all"):
            raise FilterError(path, f"operator {op!r} does not apply to id")
        number = _int(value, path)
        if op == "$eq":
            return Q(pk=number)
        if op == "$ne":
            return ~Q(pk=number)
        return Q(**{f"pk__{ORDER_OPS[op].lookup_name}": number})

    def created_at(self, op: str, value: Any, path: str) -> Q:
        if op == "$exists":
            return Q() if value else Q(pk__in=[])
        if op in ("$in", "$nin", "$contains", "$all"):
            raise FilterError(path, f"operator {op!r} does not apply to createdAt")
        start, end = _instant_range(value, path)
        # A date is a whole day; comparing with its bounds keeps the created_at index usable.
        if op == "$ne":
            return ~Q(created_at__gte=start, created_at__lt=end)
        return {
            "$eq": Q(created_at__gte=start, created_at__lt=end),
            "$gt": Q(created_at__gte=end),
            "$gte": Q(created_at__gte=start),
            "$lt": Q(created_at__lt=start),
            "$lte": Q(created_at__lt=end),
        }[op]

    @staticmethod
    def boolean(true_q: Q, op: str, value: Any, path: str) -> Q:
        if op not in ("$eq", "$ne"):
            raise FilterError(path, f"operator {op!r} does not apply to a yes/no field")
        if not isinstance(value, bool):
            raise FilterError(path, "expected true or false")
        return true_q if value == (op == "$eq") else ~true_q

    def channels(self, op: str, value: Any, path: str) -> Q:
        if op == "$exists":
            anyq = Q(email__gt="") | Q(phone__gt="") | ~Q(extra_channels=[])
            return anyq if value else ~anyq
        if op in ("$eq", "$contains", "$all"):
            types = [value] if isinstance(value, str) else list_value(value, path)
            return self._all([self._channel(t, f"{path}") for t in types])
        if op in ("$in", "$nin"):
            anyq = Q()
            for i, t in enumerate(list_value(value, path)):
                anyq |= self._channel(t, f"{path}.{i}")
            return anyq if op == "$in" else ~anyq
        if op == "$ne":
            return ~self._channel(value, path)
        raise FilterError(path, f"operator {op!r} does not apply to channels")

    @staticmethod
    def _channel(kind: Any, path: str) -> Q:
        if kind not in ChannelType.values:
            raise FilterError(path, f"unknown channel {kind!r}; one of {ChannelType.values}")
        if kind == ChannelType.EMAIL:
            return Q(email__gt="")
        if kind == ChannelType.SMS:
            return Q(phone__gt="")
        return Q(extra_channels__contains=[{"type": kind}])

    def tags(self, op: str, value: Any, path: str) -> Q:
        if op == "$exists":
            return ~Q(tags=[]) if value else Q(tags=[])
        if op in ("$gt", "$gte", "$lt", "$lte"):
            raise FilterError(path, f"operator {op!r} does not apply to tags")
        if isinstance(value, str) and op in ("$eq", "$ne", "$contains", "$all"):
            has = Q(tags__contains=[self._tag(value, path)])
            return ~has if op == "$ne" else has
        tags = [self._tag(v, f"{path}.{i}") for i, v in enumerate(list_value(value, path))]
        if op in ("$contains", "$all"):
            return Q(tags__contains=tags)
        if op == "$in":
            return Q(tags__overlap=tags)
        if op == "$nin":
            return ~Q(tags__overlap=tags)
        same_set = Q(tags__contains=tags) & Q(tags__contained_by=tags)
        return same_set if op == "$eq" else ~same_set

    @staticmethod
    def _tag(value: Any, path: str) -> str:
        if not isinstance(value, str) or not value:
            raise FilterError(path, "expected a non-empty string tag")
        return value

    def segment(self, op: str, value: Any, path: str) -> Q:
        if op in ("$eq", "$ne"):
            ids = [_int(value, path)]
        elif op in ("$in", "$nin"):
            ids = [_int(v, f"{path}.{i}") for i, v in enumerate(list_value(value, path))]
        else:
            raise FilterError(path, f"operator {op!r} does not apply to segment")
        segments = {s.pk: s for s in Segment.objects.filter(pk__in=ids)}
        if self.pending is not None and self.pending.pk in segments:
            segments[self.pending.pk] = self.pending
        member = Q()
        static_ids = []
        for i, segment_id in enumerate(ids):
            segment = segments.get(segment_id)
            if segment is None:
                raise FilterError(
                    path if op in ("$eq", "$ne") else f"{path}.{i}",
                    f"no segment with id {segment_id}",
                )
            if segment.kind == SegmentKind.STATIC:
                static_ids.append(segment_id)
            else:
                member |= self._dynamic_segment(segment, path)
        if static_ids:
            member |= Q(
                Exists(
                    SegmentMembership.objects.filter(
                        segment_id__in=static_ids, contact_id=OuterRef("pk")
                    )
                )
            )
        return member if op in ("$eq", "$in") else ~member

    def _dynamic_segment(self, segment: Segment, path: str) -> Q:
        if self.segment_depth >= MAX_SEGMENT_NESTING:
            raise FilterError(path, "segments refer to each other too deeply (or in a cycle)")
        inner = _Compiler(self.segment_depth + 1, self.pending)
        inner._custom_fields = self._custom_fields
        try:
            return inner.filter(_unwrap(segment.filter), "")
        except FilterError as exc:
            name = f"segment {segment.pk}" if segment.pk else "the new segment"
            raise FilterError(path, f"{name} has a bad filter: {exc}") from None

    # -- custom fields ---------------------------------------------------------------------

    def custom_fields(self) -> dict[int, CustomField]:
        if self._custom_fields is None:
            self._custom_fields = custom_fields_load()
        return self._custom_fields

    def custom_field(self, field: CustomField, op: str, value: Any, path: str) -> Q:
        key = str(field.pk)
        text = JsonKeyText("fields", key)
        if op == "$exists":
            present = Q(IsNull(text, False)) & ~Q(Exact(text, ""))
            return present if value else ~present
        if op in ("$eq", "$ne"):
            q = self._cf_equals(field, value, path)
            return q if op == "$eq" else ~q
        if op in ("$in", "$nin"):
            anyq = Q()
            for i, v in enumerate(list_value(value, path)):
                anyq |= self._cf_equals(field, v, f"{path}.{i}")
            return anyq if op == "$in" else ~anyq
        if op == "$contains":
            if field.type not in (CustomFieldType.TEXT, CustomFieldType.CHOICE):
                raise FilterError(path, f"$contains needs a text field; {field.pk} is {field.type}")
            if not isinstance(value, str):
                raise FilterError(path, "expected a string")
            return Q(IContains(text, value)) & Q(IsNull(text, False))
        if op == "$all":
            raise FilterError(path, f"operator {op!r} does not apply to a custom field")
        lookup = ORDER_OPS[op]
        lhs: Func
        if field.type == CustomFieldType.NUMBER:
            lhs = JsonNumber("fields", key)
            rhs = Value(_number(value, path), output_field=DecimalField())
        elif field.type == CustomFieldType.DATE:
            lhs = JsonIsoDate("fields", key)
            rhs = Value(_date(value, path).isoformat(), output_field=CharField())
        elif field.type == CustomFieldType.BOOLEAN:
            raise FilterError(path, f"operator {op!r} does not apply to a yes/no field")
        else:
            lhs = text
            rhs = Value(self._cf_text(field, value, path, check_allowed=False))
        return Q(Total(lookup(lhs, rhs)))

    def _cf_equals(self, field: CustomField, value: Any, path: str) -> Q:
        key = str(field.pk)
        # Containment (`fields @> {...}`) is what the jsonb_path_ops GIN index answers.
        if field.type == CustomFieldType.NUMBER:
            number = _number(value, path)
            as_json = int(number) if number == number.to_integral_value() else float(number)
            return Q(fields__contains={key: as_json}) | Q(fields__contains={key: str(as_json)})
        if field.type == CustomFieldType.DATE:
            return Q(fields__contains={key: _date(value, path).isoformat()})
        if field.type == CustomFieldType.BOOLEAN:
            if not isinstance(value, bool):
                raise FilterError(path, "expected true or false")
            return Q(fields__contains={key: value}) | Q(
                fields__contains={key: "true" if value else "false"}
            )
        return Q(fields__contains={key: self._cf_text(field, value, path)})

    @staticmethod
    def _cf_text(field: CustomField, value: Any, path: str, check_allowed: bool = True) -> str:
        if not isinstance(value, str):
            raise FilterError(path, "expected a string")
        if check_allowed and field.allowed_values and value not in field.allowed_values:
            raise FilterError(path, f"{value!r} is not one of {field.allowed_values}")
        return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def list_value(value: Any, path: str) -> list:
    if isinstance(value, str) and "," in value:
        value = [part.strip() for part in value.split(",")]
    if not isinstance(value, list) or not value:
        raise FilterError(path, "expected a non-empty list")
    if len(value) > MAX_LIST:
        raise FilterError(path, f"at most {MAX_LIST} values")
    return value


def _int(value: Any, path: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FilterError(path, "expected an integer id")
    return value


def _number(value: Any, path: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FilterError(path, "expected a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise FilterError(path, "expected a number") from None
    if not number.is_finite():
        raise FilterError(path, "expected a finite number")
    return number


def _date(value: Any, path: str) -> dt.date:
    parsed = parse_date(value) if isinstance(value, str) else None
    if parsed is None:
        raise FilterError(path, "expected a date as YYYY-MM-DD")
    return parsed


def _instant_range(value: Any, path: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the instant or day `value` names."""
    if not isinstance(value, str):
        raise FilterError(path, "expected an ISO 8601 date or datetime")
    try:
        # parse_datetime would read a bare date as midnight; a date means the whole day.
        day = parse_date(value) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else None
        moment = None if day else parse_datetime(value)
    except ValueError:
        raise FilterError(path, "expected an ISO 8601 date or datetime") from None
    if moment is not None:
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        return moment, moment + dt.timedelta(microseconds=1)
    if day is None:
        raise FilterError(path, "expected an ISO 8601 date or datetime")
    start = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
    end = timezone.make_aware(dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min))
    return start, end


def _unwrap(filter: Any) -> Any:
    """Accept the CRM campaigns API's audience filter `{"datatype": "contact", "where": {...}}`."""
    if isinstance(filter, dict) and "where" in filter and set(filter) <= {"datatype", "where"}:
        if filter.get("datatype", "contact") != "contact":
            raise FilterError("datatype", "only 'contact' filters are supported")
        return filter["where"]
    return filter


def compile_filter(filter: dict) -> Q:
    """The filter as a Q over Contact (deleted contacts are not excluded here)."""
    if filter is None:
        filter = {}
    return _Compiler().filter(_unwrap(filter), "")


def validate_filter(filter: dict) -> None:
    compile_filter(filter)


def filter_contacts(filter: dict) -> QuerySet[Contact]:
    return Contact.objects.alive().filter(compile_filter(filter))


def filter_reach(filter: dict) -> int:
    return filter_contacts(filter).count()


def segment_filter_check(segment: Segment) -> None:
    """Raise FilterError when `segment`, as it is about to be saved, could not be resolved:
    its filter reaches other segments too deeply or back to itself (a cycle). Other segments
    are read as stored, this one as given, so nothing needs saving first."""
    if segment.kind == SegmentKind.DYNAMIC:
        _Compiler(pending=segment)._dynamic_segment(segment, "segment")


def segment_contacts(segment: Segment) -> QuerySet[Contact]:
    """Alive contacts in the segment: its members if static, its filter's matches if dynamic."""
    if segment.kind == SegmentKind.STATIC:
        return Contact.objects.alive().filter(
            Exists(
                SegmentMembership.objects.filter(segment_id=segment.pk, contact_id=OuterRef("pk"))
            )
        )
    compiler = _Compiler(segment_depth=1)
    return Contact.objects.alive().filter(compiler.filter(_unwrap(segment.filter or {}), ""))


def segments_conditions(segments: list[Segment]) -> dict[int, Q]:
    """Each dynamic segment's filter as a Q over Contact (deleted contacts are not excluded
    here), all compiled with one read of the custom field catalog."""
    catalog = custom_fields_load()
    conditions = {}
    for segment in segments:
        compiler = _Compiler(segment_depth=1)
        compiler._custom_fields = catalog
        conditions[segment.pk] = compiler.filter(_unwrap(segment.filter or {}), "")
    return conditions


def segment_reach(segment: Segment) -> int:
    return segment_contacts(segment).count()


__all__ = [
    "FilterError",
    "compile_filter",
    "filter_contacts",
    "filter_reach",
    "segment_contacts",
    "segment_filter_check",
    "segment_reach",
    "segments_conditions",
    "validate_filter",
]

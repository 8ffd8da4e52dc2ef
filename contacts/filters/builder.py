"""The segment filter builder: rows of field · operator · value ↔ the filter language of
`contacts.filters.compiler`.

Rows only ever produce filters the language already speaks; the compiler stays the one judge
of what a filter means and whether it is valid. A saved filter the rows cannot express (nested
logic, several operators on one field) is edited as raw JSON instead.
"""

from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext_lazy as _

from contacts.custom_fields import custom_fields_load
from contacts.models import ChannelType, ContactSource, CustomFieldType, Segment

EXISTS, EMPTY = "$exists", "$empty"  # "$empty" is the builder's name for {"$exists": false}
NO_VALUE_OPS = {EXISTS, EMPTY}
LIST_OPS = {"$in", "$nin"}

OPERATORS: dict[str, list[tuple[str, Any]]] = {
    "text": [
        ("$eq", _("is")),
        ("$ne", _("is not")),
        ("$contains", _("contains")),
        ("$in", _("is one of")),
        ("$nin", _("is none of")),
        (EXISTS, _("is set")),
        (EMPTY, _("is empty")),
    ],
    "tags": [
        ("$contains", _("has tag(s)")),
        ("$in", _("has any of")),
        ("$nin", _("has none of")),
        (EXISTS, _("has any tag")),
        (EMPTY, _("has no tags")),
    ],
    "channels": [("$contains", _("can be reached by")), ("$ne", _("cannot be reached by"))],
    "choice": [
        ("$eq", _("is")),
        ("$ne", _("is not")),
        (EXISTS, _("is set")),
        (EMPTY, _("is empty")),
    ],
    "source": [("$eq", _("is")), ("$ne", _("is not"))],
    "flag": [("$eq", _("is"))],
    "boolean": [("$eq", _("is")), (EXISTS, _("is set")), (EMPTY, _("is empty"))],
    "created": [
        ("$eq", _("on")),
        ("$lt", _("before")),
        ("$gt", _("after")),
        ("$gte", _("on or after")),
        ("$lte", _("on or before")),
    ],
    "date": [
        ("$eq", _("on")),
        ("$lt", _("before")),
        ("$gt", _("after")),
        (EXISTS, _("is set")),
        (EMPTY, _("is empty")),
    ],
    "number": [
        ("$eq", "="),
        ("$ne", "≠"),
        ("$gt", ">"),
        ("$gte", "≥"),
        ("$lt", "<"),
        ("$lte", "≤"),
        (EXISTS, _("is set")),
        (EMPTY, _("is empty")),
    ],
    "segment": [("$eq", _("is in")), ("$ne", _("is not in"))],
}

STANDARD_FIELDS: list[tuple[str, Any, str]] = [
    ("email", _("Email"), "text"),
    ("sms", _("Phone"), "text"),
    ("firstName", _("First name"), "text"),
    ("lastName", _("Last name"), "text"),
    ("town", _("Town"), "text"),
    ("region", _("Region"), "text"),
    ("postcode", _("Postcode"), "text"),
    ("address", _("Address"), "text"),
    ("languageCode", _("Language"), "text"),
    ("timeZone", _("Time zone"), "text"),
    ("externalCustomerId", _("External customer id"), "text"),
    ("tags", _("Tags"), "tags"),
    ("channels", _("Channels"), "channels"),
    ("source", _("Source"), "source"),
    ("confirmed", _("Confirmed"), "flag"),
    ("unsubscribed", _("Unsubscribed"), "flag"),
    ("createdAt", _("Created"), "created"),
    ("segment", _("Segment"), "segment"),
]
# Keyed by the stored type (CustomField.type, a plain string equal to its CustomFieldType).
CUSTOM_KINDS: dict[str, str] = {
    CustomFieldType.TEXT: "text",
    CustomFieldType.NUMBER: "number",
    CustomFieldType.DATE: "date",
    CustomFieldType.BOOLEAN: "boolean",
    CustomFieldType.CHOICE: "choice",
}


@dataclass
class FieldSpec:
    key: str
    label: Any  # text, or a lazy translation
    kind: str
    choices: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def operators(self) -> list[tuple[str, Any]]:
        return OPERATORS[self.kind]

    def value_widget(self, op: str) -> str:
        if op in NO_VALUE_OPS:
            return "none"
        if self.choices and op not in LIST_OPS:
            return "select"
        return {"number": "number", "date": "date", "created": "date"}.get(self.kind, "text")


@dataclass
class Row:
    spec: FieldSpec
    op: str
    value: str = ""
    error: str = ""

    @property
    def widget(self) -> str:
        return self.spec.value_widget(self.op)

    @property
    def incomplete(self) -> bool:
        return self.op not in NO_VALUE_OPS and not self.value.strip()


class Catalog:
    """The fields a row may name, loaded once per request."""

    def __init__(self, *, exclude_segment: int | None = None):
        yes_no: list[tuple[str, Any]] = [("true", _("Yes")), ("false", _("No"))]
        others = Segment.objects.order_by("name")
        if exclude_segment is not None:
            others = others.exclude(pk=exclude_segment)
        segments = [(str(segment.pk), segment.name) for segment in others]
        standard_choices: dict[str, list[tuple[str, Any]]] = {
            "flag": yes_no,
            "source": list(ContactSource.choices),
            "channels": list(ChannelType.choices),
            "segment": segments,
        }
        self.specs: dict[str, FieldSpec] = {
            key: FieldSpec(key, label, kind, standard_choices.get(kind, []))
            for key, label, kind in STANDARD_FIELDS
        }
        self.custom: list[FieldSpec] = []
        for custom in custom_fields_load().values():
            kind = CUSTOM_KINDS.get(custom.type, "text")
            choices: list[tuple[str, Any]] = yes_no if kind == "boolean" else []
            if kind == "choice":
                choices = [(value, value) for value in custom.allowed_values]
            spec = FieldSpec(f"fields.{custom.pk}", custom.name, kind, choices)
            self.specs[spec.key] = spec
            self.custom.append(spec)

    @property
    def standard(self) -> list[FieldSpec]:
        return [self.specs[key] for key, _, _ in STANDARD_FIELDS]

    def row(self, field_key: str = "", op: str = "", value: str = "") -> Row:
        spec = self.specs.get(field_key) or self.specs["email"]
        ops = [code for code, _ in spec.operators]
        return Row(spec=spec, op=op if op in ops else ops[0], value=value or "")


def rows_from_post(catalog: Catalog, data) -> list[Row]:
    fields, ops, values = data.getlist("field"), data.getlist("op"), data.getlist("value")
    return [
        catalog.row(key, ops[i] if i < len(ops) else "", values[i] if i < len(values) else "")
        for i, key in enumerate(fields)
        if key
    ]


def _value(row: Row):
    text = row.value.strip()
    kind, op = row.spec.kind, row.op
    if kind in ("flag", "boolean"):
        return {"true": True, "false": False}.get(text, text)
    if kind == "segment":
        return int(text) if text.isdigit() else text
    if op in LIST_OPS or (kind == "tags" and "," in text):
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def filter_from_rows(rows: list[Row], combinator: str, *, strict: bool) -> tuple[dict, list[int]]:
    """(filter, indexes of rows left out). Incomplete rows are errors when `strict` (saving)
    and left out of a live preview, where the marketer is still typing."""
    parts, skipped = [], []
    for index, row in enumerate(rows):
        if row.incomplete:
            if strict:
                row.error = "needs a value"
            skipped.append(index)
            continue
        if row.op == EMPTY:
            condition = {EXISTS: False}
        elif row.op == EXISTS:
            condition = {EXISTS: True}
        else:
            condition = {row.op: _value(row)}
        parts.append({row.spec.key: condition})
    if not parts:
        return {}, skipped
    if len(parts) == 1:
        return parts[0], skipped
    return {"$or" if combinator == "or" else "$and": parts}, skipped


def row_index_for(path: str, rows_used: list[int]) -> int | None:
    """Which row a FilterError path (`$and.1.town.$eq`, or `town.$eq` for one row) is about;
    `rows_used` maps positions in the filter to row indexes."""
    head, _, rest = path.partition(".")
    if head in ("$and", "$or"):
        position = rest.split(".", 1)[0]
        if position.isdigit() and int(position) < len(rows_used):
            return rows_used[int(position)]
        return None
    return rows_used[0] if len(rows_used) == 1 else None


def rows_from_filter(catalog: Catalog, filter_: dict) -> tuple[str, list[Row]] | None:
    """(combinator, rows) for a filter the rows can express, else None."""
    if not isinstance(filter_, dict):
        return None
    if set(filter_) <= {"datatype", "where"} and "where" in filter_:
        filter_ = filter_["where"]
        if not isinstance(filter_, dict):
            return None
    combinator = "and"
    if len(filter_) == 1 and next(iter(filter_)) in ("$and", "$or"):
        combinator = "or" if "$or" in filter_ else "and"
        items = next(iter(filter_.values()))
        if not isinstance(items, list):
            return None
    elif any(key.startswith("$") for key in filter_):
        return None
    else:
        items = [{key: value} for key, value in filter_.items()]
    rows = []
    for item in items:
        row = _row_from_condition(catalog, item)
        if row is None:
            return None
        rows.append(row)
    return combinator, rows


def _row_from_condition(catalog: Catalog, item) -> Row | None:
    if not isinstance(item, dict) or len(item) != 1:
        return None
    key, condition = next(iter(item.items()))
    spec = catalog.specs.get("sms" if key == "phone" else "segment" if key == "segments" else key)
    if spec is None:
        return None
    if not isinstance(condition, dict):
        condition = {"$eq": condition}
    if len(condition) != 1:
        return None
    op, value = next(iter(condition.items()))
    # The compiler reads a bare value, $eq with a string and $all as "has these tags/channels".
    if spec.kind in ("tags", "channels") and (
        op == "$all" or (op == "$eq" and isinstance(value, str))
    ):
        op = "$contains"
    if op == EXISTS:
        op, value = (EXISTS if value else EMPTY), ""
    if op not in {code for code, _ in spec.operators}:
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list):
        if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
            return None
        text = ", ".join(str(v) for v in value)
    elif isinstance(value, dict):
        return None
    else:
        text = "" if value is None else str(value)
    return Row(spec=spec, op=op, value=text)

"""The custom field catalog: its one read, and its writes.

Every rule here is shared by the eSputnik v1 API, Herald's native API, the marketer pages and
the admin. A refused request raises `CustomFieldError(field, message)`; the API answers 400.
"""

# SQL here interpolates only our own table and column names; every value is a parameter.
# ruff: noqa: S608

import re
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils.text import slugify

from contacts.errors import CustomFieldError
from contacts.filters.references import filter_names_field
from contacts.models import Contact, CustomField, CustomFieldType, Segment, SegmentKind

KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
# What custom_field_update may change.
CHANGEABLE = frozenset(
    {"name", "key", "group_name", "group_key", "type", "required", "readonly", "allowed_values"}
)


def custom_fields_load() -> dict[int, CustomField]:
    """The catalog by id, in its display order (group, then name). Read once per request or
    batch: contact parsing, the filter compiler and the pages take it from here."""
    fields = CustomField.objects.order_by("group_name", "name", "pk")
    return {field.id: field for field in fields}


def custom_field_columns() -> list[CustomField]:
    """The catalog in CSV column order (GROUP_KEY.KEY): imports read, exports write it."""
    return list(CustomField.objects.order_by("group_key", "key"))


def _key_from(name: str) -> str:
    return slugify(name).upper().replace("-", "_")[:100] or "FIELD"


def _has_values(field: CustomField) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {Contact._meta.db_table} WHERE fields ? %s)",
            [str(field.pk)],
        )
        return cursor.fetchone()[0]


def custom_field_prepare(*, field: CustomField | None = None, **values: Any) -> CustomField:
    """The field as `values` would save it, checked against every rule; writes nothing.

    Without `field`, a new one from custom_field_create's arguments; with it, `field` changed
    by `values` (custom_field_update's). Raises CustomFieldError. The services save what it
    returns; the admin validates its forms with it."""
    if field is None:
        name = (values.get("name") or "").strip()
        field = CustomField(
            name=name,
            key=values.get("key") or _key_from(name),
            group_name=values.get("group_name", "Personal"),
            group_key=values.get("group_key", "PERSONAL"),
            type=values.get("type", CustomFieldType.TEXT),
            required=values.get("required", False),
            readonly=values.get("readonly", False),
            allowed_values=list(values.get("allowed_values") or []),
        )
    else:
        unknown = set(values) - CHANGEABLE
        if unknown:
            raise CustomFieldError(sorted(unknown)[0], "cannot be changed")
        new_type = values.get("type", field.type)
        if new_type != field.type and _has_values(field):
            # Stored values were validated for the old type; a number field full of text
            # would silently stop matching filters.
            raise CustomFieldError("type", "contacts hold values for this field; clear them first")
        for attr, value in values.items():
            setattr(field, attr, value.strip() if isinstance(value, str) else value)
    _check(field)
    return field


def _check(field: CustomField) -> None:
    if not field.name or len(field.name) > 100:
        raise CustomFieldError("name", "must be 1 to 100 characters")
    for attr, label in (("key", "key"), ("group_key", "groupKey")):
        if not KEY_RE.match(getattr(field, attr) or ""):
            raise CustomFieldError(label, "letters, digits, '_' or '-' only (at most 100)")
    if not field.group_name or len(field.group_name) > 100:
        raise CustomFieldError("groupName", "must be 1 to 100 characters")
    if field.type not in CustomFieldType.values:
        raise CustomFieldError("type", f"must be one of {CustomFieldType.values}")
    values = field.allowed_values or []
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise CustomFieldError("allowedValues", "must be a list of non-empty strings")
    if field.type == CustomFieldType.CHOICE and not values:
        raise CustomFieldError("allowedValues", "a combobox field needs its allowed values")
    if field.type != CustomFieldType.CHOICE and values:
        raise CustomFieldError("allowedValues", "only a combobox field has allowed values")
    if len(set(values)) != len(values):
        raise CustomFieldError("allowedValues", "values must be distinct")
    taken = CustomField.objects.filter(group_key=field.group_key, key=field.key)
    if taken.exclude(pk=field.pk).exists():
        raise _key_taken(field)


def _key_taken(field: CustomField) -> CustomFieldError:
    return CustomFieldError(
        "key", f"'{field.group_key}.{field.key}' is already used by another field"
    )


def _save(field: CustomField) -> None:
    try:
        with transaction.atomic():
            field.save()
    except IntegrityError:
        # Another request took the key after custom_field_prepare looked.
        raise _key_taken(field) from None


@transaction.atomic
def custom_field_create(
    *,
    name: str,
    key: str = "",
    group_name: str = "Personal",
    group_key: str = "PERSONAL",
    type: str = CustomFieldType.TEXT,
    required: bool = False,
    readonly: bool = False,
    allowed_values: list[str] | None = None,
) -> CustomField:
    field = custom_field_prepare(
        name=name,
        key=key,
        group_name=group_name,
        group_key=group_key,
        type=type,
        required=required,
        readonly=readonly,
        allowed_values=allowed_values,
    )
    _save(field)
    return field


@transaction.atomic
def custom_field_update(*, field: CustomField, **changes: Any) -> CustomField:
    """Change name, key, group_name, group_key, type, required, readonly, allowed_values."""
    field = custom_field_prepare(field=field, **changes)
    _save(field)
    return field


@transaction.atomic
def custom_field_delete(*, field: CustomField) -> None:
    """Delete a field and its values on every contact; refused while a segment filters on it."""
    key = f"fields.{field.pk}"
    users = [
        segment.name
        for segment in Segment.objects.filter(kind=SegmentKind.DYNAMIC)
        if filter_names_field(segment.filter, key)
    ]
    if users:
        raise CustomFieldError("field", f"dynamic segments filter on it: {', '.join(users)}")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Contact._meta.db_table} SET fields = fields - %s WHERE fields ? %s",
            [str(field.pk), str(field.pk)],
        )
    field.delete()

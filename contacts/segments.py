"""Segment, membership, custom field catalog and unsubscribed-list writes.

Every rule here is shared by the seed API, Herald's native API, the marketer pages and tasks.
A refused request raises `ContactsRuleError(field, message)`; the API turns it into a 400.
"""

# SQL here interpolates only our own table and column names; every value is a parameter.
# ruff: noqa: S608

import re
from collections.abc import Iterator
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils.text import slugify

from contacts.models import (
    Contact,
    CustomField,
    CustomFieldType,
    Segment,
    SegmentKind,
    SegmentMembership,
    Unsubscribed,
)
from contacts.queries import FilterError, compile_filter, validate_filter
from contacts.validation import email_normalise

# The seed's limit for attach/detach; it also bounds the ANY(%s) array we send.
MEMBERSHIP_MAX_IDS = 500
# One request's worth of addresses; bounds the unnest() insert and the per-item report.
UNSUBSCRIBED_MAX_EMAILS = 10_000
NAME_MAX = 200


class ContactsRuleError(Exception):
    """The request breaks a rule; `field` names what is wrong (e.g. `filter.tags.$in`)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class SegmentError(ContactsRuleError):
    pass


class CustomFieldError(ContactsRuleError):
    pass


# --- segments ---------------------------------------------------------------------------


def _clean_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise SegmentError("name", "must be a non-empty string")
    name = name.strip()
    if len(name) > NAME_MAX:
        raise SegmentError("name", f"must be at most {NAME_MAX} characters")
    return name


def _check_filter(kind: str, filter: Any) -> dict:
    if kind == SegmentKind.STATIC:
        if filter:
            raise SegmentError("filter", "a static segment has members, not a filter")
        return {}
    if not isinstance(filter, dict):
        raise SegmentError("filter", "a dynamic segment needs a filter object")
    try:
        validate_filter(filter)
    except FilterError as exc:
        raise SegmentError(_filter_path(exc), exc.message) from None
    return filter


def _filter_path(exc: FilterError) -> str:
    return "filter" if exc.path == "filter" else f"filter.{exc.path}"


def _check_references(segment: Segment) -> None:
    """After saving: a filter may reach this segment again through others (a cycle)."""
    if segment.kind != SegmentKind.DYNAMIC:
        return
    try:
        compile_filter({"segment": segment.pk})
    except FilterError as exc:
        raise SegmentError("filter", exc.message) from None


def _save(segment: Segment) -> None:
    try:
        with transaction.atomic():
            segment.save()
    except IntegrityError:
        raise SegmentError("name", f"a segment named '{segment.name}' already exists") from None


@transaction.atomic
def segment_create(
    *,
    name: str,
    kind: str = SegmentKind.STATIC,
    filter: dict | None = None,
    description: str = "",
) -> Segment:
    if kind not in SegmentKind.values:
        raise SegmentError("kind", f"must be one of {SegmentKind.values}")
    segment = Segment(
        name=_clean_name(name),
        kind=kind,
        filter=_check_filter(kind, filter or {}),
        description=description or "",
    )
    _save(segment)
    _check_references(segment)
    return segment


@transaction.atomic
def segment_update(
    *,
    segment: Segment,
    name: str | None = None,
    kind: str | None = None,
    filter: dict | None = None,
    description: str | None = None,
) -> Segment:
    if kind is not None and kind not in SegmentKind.values:
        raise SegmentError("kind", f"must be one of {SegmentKind.values}")
    new_kind = kind or segment.kind
    if name is not None:
        segment.name = _clean_name(name)
    if description is not None:
        segment.description = description
    if new_kind == SegmentKind.STATIC:
        segment.filter = _check_filter(new_kind, filter or {})
    else:
        segment.filter = _check_filter(new_kind, segment.filter if filter is None else filter)
    if new_kind != segment.kind and new_kind == SegmentKind.DYNAMIC:
        # Members of a list mean nothing once a filter decides who is in.
        SegmentMembership.objects.filter(segment=segment).delete()
    segment.kind = new_kind
    _save(segment)
    _check_references(segment)
    return segment


@transaction.atomic
def segment_delete(*, segment: Segment) -> None:
    users = [
        other.name
        for other in Segment.objects.filter(kind=SegmentKind.DYNAMIC).exclude(pk=segment.pk)
        if segment.pk in _referenced_segments(other.filter)
    ]
    if users:
        raise SegmentError(
            "segment", f"dynamic segments refer to it in their filters: {', '.join(users)}"
        )
    segment.delete()


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _referenced_segments(filter: Any) -> set[int]:
    ids: set[int] = set()
    for key, value in _walk(filter):
        if key in ("segment", "segments"):
            for item in _walk_values(value):
                if isinstance(item, int) or (isinstance(item, str) and item.isdigit()):
                    ids.add(int(item))
    return ids


def _walk_values(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for inner in value.values():
            yield from _walk_values(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _walk_values(inner)
    else:
        yield value


# --- membership -------------------------------------------------------------------------


def _membership_keys(
    contact_ids: list | None, external_customer_ids: list | None, *, required: bool
) -> tuple[str | None, list]:
    """("contactIds" | "externalCustomerIds" | None, deduplicated keys in request order)."""
    if contact_ids and external_customer_ids:
        raise SegmentError("contactIds", "send either contactIds or externalCustomerIds, not both")
    if contact_ids:
        field, raw = "contactIds", contact_ids
    elif external_customer_ids:
        field, raw = "externalCustomerIds", external_customer_ids
    else:
        if required:
            raise SegmentError("contactIds", "send contactIds or externalCustomerIds")
        return None, []
    keys: list = []
    for position, value in enumerate(raw):
        if field == "contactIds":
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise SegmentError(f"{field}[{position}]", f"'{value}' is not a contact id")
        else:
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str) or not value.strip():
                raise SegmentError(f"{field}[{position}]", "must be a non-empty string")
            value = value.strip()
        keys.append(value)
    keys = list(dict.fromkeys(keys))
    if len(keys) > MEMBERSHIP_MAX_IDS:
        raise SegmentError(field, f"at most {MEMBERSHIP_MAX_IDS} per request, got {len(keys)}")
    return field, keys


def _require_static(segment: Segment) -> None:
    if segment.kind != SegmentKind.STATIC:
        raise SegmentError(
            "segment", "contacts can only be attached to or detached from a static segment"
        )


@transaction.atomic
def segment_attach(
    *,
    segment: Segment,
    contact_ids: list | None = None,
    external_customer_ids: list | None = None,
) -> dict:
    """Add alive contacts to a static segment; ids matching no alive contact are reported."""
    _require_static(segment)
    field, keys = _membership_keys(contact_ids, external_customer_ids, required=True)
    column = "id" if field == "contactIds" else "external_customer_id"
    array_type = "bigint[]" if field == "contactIds" else "text[]"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH target AS (
                    SELECT id, {column} AS key FROM {Contact._meta.db_table}
                     WHERE {column} = ANY(%s::{array_type}) AND deleted_at IS NULL
                ), added AS (
                    INSERT INTO {SegmentMembership._meta.db_table}
                           (segment_id, contact_id, added_at)
                    SELECT %s, id, now() FROM target
                    ON CONFLICT (segment_id, contact_id) DO NOTHING
                    RETURNING contact_id
                )
                SELECT (SELECT array_agg(key) FROM target), (SELECT count(*) FROM added)""",
            [keys, segment.pk],
        )
        found, added = cursor.fetchone()
    found_keys = set(found or [])
    return {
        "attached": added,
        "alreadyMembers": len(found_keys) - added,
        "notFound": [key for key in keys if key not in found_keys],
    }


@transaction.atomic
def segment_detach(
    *,
    segment: Segment,
    contact_ids: list | None = None,
    external_customer_ids: list | None = None,
) -> dict:
    """Remove contacts from a static segment; with no ids at all, empty it (the seed's rule)."""
    _require_static(segment)
    field, keys = _membership_keys(contact_ids, external_customer_ids, required=False)
    if field is None:
        detached, _ = SegmentMembership.objects.filter(segment=segment).delete()
        return {"detached": detached, "notFound": []}
    column = "id" if field == "contactIds" else "external_customer_id"
    array_type = "bigint[]" if field == "contactIds" else "text[]"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH target AS (
                    SELECT id, {column} AS key FROM {Contact._meta.db_table}
                     WHERE {column} = ANY(%s::{array_type})
                ), removed AS (
                    DELETE FROM {SegmentMembership._meta.db_table} m USING target
                     WHERE m.segment_id = %s AND m.contact_id = target.id
                    RETURNING m.contact_id
                )
                SELECT (SELECT array_agg(key) FROM target), (SELECT count(*) FROM removed)""",
            [keys, segment.pk],
        )
        found, removed = cursor.fetchone()
    found_keys = set(found or [])
    return {"detached": removed, "notFound": [key for key in keys if key not in found_keys]}


@transaction.atomic
def groups_ensure(*, names: list[str]) -> list[Segment]:
    """Static segments by name, created when missing, in the order of `names` (deduplicated).

    The bulk contact import has the same rule in `contacts.services._segments_for`; this
    reuses it so a name that belongs to a dynamic segment is refused the same way everywhere.
    """
    from contacts.services import ContactError, _segments_for

    cleaned = list(dict.fromkeys(_clean_name(name) for name in names))
    try:
        ids = _segments_for(cleaned, create=True)
    except ContactError as exc:
        raise SegmentError("groupNames", "; ".join(problem for _, problem in exc.errors)) from None
    by_name = {segment.name: segment for segment in Segment.objects.filter(pk__in=ids)}
    return [by_name[name] for name in cleaned if name in by_name]


# --- unsubscribed list ------------------------------------------------------------------


def _emails_parse(emails: Any) -> tuple[list[str], list[dict]]:
    if not isinstance(emails, list):
        raise ContactsRuleError("emails", "must be a list of email addresses")
    if len(emails) > UNSUBSCRIBED_MAX_EMAILS:
        raise ContactsRuleError("emails", f"at most {UNSUBSCRIBED_MAX_EMAILS} per request")
    valid: list[str] = []
    failed: list[dict] = []
    for index, raw in enumerate(emails):
        email, problem = email_normalise(raw)
        if problem:
            failed.append({"index": index, "email": raw, "reason": problem})
        else:
            valid.append(email)
    return list(dict.fromkeys(valid)), failed


@transaction.atomic
def unsubscribed_add(*, emails: list[str], reason: str = "") -> dict:
    """Put addresses on the unsubscribed list; invalid ones are reported, the rest stored."""
    valid, failed = _emails_parse(emails)
    added = 0
    if valid:
        with connection.cursor() as cursor:
            cursor.execute(
                f"""INSERT INTO {Unsubscribed._meta.db_table} (email, reason, created_at)
                    SELECT address, %s, now() FROM unnest(%s::text[]) AS address
                    ON CONFLICT (email) DO NOTHING""",
                [(reason or "")[:200], valid],
            )
            added = cursor.rowcount
    return {"added": added, "alreadyUnsubscribed": len(valid) - added, "failed": failed}


@transaction.atomic
def unsubscribed_remove(*, emails: list[str]) -> dict:
    valid, failed = _emails_parse(emails)
    removed = 0
    if valid:
        removed, _ = Unsubscribed.objects.filter(email__in=valid).delete()
    return {"removed": removed, "notListed": len(valid) - removed, "failed": failed}


# --- custom field catalog ---------------------------------------------------------------

KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def _key_from(name: str) -> str:
    return slugify(name).upper().replace("-", "_")[:100] or "FIELD"


def _check_custom_field(field: CustomField) -> None:
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


def _save_custom_field(field: CustomField) -> None:
    _check_custom_field(field)
    try:
        with transaction.atomic():
            field.save()
    except IntegrityError:
        raise CustomFieldError(
            "key", f"'{field.group_key}.{field.key}' is already used by another field"
        ) from None


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
    name = (name or "").strip()
    field = CustomField(
        name=name,
        key=key or _key_from(name),
        group_name=group_name,
        group_key=group_key,
        type=type,
        required=required,
        readonly=readonly,
        allowed_values=list(allowed_values or []),
    )
    _save_custom_field(field)
    return field


def _has_values(field: CustomField) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {Contact._meta.db_table} WHERE fields ? %s)",
            [str(field.pk)],
        )
        return cursor.fetchone()[0]


@transaction.atomic
def custom_field_update(*, field: CustomField, **changes: Any) -> CustomField:
    """Change name, key, group_name, group_key, type, required, readonly, allowed_values."""
    allowed = {
        "name",
        "key",
        "group_name",
        "group_key",
        "type",
        "required",
        "readonly",
        "allowed_values",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise CustomFieldError(sorted(unknown)[0], "cannot be changed")
    new_type = changes.get("type", field.type)
    if new_type != field.type and _has_values(field):
        # Stored values were validated for the old type; a number field full of text would
        # silently stop matching filters.
        raise CustomFieldError("type", "contacts hold values for this field; clear them first")
    for attr, value in changes.items():
        setattr(field, attr, value.strip() if isinstance(value, str) else value)
    _save_custom_field(field)
    return field


@transaction.atomic
def custom_field_delete(*, field: CustomField) -> None:
    """Delete a field and its values on every contact; refused while a segment filters on it."""
    key = f"fields.{field.pk}"
    users = [
        segment.name
        for segment in Segment.objects.filter(kind=SegmentKind.DYNAMIC)
        if any(name == key for name, _ in _walk(segment.filter))
    ]
    if users:
        raise CustomFieldError("field", f"dynamic segments filter on it: {', '.join(users)}")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Contact._meta.db_table} SET fields = fields - %s WHERE fields ? %s",
            [str(field.pk), str(field.pk)],
        )
    field.delete()

"""Segments: static lists and dynamic filters, their members, and groups by name.

Every rule here is shared by the eSputnik v1 API, Herald's native API, the marketer pages, the
admin and imports. A refused request raises `SegmentError(field, message)`; the API answers
400. One rule the edges meet most: contacts are added to static segments only
(groups_static_ids, groups_static_check).
"""

# SQL here interpolates only our own table and column names; every value is a parameter.
# ruff: noqa: S608

from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError

from config.core.errors import FieldError
from config.core.external_keys import external_key_clean, external_key_taken
from contacts.errors import DynamicGroupError, SegmentError
from contacts.filters.compiler import FilterError, segment_filter_check, validate_filter
from contacts.filters.references import filter_segment_ids
from contacts.models import Contact, Segment, SegmentKind, SegmentMembership
from contacts.segment_members import (
    contacts_mark_changed,
    contacts_mark_changed_sql,
    segment_members_reset,
    segments_refresh_soon,
)

# The eSputnik v1 API's limit for attach/detach; it also bounds the ANY(%s) array we send.
MEMBERSHIP_MAX_IDS = 500
NAME_MAX = 200


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
        raise SegmentError(exc.request_field, exc.message) from None
    return filter


def _name_taken(segment: Segment) -> SegmentError:
    return SegmentError("name", f"a segment named '{segment.name}' already exists")


def _key_taken(segment: Segment) -> SegmentError:
    return SegmentError(
        "externalKey", f"another segment has the external key '{segment.external_key}'"
    )


# An update's external_key when the caller did not give one (None clears it).
KEEP: Any = object()


def _clean_key(value: Any) -> str | None:
    try:
        return external_key_clean(value, field="externalKey")
    except FieldError as exc:
        raise SegmentError(exc.field, exc.message) from None


def segment_prepare(
    *,
    segment: Segment | None = None,
    name: str | None = None,
    kind: str | None = None,
    filter: dict | None = None,
    description: str | None = None,
    external_key: Any = KEEP,
) -> Segment:
    """The segment as these values would save it, checked against every rule; writes nothing.

    Without `segment`, a new one (segment_create's arguments); with it, `segment` changed by
    the values given (segment_update's). Raises SegmentError. The services save what it
    returns; the admin validates its forms with it."""
    if kind is not None and kind not in SegmentKind.values:
        raise SegmentError("kind", f"must be one of {SegmentKind.values}")
    if segment is None:
        kind = kind or SegmentKind.STATIC
        segment = Segment(
            name=_clean_name(name),
            kind=kind,
            filter=_check_filter(kind, filter or {}),
            description=description or "",
        )
    else:
        new_kind = kind or segment.kind
        if name is not None:
            segment.name = _clean_name(name)
        if description is not None:
            segment.description = description
        if new_kind == SegmentKind.STATIC:
            segment.filter = _check_filter(new_kind, filter or {})
        else:
            segment.filter = _check_filter(new_kind, segment.filter if filter is None else filter)
        segment.kind = new_kind
    if external_key is not KEEP:
        segment.external_key = _clean_key(external_key)
    if Segment.objects.filter(name=segment.name).exclude(pk=segment.pk).exists():
        raise _name_taken(segment)
    if external_key_taken(Segment, segment.external_key, pk=segment.pk):
        raise _key_taken(segment)
    try:
        # Through other segments, the filter may reach this one again (a cycle).
        segment_filter_check(segment)
    except FilterError as exc:
        raise SegmentError("filter", exc.message) from None
    return segment


def _save(segment: Segment) -> None:
    try:
        with transaction.atomic():
            segment.save()
    except IntegrityError:
        # Another request took the name (or the key) after segment_prepare looked.
        if external_key_taken(Segment, segment.external_key, pk=segment.pk):
            raise _key_taken(segment) from None
        raise _name_taken(segment) from None


@transaction.atomic
def segment_create(
    *,
    name: str,
    kind: str = SegmentKind.STATIC,
    filter: dict | None = None,
    description: str = "",
    external_key: str | None = None,
) -> Segment:
    segment = segment_prepare(
        name=name, kind=kind, filter=filter, description=description, external_key=external_key
    )
    _save(segment)
    if segment.kind == SegmentKind.DYNAMIC:
        segment_members_reset(segment=segment)
    return segment


@transaction.atomic
def segment_update(
    *,
    segment: Segment,
    name: str | None = None,
    kind: str | None = None,
    filter: dict | None = None,
    description: str | None = None,
    external_key: Any = KEEP,
) -> Segment:
    was_static = segment.kind == SegmentKind.STATIC
    before = (segment.kind, segment.filter)
    segment = segment_prepare(
        segment=segment,
        name=name,
        kind=kind,
        filter=filter,
        description=description,
        external_key=external_key,
    )
    if was_static and segment.kind == SegmentKind.DYNAMIC:
        # Members of a list mean nothing once a filter decides who is in.
        _static_members_mark(segment)
        SegmentMembership.objects.filter(segment=segment).delete()
    _save(segment)
    if (segment.kind, segment.filter) != before:
        # A new filter starts the stored members afresh (filled once, without events).
        segment_members_reset(segment=segment)
        if any(
            segment.pk in filter_segment_ids(other.filter)
            for other in Segment.objects.filter(kind=SegmentKind.DYNAMIC).exclude(pk=segment.pk)
        ):
            # Segments whose filters name this one: contacts did enter or leave those.
            segments_refresh_soon()
    return segment


def _static_members_mark(segment: Segment) -> None:
    """Dynamic filters may name this static segment: its members are about to change."""
    contacts_mark_changed_sql(
        sql=f"SELECT contact_id AS id FROM {SegmentMembership._meta.db_table} "
        "WHERE segment_id = %s",
        params=[segment.pk],
    )


@transaction.atomic
def segment_delete(*, segment: Segment) -> None:
    users = [
        other.name
        for other in Segment.objects.filter(kind=SegmentKind.DYNAMIC).exclude(pk=segment.pk)
        if segment.pk in filter_segment_ids(other.filter)
    ]
    if users:
        raise SegmentError(
            "segment", f"dynamic segments refer to it in their filters: {', '.join(users)}"
        )
    try:
        segment.delete()
    except ProtectedError as exc:
        # Campaigns (and whatever else sends to a segment) keep it: the apps above this
        # one say so with PROTECT, so they need not be named here.
        holders = sorted(f"{obj._meta.verbose_name} {obj}" for obj in exc.protected_objects)
        raise SegmentError("segment", f"still in use by {', '.join(holders)}") from None


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
                SELECT (SELECT array_agg(key) FROM target), (SELECT count(*) FROM added),
                       (SELECT array_agg(contact_id) FROM added)""",
            [keys, segment.pk],
        )
        found, added, added_ids = cursor.fetchone()
    contacts_mark_changed(contact_ids=added_ids or [])
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
    """Remove contacts from a static segment; with no ids at all, empty it (as the eSputnik
    v1 API does)."""
    _require_static(segment)
    field, keys = _membership_keys(contact_ids, external_customer_ids, required=False)
    if field is None:
        _static_members_mark(segment)
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
                SELECT (SELECT array_agg(key) FROM target), (SELECT count(*) FROM removed),
                       (SELECT array_agg(contact_id) FROM removed)""",
            [keys, segment.pk],
        )
        found, removed, removed_ids = cursor.fetchone()
    contacts_mark_changed(contact_ids=removed_ids or [])
    found_keys = set(found or [])
    return {"detached": removed, "notFound": [key for key in keys if key not in found_keys]}


# --- groups by name (imports, subscribe forms, workflows) ---------------------------------


def _dynamic_names(names: list[str]) -> list[str]:
    return list(
        Segment.objects.filter(name__in=names)
        .exclude(kind=SegmentKind.STATIC)
        .values_list("name", flat=True)
    )


def groups_static_check(*, names: list[str], field: str) -> None:
    """Refuse, before any work starts, group names that belong to dynamic segments: contacts
    are added to static segments only. Raises DynamicGroupError naming `field`."""
    dynamic = _dynamic_names(names) if names else []
    if dynamic:
        raise DynamicGroupError(field, dynamic, before_start=True)


def groups_static_ids(*, names: list[str], create: bool) -> list[int]:
    """Ids of the static segments named, created when missing (`create`: contacts are being
    added to them, so a name of a dynamic segment raises DynamicGroupError); without
    `create` (contacts are being taken out), names of no static segment are skipped."""
    if not names:
        return []
    if create:
        # ignore_conflicts: two imports naming the same new group must not fail each other.
        Segment.objects.bulk_create(
            [Segment(name=name, kind=SegmentKind.STATIC) for name in names], ignore_conflicts=True
        )
    found = list(Segment.objects.filter(name__in=names).values_list("id", "name", "kind"))
    dynamic = [name for _, name, kind in found if kind != SegmentKind.STATIC]
    if dynamic and create:
        raise DynamicGroupError("groupNames", dynamic)
    return [segment_id for segment_id, _, kind in found if kind == SegmentKind.STATIC]


@transaction.atomic
def groups_ensure(*, names: list[str]) -> list[Segment]:
    """Static segments by name, created when missing, in the order of `names` (deduplicated);
    a name that belongs to a dynamic segment is refused as the imports refuse it."""
    cleaned = list(dict.fromkeys(_clean_name(name) for name in names))
    try:
        ids = groups_static_ids(names=cleaned, create=True)
    except DynamicGroupError as exc:
        raise SegmentError("groupNames", "; ".join(problem for _, problem in exc.errors)) from None
    by_name = {segment.name: segment for segment in Segment.objects.filter(pk__in=ids)}
    return [by_name[name] for name in cleaned if name in by_name]


def memberships_add(*, segment_ids: list[int], contact_ids: list[int]) -> None:
    """Every contact into every segment (static ones: see groups_static_ids), once. The
    callers write the contacts too and mark them for the dynamic segments themselves."""
    if not segment_ids or not contact_ids:
        return
    table = SegmentMembership._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {table} (segment_id, contact_id, added_at)
                SELECT s.id, c.id, now()
                  FROM unnest(%s::bigint[]) AS s(id) CROSS JOIN unnest(%s::bigint[]) AS c(id)
                ON CONFLICT (segment_id, contact_id) DO NOTHING""",
            [segment_ids, contact_ids],
        )


def memberships_remove(*, segment_ids: list[int], contact_ids: list[int]) -> None:
    if segment_ids and contact_ids:
        SegmentMembership.objects.filter(
            segment_id__in=segment_ids, contact_id__in=contact_ids
        ).delete()

"""Bulk actions on a selection of contacts: add or remove a tag, add to a static segment, put
their emails on the unsubscribed list, delete (soft, restorable).

A selection is a Contact queryset (ticked rows, or everyone a filter matches). Each action is
one SQL statement: the write, the audit rows (django-auditlog's LogEntry, one per contact
changed, as a single edit writes) and the queue rows that re-evaluate dynamic segments are
data-modifying CTEs of that statement, so a million contacts never pass through Python.

The rules stay where they live: static-only membership (contacts.segments), the unsubscribed
list's reading by the `unsubscribed` filter (contacts.unsubscribed marks the carriers),
soft delete as contacts.services.contact_delete does it (deleted_at set once, restorable).
"""

# SQL here interpolates only our own table names and the selection's compiled SQL; every
# value is a parameter.
# ruff: noqa: S608

import json
from dataclasses import dataclass

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import QuerySet, TextChoices
from django.utils.translation import gettext_lazy as _

from contacts.errors import SegmentError
from contacts.models import Contact, Segment, SegmentKind, SegmentMembership, Unsubscribed
from contacts.segment_members import _TABLES, segment_members_kick
from contacts.segments import _require_static

TAG_MAX = 100
# Above this many contacts an "everyone matching" action runs in a Celery task: one UPDATE
# of 5 000 rows with their audit rows takes well under a second, a million takes minutes.
INLINE_MAX = 5_000


class BulkAction(TextChoices):
    TAG_ADD = "tag_add", _("Add tag")
    TAG_REMOVE = "tag_remove", _("Remove tag")
    SEGMENT_ADD = "segment_add", _("Add to static segment")
    UNSUBSCRIBE = "unsubscribe", _("Unsubscribe from email")
    DELETE = "delete", _("Delete")


@dataclass(frozen=True)
class BulkResult:
    action: str
    changed: int
    tag: str = ""
    segment_name: str = ""


def _selection_sql(selection: QuerySet) -> tuple[str, tuple]:
    return selection.order_by().values("id").query.sql_with_params()


def clean_tag(tag: object) -> str:
    if not isinstance(tag, str) or not tag.strip():
        raise SegmentError("tag", "must be a non-empty string")
    tag = tag.strip()
    if len(tag) > TAG_MAX:
        raise SegmentError("tag", f"must be at most {TAG_MAX} characters")
    return tag


def _repr_sql(alias: str) -> str:
    """Contact.__str__ in SQL, for the audit row's object_repr."""
    return (
        f"COALESCE(NULLIF(btrim({alias}.first_name || ' ' || {alias}.last_name), ''), "
        f"NULLIF({alias}.email, ''), NULLIF({alias}.phone, ''), 'Contact ' || {alias}.id)"
    )


def _run(ctes: str, params: list, *, actor_id: int | None, action: str) -> int:
    """Run the write `ctes` hold (common table expressions, the last named `changed`, its rows
    the contacts changed: id, repr, changes) with its audit rows and dynamic-segment queue
    rows, in one statement; returns the rows changed."""
    content_type = ContentType.objects.get_for_model(Contact)
    sql = f"""
        WITH {ctes},
        audit AS (
            INSERT INTO {LogEntry._meta.db_table}
                   (content_type_id, object_pk, object_id, object_repr, action, changes,
                    changes_text, actor_id, timestamp, additional_data)
            SELECT %s, changed.id::text, changed.id, changed.repr, %s, changed.changes,
                   '', %s, now(), %s::jsonb
              FROM changed
        ),
        marked AS (
            INSERT INTO {_TABLES["recheck"]} (contact_id, marked_at)
            SELECT changed.id, now() FROM changed
             WHERE EXISTS (SELECT 1 FROM {_TABLES["segment"]} s WHERE s.kind = %s)
        )
        SELECT count(*) FROM changed"""
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                *params,
                content_type.pk,
                LogEntry.Action.UPDATE,
                actor_id,
                json.dumps({"bulk_action": action}),
                SegmentKind.DYNAMIC,
            ],
        )
        changed = cursor.fetchone()[0]
    if changed:
        segment_members_kick()
    return changed


def _changes(field: str, old: str, new: str) -> str:
    return f"jsonb_build_object('{field}', jsonb_build_array({old}, {new}))"


@transaction.atomic
def contacts_tag_add(*, selection: QuerySet, tag: str, actor_id: int | None = None) -> int:
    """Add `tag` to every selected live contact that lacks it; returns how many changed."""
    tag = clean_tag(tag)
    table = Contact._meta.db_table
    sql, params = _selection_sql(selection)
    write = f"""
        UPDATE {table} c SET tags = array_append(c.tags, %s), updated_at = now()
          FROM {table} old
         WHERE old.id = c.id AND c.id IN ({sql}) AND c.deleted_at IS NULL
           AND NOT (c.tags @> ARRAY[%s]::varchar[])
        RETURNING c.id, {_repr_sql("c")} AS repr,
                  {_changes("tags", "old.tags::text", "c.tags::text")} AS changes"""
    return _run(
        f"changed AS ({write})", [tag, *params, tag], actor_id=actor_id, action=BulkAction.TAG_ADD
    )


@transaction.atomic
def contacts_tag_remove(*, selection: QuerySet, tag: str, actor_id: int | None = None) -> int:
    """Remove `tag` from every selected contact that has it; returns how many changed."""
    tag = clean_tag(tag)
    table = Contact._meta.db_table
    sql, params = _selection_sql(selection)
    write = f"""
        UPDATE {table} c SET tags = array_remove(c.tags, %s::varchar), updated_at = now()
          FROM {table} old
         WHERE old.id = c.id AND c.id IN ({sql}) AND c.tags @> ARRAY[%s]::varchar[]
        RETURNING c.id, {_repr_sql("c")} AS repr,
                  {_changes("tags", "old.tags::text", "c.tags::text")} AS changes"""
    return _run(
        f"changed AS ({write})",
        [tag, *params, tag],
        actor_id=actor_id,
        action=BulkAction.TAG_REMOVE,
    )


@transaction.atomic
def contacts_segment_add(
    *, selection: QuerySet, segment: Segment, actor_id: int | None = None
) -> int:
    """Add the selected live contacts to a static segment; returns how many joined it."""
    _require_static(segment)
    sql, params = _selection_sql(selection)
    table = Contact._meta.db_table
    write = f"""
        joined AS (
            INSERT INTO {SegmentMembership._meta.db_table} (segment_id, contact_id, added_at)
            SELECT %s, c.id, now() FROM {table} c
             WHERE c.id IN ({sql}) AND c.deleted_at IS NULL
            ON CONFLICT (segment_id, contact_id) DO NOTHING
            RETURNING contact_id
        ),
        changed AS (
            SELECT c.id, {_repr_sql("c")} AS repr,
                   {_changes("segments", "''", "%s")} AS changes
              FROM joined JOIN {table} c ON c.id = joined.contact_id
        )"""
    added = f"added to {segment.name}"
    return _run(
        write, [segment.pk, *params, added], actor_id=actor_id, action=BulkAction.SEGMENT_ADD
    )


@transaction.atomic
def contacts_unsubscribe(*, selection: QuerySet, reason: str, actor_id: int | None = None) -> int:
    """Put the selected contacts' email addresses on the unsubscribed list; returns how many
    addresses were added (those already on it are left as they are).

    Contact emails are stored normalised (lower case, validated), the form the list keeps;
    every contact carrying an added address is queued for the `unsubscribed` filter field,
    as contacts.unsubscribed does."""
    sql, params = _selection_sql(selection)
    contacts = Contact._meta.db_table
    unsubscribed = Unsubscribed._meta.db_table
    content_type = ContentType.objects.get_for_model(Unsubscribed)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH added AS (
                INSERT INTO {unsubscribed} (email, reason, created_at)
                SELECT DISTINCT c.email, %s, now() FROM {contacts} c
                 WHERE c.id IN ({sql}) AND c.email <> ''
                ON CONFLICT (email) DO NOTHING
                RETURNING id, email
            ),
            audit AS (
                INSERT INTO {LogEntry._meta.db_table}
                       (content_type_id, object_pk, object_id, object_repr, action, changes,
                        changes_text, actor_id, timestamp, additional_data)
                SELECT %s, added.id::text, added.id, added.email, %s,
                       jsonb_build_object('email', jsonb_build_array('None', added.email)),
                       '', %s, now(), %s::jsonb
                  FROM added
            ),
            marked AS (
                INSERT INTO {_TABLES["recheck"]} (contact_id, marked_at)
                SELECT c.id, now() FROM {contacts} c JOIN added ON c.email = added.email
                 WHERE EXISTS (SELECT 1 FROM {_TABLES["segment"]} s WHERE s.kind = %s)
            )
            SELECT count(*) FROM added""",
            [
                (reason or "")[:200],
                *params,
                content_type.pk,
                LogEntry.Action.CREATE,
                actor_id,
                json.dumps({"bulk_action": BulkAction.UNSUBSCRIBE}),
                SegmentKind.DYNAMIC,
            ],
        )
        added = cursor.fetchone()[0]
    if added:
        segment_members_kick()
    return added


@transaction.atomic
def contacts_delete(*, selection: QuerySet, actor_id: int | None = None) -> int:
    """Soft-delete the selected live contacts (restorable one by one from their page);
    returns how many were deleted. They leave their dynamic segments as one deleted alone
    does."""
    sql, params = _selection_sql(selection)
    table = Contact._meta.db_table
    write = f"""
        UPDATE {table} c SET deleted_at = now(), updated_at = now()
         WHERE c.id IN ({sql}) AND c.deleted_at IS NULL
        RETURNING c.id, {_repr_sql("c")} AS repr,
                  {_changes("deleted_at", "'None'", "to_jsonb(c.deleted_at)::text")} AS changes"""
    return _run(f"changed AS ({write})", list(params), actor_id=actor_id, action=BulkAction.DELETE)


def contacts_bulk_apply(
    *,
    selection: QuerySet,
    action: str,
    tag: str = "",
    segment: Segment | None = None,
    reason: str = "",
    actor_id: int | None = None,
) -> BulkResult:
    """Dispatch one bulk action; raises SegmentError for a missing tag or a wrong segment."""
    if action == BulkAction.TAG_ADD:
        changed = contacts_tag_add(selection=selection, tag=tag, actor_id=actor_id)
    elif action == BulkAction.TAG_REMOVE:
        changed = contacts_tag_remove(selection=selection, tag=tag, actor_id=actor_id)
    elif action == BulkAction.SEGMENT_ADD:
        if segment is None:
            raise SegmentError("segment", "choose a static segment")
        changed = contacts_segment_add(selection=selection, segment=segment, actor_id=actor_id)
    elif action == BulkAction.UNSUBSCRIBE:
        changed = contacts_unsubscribe(selection=selection, reason=reason, actor_id=actor_id)
    elif action == BulkAction.DELETE:
        changed = contacts_delete(selection=selection, actor_id=actor_id)
    else:
        raise SegmentError("action", f"must be one of {BulkAction.values}")
    return BulkResult(
        action=action,
        changed=changed,
        tag=tag.strip() if tag else "",
        segment_name=segment.name if segment else "",
    )

"""The audit log in words: who changed what, field by field.

django-auditlog records every change to the registered models (campaigns, contacts,
segments, templates, keys, integrations, the organisation) as a LogEntry whose `changes` is
{field: [old, new]}. The page reads them here: filtered by person, kind of object and dates,
and each entry turned into sentences with the model's verbose names and choice labels
("Campaign 'Spring sale': status changed from Draft to Scheduled").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext

# What auditlog writes for an empty value (None, and an unset foreign key).
_EMPTY = frozenset({"None", "", "[]", "{}"})
# A value longer than this is cut in a sentence (an HTML body, a filter): the log says that
# it changed; the object's own page shows what it is now.
VALUE_MAX = 120


@dataclass
class AuditLine:
    """One entry of the page: who, when, the object in words, the change sentences."""

    entry: LogEntry
    subject: str
    summary: str
    changes: list[str] = field(default_factory=list)


def audit_entries(
    *,
    actor_id: int | None = None,
    content_type_id: int | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> QuerySet[LogEntry]:
    """The log, newest first, narrowed by person, kind of object and days (both inclusive,
    in the workspace's time zone)."""
    entries = LogEntry.objects.select_related("actor", "content_type").order_by("-timestamp")
    if actor_id is not None:
        entries = entries.filter(actor_id=actor_id)
    if content_type_id is not None:
        entries = entries.filter(content_type_id=content_type_id)
    zone = timezone.get_current_timezone()
    if since is not None:
        entries = entries.filter(timestamp__gte=dt.datetime.combine(since, dt.time.min, zone))
    if until is not None:
        next_day = until + dt.timedelta(days=1)
        entries = entries.filter(timestamp__lt=dt.datetime.combine(next_day, dt.time.min, zone))
    return entries


def audit_people() -> QuerySet:
    """The people who appear in the log, for the filter."""
    User = get_user_model()
    return User.objects.filter(
        pk__in=LogEntry.objects.exclude(actor=None).values("actor_id")
    ).order_by("username")


def audit_object_types() -> list[tuple[int, str]]:
    """(content type id, the model's verbose name) of every kind of object in the log."""
    ids = LogEntry.objects.values_list("content_type_id", flat=True).distinct()
    types = ContentType.objects.filter(pk__in=ids)
    named = [(t.pk, _type_name(t)) for t in types]
    return sorted(named, key=lambda pair: pair[1].lower())


def _type_name(content_type: ContentType) -> str:
    model = content_type.model_class()
    return str(capfirst(model._meta.verbose_name if model else content_type.name))


def _value(value) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    if len(text) > VALUE_MAX:
        text = text[:VALUE_MAX] + "…"
    return text


def _sentence(name: str, old, new) -> str:
    old_text, new_text = _value(old), _value(new)
    name = str(capfirst(name))
    if old_text in _EMPTY and new_text in _EMPTY:
        return gettext("%(field)s changed") % {"field": name}
    if old_text in _EMPTY:
        return gettext("%(field)s set to %(new)s") % {"field": name, "new": new_text}
    if new_text in _EMPTY:
        return gettext("%(field)s cleared (was %(old)s)") % {"field": name, "old": old_text}
    return gettext("%(field)s changed from %(old)s to %(new)s") % {
        "field": name,
        "old": old_text,
        "new": new_text,
    }


def _display_changes(entry: LogEntry) -> dict:
    """{verbose name: [old, new]} with choice labels; the raw changes when the model is gone."""
    if entry.content_type.model_class() is None:
        return entry.changes_dict
    try:
        return entry.changes_display_dict
    except (ValueError, TypeError, LookupError):  # an old entry of a since-changed model
        return entry.changes_dict


def audit_line(entry: LogEntry) -> AuditLine:
    subject = gettext("%(type)s “%(name)s”") % {
        "type": _type_name(entry.content_type),
        "name": entry.object_repr,
    }
    if entry.action == LogEntry.Action.CREATE:
        return AuditLine(entry, subject, gettext("created"))
    if entry.action == LogEntry.Action.DELETE:
        erased = (entry.additional_data or {}).get("erased")
        if isinstance(erased, dict):  # a privacy erasure (contacts.privacy)
            return AuditLine(
                entry,
                subject,
                gettext("deleted, personal data erased everywhere"),
                [
                    gettext("%(table)s: %(count)s rows") % {"table": table, "count": count}
                    for table, count in sorted(erased.items())
                ],
            )
        purged = (entry.additional_data or {}).get("purged")
        if isinstance(purged, dict):  # the campaign purge job (campaigns.purge)
            return AuditLine(
                entry,
                subject,
                gettext("purged for good"),
                [
                    gettext("Runs removed: %(count)s") % {"count": purged.get("runs", 0)},
                    gettext("Deliveries removed: %(count)s")
                    % {"count": purged.get("deliveries", 0)},
                ],
            )
        return AuditLine(entry, subject, gettext("deleted"))
    if entry.action == LogEntry.Action.ACCESS:
        if (entry.additional_data or {}).get("export"):  # the per-person export
            return AuditLine(entry, subject, gettext("personal data exported"))
        return AuditLine(entry, subject, gettext("viewed"))
    changes = []
    for name, values in _display_changes(entry).items():
        if isinstance(values, list | tuple) and len(values) == 2:
            changes.append(_sentence(name, values[0], values[1]))
        else:  # a many-to-many change ({"type": "m2m", ...}): that it changed
            changes.append(gettext("%(field)s changed") % {"field": capfirst(name)})
    return AuditLine(entry, subject, gettext("changed"), changes)

"""Event ingest: Generate event (POST /api/v1/event, /api/v2/event) and Herald's own events.

The request path is one INSERT ... SELECT: the event type is found by its key (a type is
created on first use) and the contact by indexed subqueries, inside the same statement.
Everything else (workflows) happens in a worker: `events_process_later` enqueues
`marketing.tasks_events.process_event` once the transaction commits, and a beat sweep
re-enqueues events whose enqueue was lost (broker down, worker crash).
"""

# The SQL below interpolates only table names taken from our models; every value is a
# parameter.
# ruff: noqa: S608

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from marketing.models import Event, EventType

logger = logging.getLogger(__name__)

EVENT_TYPE_KEY_MAX = 100
KEY_VALUE_MAX = 300
BODY_MAX_BYTES = 20 * 1024
# Letters, digits and `-_.:`: keys travel in URLs, CSV exports and workflow conditions, and
# the seed's own keys (subscribeFromApi, newContact, orderDELIVERED) fit.
EVENT_TYPE_KEY_RE = re.compile(r"^[A-Za-z0-9_.:\-]+$")
EVENT_TYPE_KEY_RULE = "letters, digits and - _ . : only (no spaces)"
EVENT_TYPE_NAME_MAX = 200
# Tasks carry lists of ids; 500 ids are a few kB of message and one UPDATE each.
ENQUEUE_BATCH = 500
# Events still unprocessed this long after arriving lost their task; the sweep re-enqueues.
SWEEP_AFTER = timedelta(minutes=5)
SWEEP_LIMIT = 10_000

# Param names (compared case-insensitively) that identify the event's contact.
CONTACT_PARAM_NAMES = {
    "contactid": "id",
    "externalcustomerid": "external_customer_id",
    "email": "email",
    "emailaddress": "email",
    "phone": "phone",
    "sms": "phone",
}


class EventTypeError(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass
class ContactLookup:
    """Ways to find the event's contact, tried in order: (column, value)."""

    candidates: list[tuple[str, object]] = field(default_factory=list)

    def add(self, column: str, value) -> None:
        if value not in (None, "") and (column, value) not in self.candidates:
            self.candidates.append((column, value))


def event_type_key_problem(key) -> str | None:
    if not isinstance(key, str) or not key.strip():
        return "required (a non-empty string)"
    if len(key) > EVENT_TYPE_KEY_MAX:
        return f"at most {EVENT_TYPE_KEY_MAX} characters (got {len(key)})"
    if not EVENT_TYPE_KEY_RE.match(key):
        return f"may contain {EVENT_TYPE_KEY_RULE}"
    return None


def contact_lookup_for(*, key_value: str, params: dict) -> ContactLookup:
    """Params contactId / externalCustomerId / email / phone first, then keyValue read as a
    contact id, an email, a phone number or an external customer id."""
    from contacts.validation import email_normalise, phone_normalise

    lookup = ContactLookup()
    by_column: dict[str, list] = {}
    for name, value in params.items():
        column = CONTACT_PARAM_NAMES.get(str(name).lower())
        if column and isinstance(value, str | int) and not isinstance(value, bool):
            by_column.setdefault(column, []).append(str(value).strip())
    for column in ("id", "external_customer_id", "email", "phone"):
        for value in by_column.get(column, []):
            lookup.add(column, _normalised(column, value, email_normalise, phone_normalise))
    key = key_value.strip()
    if key.isdigit() and len(key) <= 18:
        lookup.add("id", int(key))
    if "@" in key:
        lookup.add("email", email_normalise(key)[0])
    elif sum(ch.isdigit() for ch in key) >= 7 and re.fullmatch(r"[+0-9 ()\-]+", key):
        lookup.add("phone", phone_normalise(key)[0])
    lookup.add("external_customer_id", key)
    return lookup


def _normalised(column: str, value: str, email_normalise, phone_normalise):
    if column == "id":
        return int(value) if value.isdigit() and len(value) <= 18 else None
    if column == "email":
        return email_normalise(value)[0]
    if column == "phone":
        return phone_normalise(value)[0]
    return value[:255]


def _contact_sql(lookup: ContactLookup) -> tuple[str, list]:
    if not lookup.candidates:
        return "NULL", []
    from contacts.models import Contact

    table = Contact._meta.db_table
    parts, params = [], []
    for column, value in lookup.candidates:
        # min(id): email and phone are not unique; the oldest contact is the one subscribe
        # and the bulk upsert would also pick.
        parts.append(f"(SELECT min(id) FROM {table} WHERE {column} = %s AND deleted_at IS NULL)")
        params.append(value)
    return f"COALESCE({', '.join(parts)})", params


def event_ingest(*, type_key: str, key_value: str, params: dict, lookup: ContactLookup) -> int:
    """Store one event and enqueue its processing on commit.

    One INSERT ... SELECT on the hot path: the type is found by its unique key and the contact
    by indexed subqueries inside the statement. Only a type's first event takes a second
    round trip, to create the type.
    """
    contact_sql, contact_params = _contact_sql(lookup)
    sql = (
        f"INSERT INTO {Event._meta.db_table} "
        "(event_type_id, key_value, params, contact_id, created_at) "
        f"SELECT t.id, %s, %s::jsonb, {contact_sql}, now() "
        f"FROM {EventType._meta.db_table} t WHERE t.key = %s RETURNING id"
    )
    payload = json.dumps(params, ensure_ascii=False)
    with transaction.atomic(), connection.cursor() as cursor:
        # Not waiting for the WAL flush doubles ingest throughput where fsync is slow. The
        # cost: if PostgreSQL itself crashes, events acknowledged in the last few hundred
        # milliseconds may be lost (never corrupted), the trade-off event collectors make.
        # Only this transaction is affected; orders and contacts commit synchronously.
        cursor.execute("SET LOCAL synchronous_commit TO off")
        cursor.execute(sql, [key_value, payload, *contact_params, type_key])
        row = cursor.fetchone()
        if row is None:
            EventType.objects.get_or_create(key=type_key, defaults={"name": type_key})
            cursor.execute(sql, [key_value, payload, *contact_params, type_key])
            row = cursor.fetchone()
        events_process_later([row[0]])
    return row[0]


def events_process_later(event_ids: list[int]) -> None:
    """Enqueue processing once the surrounding transaction commits."""
    if event_ids:
        ids = list(event_ids)
        transaction.on_commit(lambda: _enqueue(ids))


def _enqueue(event_ids: list[int]) -> None:
    from marketing.tasks_events import process_event, process_events

    try:
        if len(event_ids) == 1:
            process_event.delay(event_ids[0])
            return
        for start in range(0, len(event_ids), ENQUEUE_BATCH):
            process_events.delay(event_ids[start : start + ENQUEUE_BATCH])
    except Exception:  # the broker's errors vary by transport; the event itself is stored
        logger.warning("could not enqueue %d event(s); the sweep will", len(event_ids))


def events_mark_processed(*, event_ids: list[int]) -> int:
    """The processing seam: workflows will start here. For now it marks the events done.

    Conditional on `processed_at IS NULL`, so a re-delivered task is a no-op.
    """
    return Event.objects.filter(pk__in=event_ids, processed_at__isnull=True).update(
        processed_at=timezone.now()
    )


def events_enqueue_unprocessed() -> int:
    """Re-enqueue events whose task was lost; bounded per run."""
    cutoff = timezone.now() - SWEEP_AFTER
    ids = list(
        Event.objects.filter(processed_at__isnull=True, created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    if ids:
        _enqueue(ids)
    return len(ids)


@transaction.atomic
def event_type_update(*, event_type: EventType, key: str, name: str) -> EventType:
    problem = event_type_key_problem(key)
    if problem:
        raise EventTypeError("key", problem)
    if not isinstance(name, str) or len(name) > EVENT_TYPE_NAME_MAX:
        raise EventTypeError("name", f"a string of at most {EVENT_TYPE_NAME_MAX} characters")
    if EventType.objects.filter(key=key).exclude(pk=event_type.pk).exists():
        raise EventTypeError("key", f"another event type already has the key {key!r}")
    event_type.key = key
    event_type.name = name.strip() or key
    event_type.save(update_fields=["key", "name"])
    return event_type


@transaction.atomic
def event_type_create(*, key: str, name: str = "") -> EventType:
    problem = event_type_key_problem(key)
    if problem:
        raise EventTypeError("key", problem)
    if EventType.objects.filter(key=key).exists():
        raise EventTypeError("key", f"an event type with the key {key!r} already exists")
    return EventType.objects.create(key=key, name=(name or "").strip() or key)


def events_search(
    *,
    event_type: str | int | None = None,
    contact_id: int | None = None,
    key_value: str | None = None,
    date_from=None,
    date_to=None,
    processed: bool | None = None,
):
    """Event history: newest first; `event_type` is a key or an id, dates bound created_at
    as [from, to)."""
    events = Event.objects.select_related("event_type", "contact")
    if event_type not in (None, ""):
        if isinstance(event_type, int) or str(event_type).isdigit():
            events = events.filter(event_type_id=int(event_type))
        else:
            events = events.filter(event_type__key=event_type)
    if contact_id is not None:
        events = events.filter(contact_id=contact_id)
    if key_value:
        events = events.filter(key_value=key_value)
    if date_from is not None:
        events = events.filter(created_at__gte=date_from)
    if date_to is not None:
        events = events.filter(created_at__lt=date_to)
    if processed is not None:
        events = events.filter(processed_at__isnull=not processed)
    return events.order_by("-created_at", "-id")

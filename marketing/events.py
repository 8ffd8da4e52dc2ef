"""Event ingest: Generate event (POST /api/v1/event, /api/v2/event) and Herald's own events.

The request path is one INSERT ... SELECT: the event type is found by its key (a type is
created on first use) and the contact by indexed subqueries, inside the same statement.
Everything else (workflows) happens in a worker: unprocessed event rows are the queue, which
drains (`events_process_pending`) work off; each commit that stores events kicks one, and a
beat sweep re-enqueues events a drain missed (broker down, worker crash).
"""

# The SQL below interpolates only table names taken from our models; every value is a
# parameter.
# ruff: noqa: S608

import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from auditlog.models import LogEntry
from celery import signature
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from config.core.db import fetchone_prepared
from config.core.errors import FieldError
from config.core.queues import lock_claim
from contacts.models import Contact
from contacts.validation import email_normalise, phone_normalise
from marketing.event_params import (
    DeclarationError,
    DeclaredParam,
    EventParamsError,
    declaration_parse,
    params_problems,
)
from marketing.filters import FieldListError
from marketing.models import Event, EventType, InvalidEventMode
from marketing.segment_events import contacts_mark_for_events
from marketing.workflows.triggers import events_that_start, workflows_start_for_event

logger = logging.getLogger(__name__)

EVENT_TYPE_KEY_MAX = 100
KEY_VALUE_MAX = 300
BODY_MAX_BYTES = 20 * 1024
# Letters, digits and `-_.:`: keys travel in URLs, CSV exports and workflow conditions, and
# the eSputnik v1 API's own keys (subscribeFromApi, newContact, orderDELIVERED) fit.
EVENT_TYPE_KEY_RE = re.compile(r"^[A-Za-z0-9_.:\-]+$")
EVENT_TYPE_KEY_RULE = "letters, digits and - _ . : only (no spaces)"
EVENT_TYPE_NAME_MAX = 200
# Tasks carry lists of ids; 500 ids are a few kB of message and one UPDATE each.
ENQUEUE_BATCH = 500
# Events still unprocessed this long after arriving were missed by the drains (every kick
# lost, or their processing failed); the beat sweep enqueues them by id instead.
SWEEP_AFTER = timedelta(minutes=5)
SWEEP_LIMIT = 10_000
# The tasks this module enqueues (marketing.tasks), by name: that module imports this one.
DRAIN_TASK = "marketing.events_drain"
PROCESS_TASK = "marketing.process_events"

# Param names (compared case-insensitively) that identify the event's contact.
CONTACT_PARAM_NAMES = {
    "contactid": "id",
    "externalcustomerid": "external_customer_id",
    "email": "email",
    "emailaddress": "email",
    "phone": "phone",
    "sms": "phone",
}


class EventTypeError(FieldError):
    """An event type's key or name is refused (400, naming the field)."""


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
    if key.isascii() and key.isdigit() and len(key) <= 18:
        lookup.add("id", int(key))
    if "@" in key:
        lookup.add("email", email_normalise(key)[0])
    elif sum(ch.isdigit() for ch in key) >= 7 and re.fullmatch(r"[+0-9 ()\-]+", key):
        lookup.add("phone", phone_normalise(key)[0])
    lookup.add("external_customer_id", key)
    return lookup


def _normalised(column: str, value: str, email_normalise, phone_normalise):
    if column == "id":
        return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None
    if column == "email":
        return email_normalise(value)[0]
    if column == "phone":
        return phone_normalise(value)[0]
    return value[:255]


def _contact_sql(lookup: ContactLookup) -> tuple[str, list]:
    if not lookup.candidates:
        return "NULL", []
    table = Contact._meta.db_table
    parts, params = [], []
    for column, value in lookup.candidates:
        # min(id): email and phone are not unique; the oldest contact is the one subscribe
        # and the bulk upsert would also pick.
        parts.append(f"(SELECT min(id) FROM {table} WHERE {column} = %s AND deleted_at IS NULL)")
        params.append(value)
    return f"COALESCE({', '.join(parts)})", params


@dataclass(frozen=True)
class Declaration:
    """An event type's declared params as one web process caches them (`_declarations`)."""

    token: str
    params: list[DeclaredParam]
    mode: str

    @property
    def refuses(self) -> bool:
        return self.mode == InvalidEventMode.REFUSE


# Declarations by type key, per process. An entry is trusted only as far as the INSERT
# confirms it: the statement stores the event only while the type's declaration_token is the
# cached one, so a declaration changed by another process costs the next event here one
# reload and a retry, never a check against a stale declaration. Bounded: types are created
# by senders, and a flood of keys must not grow the process without end.
DECLARATIONS_CACHED_MAX = 5_000
_declarations: dict[str, Declaration] = {}
_declarations_lock = threading.Lock()


def _declaration_load(type_key: str) -> Declaration | None:
    """The type's declaration from the database (cached), or None when no type has the key."""
    row = (
        EventType.objects.filter(key=type_key)
        .values_list("declaration_token", "params_declared", "invalid_mode")
        .first()
    )
    if row is None:
        return None
    token, raw, mode = row
    try:
        params = declaration_parse(raw)
    except DeclarationError:  # stored around the service (raw SQL): checked as undeclared
        logger.warning("event type %r has an unreadable declaration; not checking it", type_key)
        params = []
    declaration = Declaration(token=str(token), params=params, mode=mode)
    with _declarations_lock:
        if len(_declarations) >= DECLARATIONS_CACHED_MAX:
            _declarations.clear()
        _declarations[type_key] = declaration
    return declaration


def declarations_forget() -> None:
    """Drop this process's cached declarations (tests; a type's save needs no call: its new
    token makes every process reload it)."""
    with _declarations_lock:
        _declarations.clear()


def event_ingest(
    *,
    type_key: str,
    key_value: str,
    params: dict,
    lookup: ContactLookup,
    occurred_at: datetime | None = None,
) -> int:
    """Store one event and have it processed soon (`events_kick`).

    One statement and one round trip on the hot path: the type is found by its unique key and
    the contact by indexed subqueries inside the INSERT, which runs in autocommit (no BEGIN,
    no COMMIT). The params are checked against the type's declared params, cached per process;
    an event that breaks them raises EventParamsError (the type refuses; the declaration is
    read again first, as the INSERT's token check never sees a refusal) or is stored with
    its problems (the type flags). A type's first event in a process takes one more round
    trip to read its declaration, a type's first event ever one more to create the type.
    """
    contact_sql, contact_params = _contact_sql(lookup)
    # Not waiting for the WAL flush doubles ingest throughput where fsync is slow. The cost:
    # if PostgreSQL itself crashes, events acknowledged in the last few hundred milliseconds
    # may be lost (never corrupted), the trade-off event collectors make. set_config(...,
    # true) is SET LOCAL inside the statement, so only this statement's own transaction is
    # affected (or, called inside an atomic block, that block's transaction); orders and
    # contacts commit synchronously. The CTE is volatile, so it is never inlined away.
    sql = (
        "WITH async AS (SELECT set_config('synchronous_commit', 'off', true)) "
        f"INSERT INTO {Event._meta.db_table} "
        "(event_type_id, key_value, params, contact_id, created_at, occurred_at, problems) "
        f"SELECT t.id, %s, %s::jsonb, {contact_sql}, now(), "
        "COALESCE(%s::timestamptz, now()), %s::jsonb "
        f"FROM {EventType._meta.db_table} t CROSS JOIN async "
        "WHERE t.key = %s AND t.declaration_token = %s::uuid RETURNING id"
    )
    params_json = json.dumps(params, ensure_ascii=False)
    declaration = _declarations.get(type_key)
    fresh = False  # read from the database during this call
    for _attempt in range(4):
        if declaration is None:
            declaration, fresh = _declaration_load(type_key), True
        if declaration is None:
            EventType.objects.get_or_create(key=type_key, defaults={"name": type_key})
            declaration = _declaration_load(type_key)
            if declaration is None:  # renamed or deleted meanwhile: start over
                continue
        problems = params_problems(declaration.params, params) if declaration.params else []
        if problems and declaration.refuses:
            if not fresh:  # a refusal never reaches the INSERT's check: confirm it first
                declaration = None
                continue
            raise EventParamsError(problems)
        values = [
            key_value,
            params_json,
            *contact_params,
            occurred_at,
            json.dumps(problems) if problems else None,
            type_key,
            declaration.token,
        ]
        row = fetchone_prepared(sql, values)
        if row is not None:
            events_kick()
            return row[0]
        declaration = None  # the declaration changed (or the type went): read it again
    raise RuntimeError(f"event type {type_key!r} kept changing while its event was stored")


# --- Processing: the event row is the queue -------------------------------------------------
#
# Publishing a task per event cost the ingest request more than storing the event. Instead
# unprocessed rows are the queue: `events_process_pending` (task marketing.events_drain)
# claims them with FOR UPDATE SKIP LOCKED, and each process that stores events "kicks" a
# drain once its commit is visible. Kicks are debounced per process: a commit when no drain
# of this process is due publishes one at once, so an isolated event is processed as soon
# as a task of its own would be; commits while one is due (published, its ETA not reached)
# publish nothing, since it will run after them; a commit after that schedules the next
# drain KICK_INTERVAL after the previous one. Under steady traffic a process thus publishes
# one drain per interval, and no event waits longer than the interval for its drain. (The
# ETA is compared with the worker's clock: hosts must keep their clocks in step, as NTP
# does.) A lost kick (broker down) leaves the rows for the next drain or the beat sweep.
KICK_INTERVAL = 0.05  # seconds
# Events a drain claims per transaction, and transactions per task before it hands the rest
# to a new task (so a backlog never pins a worker for long; every free worker can join).
DRAIN_BATCH = 200
DRAIN_BATCHES = 25


def _clock() -> float:
    return time.monotonic()


class _Kicker:
    def __init__(self) -> None:
        self.lock = threading.Lock()  # threaded gunicorn workers share it
        self.due = float("-inf")  # _clock() at which this process's latest drain is due

    def kick(self) -> None:
        now = _clock()
        with self.lock:
            if now < self.due:
                return  # that drain starts after this commit and will see it
            self.due = max(now, self.due + KICK_INTERVAL)
            countdown = self.due - now
        _publish_drain(countdown or None)


_kicker = _Kicker()


def events_kick() -> None:
    """Have the events committed by the surrounding transaction processed soon."""
    transaction.on_commit(_kicker.kick)


def _publish_drain(countdown: float | None) -> None:
    try:
        signature(DRAIN_TASK).apply_async(countdown=countdown)
    except Exception:  # the broker's errors vary by transport; the events themselves are stored
        logger.warning("could not publish an events drain; the next one or the sweep will")


def events_process_pending(*, batches: int = DRAIN_BATCHES) -> int:
    """Process the unprocessed events younger than SWEEP_AFTER, oldest first; return how many.

    Each batch is claimed FOR UPDATE SKIP LOCKED, so drains running side by side share the
    work and never wait for each other, and processed in the claiming transaction: starting
    workflows (idempotent) and marking the events processed commit together. A keyset on
    (created_at, id) walks past events whose processing failed, which stay unprocessed for
    a later drain or the sweep. Older events are the sweep's (`events_enqueue_unprocessed`).
    """
    table = Event._meta.db_table
    done, after = 0, None
    for _ in range(batches):
        keyset = ""
        keyset_params: list[Any] = []
        if after is not None:
            keyset, keyset_params = "AND (created_at, id) > (%s, %s)", list(after)
        with transaction.atomic():
            # The claim is the row lock: processing and marking commit in this transaction.
            rows = lock_claim(
                table=table,
                columns="id, created_at",
                where=f"processed_at IS NULL AND created_at >= %s {keyset}",
                params=[timezone.now() - SWEEP_AFTER, *keyset_params],
                order_by="created_at, id",
                limit=DRAIN_BATCH,
            )
            if not rows:
                return done
            ids = [row[0] for row in rows]
            failed = _workflows_start(ids)
            events_mark_processed(event_ids=[pk for pk in ids if pk not in failed])
        done += len(ids)
        after = (rows[-1][1], rows[-1][0])  # (created_at, id)
        if len(rows) < DRAIN_BATCH:
            return done
    _publish_drain(None)  # more may be waiting: a fresh task goes on
    return done


def events_mark_processed(*, event_ids: list[int]) -> int:
    """Mark events processed (their workflows started). Conditional on `processed_at IS
    NULL`, so a re-delivered task is a no-op. Their contacts are marked for the dynamic
    segments (marketing.segment_events)."""
    contacts_mark_for_events(event_ids=event_ids)
    return Event.objects.filter(pk__in=event_ids, processed_at__isnull=True).update(
        processed_at=timezone.now()
    )


def _enqueue(event_ids: list[int]) -> None:
    try:
        for start in range(0, len(event_ids), ENQUEUE_BATCH):
            signature(PROCESS_TASK, args=(event_ids[start : start + ENQUEUE_BATCH],)).delay()
    except Exception:  # the broker's errors vary by transport; the events stay stored
        logger.warning("could not enqueue %d event(s); the next sweep will", len(event_ids))


def _workflows_start(event_ids: list[int]) -> set[int]:
    """Start the workflows the events trigger; return the events whose start failed.

    Each event's start is a savepoint of its own, so one failure (a bug, a constraint) rolls
    back that event's runs only and the batch goes on.
    """
    failed = set()
    for event in events_that_start(events_may_start(event_ids)):
        try:
            workflows_start_for_event(event=event)
        except Exception:
            logger.exception("could not start the workflows of event %s", event.pk)
            failed.add(event.pk)
    return failed


def events_may_start(event_ids: list[int]) -> list[int]:
    """Those of the events that may start workflows: all but the flagged invalid ones whose
    type keeps flagged events out of its automations (`flagged_start_workflows` off, the
    default). Flagged ones are still processed (marked, and their contacts' segments
    checked); they just start nothing."""
    held = set(
        Event.objects.filter(
            pk__in=event_ids,
            problems__isnull=False,
            event_type__flagged_start_workflows=False,
        ).values_list("pk", flat=True)
    )
    return [pk for pk in event_ids if pk not in held] if held else event_ids


def event_starts_workflows(event: Event) -> bool:
    """Whether this event may start workflows (the rule of `events_may_start`, for one event
    already loaded with its type)."""
    return event.problems is None or event.event_type.flagged_start_workflows


def events_enqueue_unprocessed() -> int:
    """Enqueue the processing of events that drains missed (older than SWEEP_AFTER and still
    unprocessed: every kick lost, or their processing failed); bounded per run."""
    cutoff = timezone.now() - SWEEP_AFTER
    ids = list(
        Event.objects.filter(processed_at__isnull=True, created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    if ids:
        _enqueue(ids)
    return len(ids)


# Ids one bulk delete takes: each is an audit row written in the same transaction.
EVENTS_DELETE_MAX = 1000


@transaction.atomic
def events_delete(*, event_ids: list[int], actor_id: int | None = None) -> dict[int, bool]:
    """Delete events by id; {id: whether it was there and is deleted now}. Each deletion is
    an entry of the audit log (who, when, and what the event was), written in the same
    transaction. Workflow runs an event started stay, without their event."""
    if len(event_ids) > EVENTS_DELETE_MAX:
        raise FieldListError("ids", f"at most {EVENTS_DELETE_MAX} ids per call")
    events = list(
        Event.objects.filter(pk__in=event_ids)
        .select_related("event_type")
        .select_for_update(of=("self",))
        .order_by("pk")
    )
    content_type = ContentType.objects.get_for_model(Event)
    LogEntry.objects.bulk_create(
        [
            LogEntry(
                content_type=content_type,
                object_pk=str(event.pk),
                object_id=event.pk,
                object_repr=str(event)[:AUDIT_REPR_MAX],
                action=LogEntry.Action.DELETE,
                changes=_audit_changes(event),
                actor_id=actor_id,
            )
            for event in events
        ]
    )
    found = {event.pk for event in events}
    Event.objects.filter(pk__in=found).delete()
    return {pk: pk in found for pk in event_ids}


AUDIT_REPR_MAX = 300


def _audit_changes(event: Event) -> dict:
    """What the event was, as django-auditlog records a deleted object: {field: [old, None]}."""
    was = {
        "event_type": event.event_type.key,
        "key_value": event.key_value,
        "contact": event.contact_id,
        "params": json.dumps(event.params, ensure_ascii=False, default=str),
        "occurred_at": event.occurred_at.isoformat(),
        "created_at": event.created_at.isoformat(),
    }
    return {name: [str(value), None] for name, value in was.items() if value not in (None, "")}


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


# Event types Herald itself emits (marketing.engagement from the ledger, and dynamic segment
# membership from contacts.segment_members), offered as workflow triggers before the first
# such event has arrived.
BUILTIN_EVENT_TYPES = {
    "emailDelivered": "Email delivered",
    "emailOpened": "Email opened",
    "linkClicked": "Link clicked",
    "emailBounced": "Email bounced",
    "emailComplained": "Email marked as spam",
    "unsubscribed": "Unsubscribed",
    "smsDelivered": "SMS delivered",
    "segmentEntered": "Entered a segment",
    "segmentLeft": "Left a segment",
}


def event_types_builtin_ensure() -> None:
    """Create the event types Herald emits that do not exist yet (one statement; a type
    created meanwhile by an event is left as it is)."""
    EventType.objects.bulk_create(
        [EventType(key=key, name=name) for key, name in BUILTIN_EVENT_TYPES.items()],
        ignore_conflicts=True,
    )


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
    invalid: bool | None = None,
):
    """Event history: newest first; `event_type` is a key or an id, dates bound created_at
    as [from, to); `invalid` true: only events flagged against their type's declaration."""
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
    if invalid is not None:
        events = events.filter(problems__isnull=not invalid)
    return events.order_by("-created_at", "-id")

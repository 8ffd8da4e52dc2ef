"""What starts runs: events, contacts entering or leaving a segment, yearly dates.

Runs are inserted set-based (INSERT ... SELECT) with the re-entry policy in the WHERE
clause, so a segment of a million contacts or a busy birthday never walks through Python.

Entering or leaving a dynamic segment is an event (segmentEntered / segmentLeft, emitted as
its stored members change: contacts.segment_members): such a workflow starts on that event,
for its segment, like an event-triggered one. A static segment's members change by hand
and emit nothing, so its workflows still compare the segment with a snapshot every minute.
"""

# Table and column names below come from the models; every value goes through parameters.
# ruff: noqa: S608

import datetime as dt
import json
import zoneinfo
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from config.core.errors import FieldError
from config.core.models import Organisation
from contacts.filters.compiler import segment_contacts
from contacts.models import Contact, ImportJob, ImportStatus, Segment, SegmentKind
from contacts.segment_members import ENTERED_EVENT, LEFT_EVENT
from contacts.segments import groups_static_ids
from marketing.models import Event, EventType
from marketing.workflows import contact_blocks
from marketing.workflows import graph as wf_graph
from marketing.workflows.conditions import params_match_all
from marketing.workflows.engine import runs_advance
from marketing.workflows.graph import params_as_dict
from marketing.workflows.models import (
    ReEntry,
    TriggerKind,
    Workflow,
    WorkflowRun,
    WorkflowRunStatus,
    WorkflowSegmentMember,
    WorkflowStatus,
)
from marketing.workflows.stops import runs_stop_for_event, stopping_event_types

# How often a segment-triggered workflow compares its segment with its snapshot: each
# check reads the whole segment, so it is not done on every tick.
SEGMENT_CHECK_EVERY = dt.timedelta(seconds=60)


def _policy_sql(workflow: Workflow) -> tuple[str, list]:
    run_table = WorkflowRun._meta.db_table
    if workflow.re_entry == ReEntry.EVERY_TIME:
        return "TRUE", []
    if workflow.re_entry == ReEntry.AFTER_DAYS:
        return (
            f"""NOT EXISTS (SELECT 1 FROM {run_table} p WHERE p.workflow_id = %s
                  AND p.contact_id = c.id AND p.started_at > now() - %s)""",
            [workflow.pk, dt.timedelta(days=workflow.re_entry_days)],
        )
    return (
        f"""NOT EXISTS (SELECT 1 FROM {run_table} p
              WHERE p.workflow_id = %s AND p.contact_id = c.id)""",
        [workflow.pk],
    )


def runs_insert(
    *,
    workflow: Workflow,
    contacts_sql: str,
    contacts_params: list,
    event_id: int | None = None,
    params: dict | None = None,
    claimed: bool = False,
) -> list[int]:
    """Start runs of the workflow's current version for the contacts `contacts_sql` selects
    (a query with an `id` column), minus those the re-entry policy keeps out. Claimed runs
    are advanced by the caller; the others wait for the next tick."""
    version = workflow.current_version
    if version is None:
        return []
    policy, policy_params = _policy_sql(workflow)
    status = WorkflowRunStatus.RUNNING if claimed else WorkflowRunStatus.WAITING
    run_table = WorkflowRun._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {run_table} (workflow_id, version_id, contact_id, event_id, params,
                       current_step, status, path, wake_at, claimed_at, error, attempts,
                       started_at, updated_at)
                SELECT %s, %s, c.id, %s, %s::jsonb, %s, %s, '[]'::jsonb, now(),
                       CASE WHEN %s THEN now() END, '', 0, now(), now()
                  FROM ({contacts_sql}) c
                 WHERE {policy}
                ON CONFLICT DO NOTHING
             RETURNING id""",
            [
                workflow.pk,
                version.pk,
                event_id,
                json.dumps(params or {}, default=str),
                version.graph.get("start") or "",
                status,
                claimed,
                *contacts_params,
                *policy_params,
            ],
        )
        return [row[0] for row in cursor.fetchall()]


def _contact_lock(workflow_id: int, contact_id: int) -> None:
    """Two events of one contact processed at once must not both pass a once-only policy."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"workflow-entry:{workflow_id}:{contact_id}"],
        )


@transaction.atomic
def workflows_start_for_event(*, event) -> list[int]:
    """Stop the runs this event ends (stop conditions), then start every active workflow
    triggered by this event's type (whose param conditions hold) for the event's contact, and
    advance the new runs once this commits. An event whose keyValue matches no contact starts
    the workflows that begin with a contact block that creates it (contact_blocks). Idempotent:
    an event starts a workflow at most once (unique key), so a retried task is harmless."""

    params = params_as_dict(event.params)
    if event.contact_id is not None:
        runs_stop_for_event(event=event, params=params)
    workflows = Workflow.objects.filter(
        status=WorkflowStatus.ACTIVE,
        trigger_kind=TriggerKind.EVENT,
        event_type_id=event.event_type_id,
        current_version__isnull=False,
    ).select_related("current_version")
    segment_trigger = _segment_trigger_of(event)
    segment_id = params.get("segmentId")
    if segment_trigger is not None and isinstance(segment_id, int):
        workflows = workflows | Workflow.objects.filter(
            status=WorkflowStatus.ACTIVE,
            trigger_kind=segment_trigger,
            segment_id=segment_id,
            segment__kind=SegmentKind.DYNAMIC,
            current_version__isnull=False,
        ).select_related("current_version")
    # By id, the one order every processor takes entry locks in (see events_that_start).
    workflows = workflows.order_by("pk")
    table = Contact._meta.db_table
    started: list[int] = []
    for workflow in workflows:
        if workflow.trigger_kind == TriggerKind.EVENT and not params_match_all(
            workflow.trigger_conditions, params
        ):
            continue
        if event.contact_id is None:
            graph = workflow.current_version.graph if workflow.current_version else {}
            if not contact_blocks.creates_contact(graph):
                continue
            first = wf_graph.steps_by_id(graph)[graph["start"]]
            contact_id = contact_blocks.contact_for_key(
                key_value=event.key_value, key_as=first.get("key_as") or "auto"
            )
            if contact_id is None:
                continue
            Event.objects.filter(pk=event.pk).update(contact_id=contact_id)
            event.contact_id = contact_id
        _contact_lock(workflow.pk, event.contact_id)
        started += runs_insert(
            workflow=workflow,
            contacts_sql=f"SELECT id FROM {table} WHERE id = %s AND deleted_at IS NULL",
            contacts_params=[event.contact_id],
            event_id=event.pk,
            params=params,
            claimed=True,
        )
    if started:
        transaction.on_commit(lambda: runs_advance(run_ids=started))
    return started


def _segment_trigger_of(event) -> str | None:
    """The segment trigger a segment event answers (None for any other event)."""
    key = event.event_type.key
    if key == ENTERED_EVENT:
        return TriggerKind.SEGMENT_ENTER
    if key == LEFT_EVENT:
        return TriggerKind.SEGMENT_LEAVE
    return None


def workflows_start_for_events(*, event_ids: list[int]) -> int:
    """Batch form for events stored in bulk (orders, contact imports)."""
    return sum(len(workflows_start_for_event(event=e)) for e in events_that_start(event_ids))


def events_that_start(event_ids: list[int]):
    """Those of the events whose type an active event-triggered workflow listens to.

    In contact order: a batch processed in one transaction keeps each (workflow, contact)
    entry lock (`_contact_lock`) until it commits, and batches taken side by side must take
    those locks in one global order or they could deadlock.
    """

    workflow_types = set(
        Workflow.objects.filter(
            status=WorkflowStatus.ACTIVE, trigger_kind=TriggerKind.EVENT
        ).values_list("event_type_id", flat=True)
    )
    segment_keys = [
        key
        for kind, key in (
            (TriggerKind.SEGMENT_ENTER, ENTERED_EVENT),
            (TriggerKind.SEGMENT_LEAVE, LEFT_EVENT),
        )
        if Workflow.objects.filter(
            status=WorkflowStatus.ACTIVE, trigger_kind=kind, segment__kind=SegmentKind.DYNAMIC
        ).exists()
    ]
    stopping_types, stopping_keys = stopping_event_types()
    segment_keys += stopping_keys
    if segment_keys:
        workflow_types |= set(
            EventType.objects.filter(key__in=segment_keys).values_list("pk", flat=True)
        )
    workflow_types |= stopping_types
    if not workflow_types:
        return Event.objects.none()
    # Events of no contact matter only to workflows that create their contact.
    creating = _creating_event_types()
    return (
        Event.objects.filter(pk__in=event_ids, event_type_id__in=workflow_types)
        .filter(Q(contact__isnull=False) | Q(event_type_id__in=creating))
        .select_related("event_type")
        .order_by(F("contact_id").asc(nulls_last=True), "pk")
    )


def _creating_event_types() -> set[int]:
    """The event types of active workflows that begin with a contact block creating it."""
    return {
        workflow.event_type_id
        for workflow in Workflow.objects.filter(
            status=WorkflowStatus.ACTIVE,
            trigger_kind=TriggerKind.EVENT,
            current_version__isnull=False,
            event_type__isnull=False,
        ).select_related("current_version")
        if workflow.event_type_id is not None
        and workflow.current_version is not None
        and contact_blocks.creates_contact(workflow.current_version.graph)
    }


def _segment_sql(segment: Segment) -> tuple[str, tuple[Any, ...]]:
    return segment_contacts(segment).values("id").query.sql_with_params()


@transaction.atomic
def segment_snapshot_reset(*, workflow: Workflow) -> None:
    """Take the segment's members as they are now, so activation does not start everyone
    already in (or out of) it. Static segments only: a dynamic one's entries and leaves are
    events (see the module's docstring)."""
    WorkflowSegmentMember.objects.filter(workflow=workflow).delete()
    if workflow.segment is None or workflow.segment.kind != SegmentKind.STATIC:
        return
    members_sql, members_params = _segment_sql(workflow.segment)
    table = WorkflowSegmentMember._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (workflow_id, contact_id) SELECT %s, m.id FROM ({members_sql}) m",
            [workflow.pk, *members_params],
        )
    Workflow.objects.filter(pk=workflow.pk).update(segment_checked_at=timezone.now())


def segment_workflow_check(*, workflow_id: int) -> int:
    """Start runs for contacts that entered (or left) the segment since the last check and
    move the snapshot forward, in one transaction under the workflow's row lock."""
    table = WorkflowSegmentMember._meta.db_table
    with transaction.atomic():
        workflow = (
            Workflow.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("segment", "current_version")
            .filter(pk=workflow_id, status=WorkflowStatus.ACTIVE)
            .first()
        )
        if (
            workflow is None
            or workflow.segment is None
            or workflow.segment.kind != SegmentKind.STATIC
        ):
            return 0
        members_sql, members_params = _segment_sql(workflow.segment)
        entering = workflow.trigger_kind == TriggerKind.SEGMENT_ENTER
        if entering:
            changed_sql = (
                f"SELECT m.id FROM ({members_sql}) m WHERE NOT EXISTS (SELECT 1 FROM {table} s "
                "WHERE s.workflow_id = %s AND s.contact_id = m.id)"
            )
            changed_params = [*members_params, workflow.pk]
        else:
            changed_sql = (
                f"SELECT s.contact_id AS id FROM {table} s WHERE s.workflow_id = %s "
                f"AND s.contact_id NOT IN (SELECT m.id FROM ({members_sql}) m)"
            )
            changed_params = [workflow.pk, *members_params]
        started = runs_insert(
            workflow=workflow, contacts_sql=changed_sql, contacts_params=changed_params
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} s WHERE s.workflow_id = %s "
                f"AND s.contact_id NOT IN (SELECT m.id FROM ({members_sql}) m)",
                [workflow.pk, *members_params],
            )
            cursor.execute(
                f"INSERT INTO {table} (workflow_id, contact_id) SELECT %s, m.id "
                f"FROM ({members_sql}) m ON CONFLICT DO NOTHING",
                [workflow.pk, *members_params],
            )
        Workflow.objects.filter(pk=workflow.pk).update(segment_checked_at=timezone.now())
        return len(started)


def segment_workflows_check(*, now: dt.datetime | None = None) -> int:
    now = now or timezone.now()
    due = Workflow.objects.filter(
        status=WorkflowStatus.ACTIVE,
        trigger_kind__in=[TriggerKind.SEGMENT_ENTER, TriggerKind.SEGMENT_LEAVE],
        segment__kind=SegmentKind.STATIC,
        current_version__isnull=False,
    ).exclude(segment_checked_at__gt=now - SEGMENT_CHECK_EVERY)
    return sum(segment_workflow_check(workflow_id=pk) for pk in due.values_list("pk", flat=True))


def _organisation_zone() -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(Organisation.load().time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def date_workflow_fire(*, workflow: Workflow, today: dt.date) -> int:
    """Start runs for contacts whose date field falls on `today` minus the offset (month and
    day, any year: a birthday). 29 February dates fire only in leap years."""

    field_id = str((workflow.date_trigger or {}).get("field") or "")
    if not field_id.isdigit():
        return 0
    target = today - dt.timedelta(days=int((workflow.date_trigger or {}).get("offset_days") or 0))
    table = Contact._meta.db_table
    # fields->>'<id>' holds an ISO date (YYYY-MM-DD); its month-day is compared as text.
    contacts_sql = (
        f"SELECT id FROM {table} WHERE deleted_at IS NULL "
        "AND substring(fields->>%s from 6 for 5) = %s"
    )
    return len(
        runs_insert(
            workflow=workflow,
            contacts_sql=contacts_sql,
            contacts_params=[field_id, target.strftime("%m-%d")],
        )
    )


def date_workflows_fire(*, now: dt.datetime | None = None) -> int:
    """Fire each date workflow once per day, at its time of day in the organisation's zone.
    The conditional UPDATE on date_fired_on lets only one of several ticks fire it."""
    now = now or timezone.now()
    local = now.astimezone(_organisation_zone())
    started = 0
    for workflow in Workflow.objects.filter(
        status=WorkflowStatus.ACTIVE, trigger_kind=TriggerKind.DATE, current_version__isnull=False
    ).select_related("current_version"):
        at = str((workflow.date_trigger or {}).get("time") or "09:00")
        try:
            hour, minute = (int(part) for part in at.split(":"))
        except ValueError:
            continue
        if (local.hour, local.minute) < (hour, minute):
            continue
        with transaction.atomic():
            if _fired_today(workflow, local.date()):
                started += date_workflow_fire(workflow=workflow, today=local.date())
    return started


# --- Group schedules, imports, buttons and API calls ----------------------------------------

# An import's finish is committed a moment after its finished_at is taken (the API's bulk
# session commits its contacts with it): imports are read this long after they finish, so a
# check never passes over one that is still committing.
IMPORT_SETTLE = dt.timedelta(seconds=30)


def schedule_due(schedule: dict, local: dt.datetime) -> bool:
    """Whether a group schedule's occurrence of `local`'s day has come."""
    try:
        hour, minute = (int(part) for part in str(schedule.get("time") or "").split(":"))
    except ValueError:
        return False
    if (local.hour, local.minute) < (hour, minute):
        return False
    if schedule.get("every") == "week":
        return local.isoweekday() == schedule.get("weekday")
    return schedule.get("every") == "day"


def _segment_workflows(kind: str):
    return Workflow.objects.filter(
        status=WorkflowStatus.ACTIVE,
        trigger_kind=kind,
        current_version__isnull=False,
        segment__isnull=False,
    ).select_related("current_version", "segment")


def _fired_today(workflow: Workflow, day: dt.date) -> bool:
    """Claim the day's occurrence: the conditional UPDATE lets one of several ticks win."""
    return bool(
        Workflow.objects.filter(pk=workflow.pk)
        .exclude(date_fired_on__gte=day)
        .update(date_fired_on=day)
    )


def schedule_workflows_fire(*, now: dt.datetime | None = None) -> int:
    """Start a run for every member of each scheduled workflow's segment, once per occurrence
    (day, or weekday), at its time in the organisation's zone: one INSERT ... SELECT each.
    The conditional UPDATE on date_fired_on lets only one of several ticks fire it."""
    now = now or timezone.now()
    local = now.astimezone(_organisation_zone())
    started = 0
    for workflow in _segment_workflows(TriggerKind.SCHEDULE):
        if not schedule_due(workflow.schedule or {}, local):
            continue
        with transaction.atomic():
            claimed = _fired_today(workflow, local.date())
            if claimed and workflow.segment is not None:
                members_sql, members_params = _segment_sql(workflow.segment)
                started += len(
                    runs_insert(
                        workflow=workflow,
                        contacts_sql=members_sql,
                        contacts_params=list(members_params),
                    )
                )
    return started


def import_workflows_check(*, now: dt.datetime | None = None) -> int:
    """Start "after an import into this segment" workflows for the contacts of the imports
    (CSV files and API sessions) that finished since the last check and added contacts to
    the segment: the imported contacts still in it, one INSERT ... SELECT per import."""
    now = now or timezone.now()
    until = now - IMPORT_SETTLE
    started = 0
    for workflow in _segment_workflows(TriggerKind.IMPORT):
        segment = workflow.segment
        if segment is None:
            continue
        with transaction.atomic():
            # Under the workflow's row lock, so two ticks never read one import twice.
            locked = (
                Workflow.objects.select_for_update(skip_locked=True)
                .filter(pk=workflow.pk)
                .values_list("pk", "segment_checked_at")
                .first()
            )
            if locked is None:
                continue
            jobs = ImportJob.objects.filter(status=ImportStatus.FINISHED, finished_at__lte=until)
            if locked[1] is not None:  # else never checked: activation sets it
                jobs = jobs.filter(finished_at__gt=locked[1])
            jobs = jobs.only("pk", "payload", "contact_ids").order_by("finished_at")
            for job in jobs.iterator():
                names = ((job.payload or {}).get("options") or {}).get("groupNames") or []
                if segment.pk not in groups_static_ids(names=names, create=False):
                    continue
                members_sql, members_params = _segment_sql(segment)
                started += len(
                    runs_insert(
                        workflow=workflow,
                        contacts_sql=f"SELECT m.id FROM ({members_sql}) m "
                        "WHERE m.id = ANY(%s::bigint[])",
                        contacts_params=[*members_params, list(job.contact_ids)],
                    )
                )
            Workflow.objects.filter(pk=workflow.pk).update(segment_checked_at=until)
    return started


class StartError(FieldError):
    """A start by API call or button is refused (400 naming the field, 404, 409)."""

    def __init__(self, field: str, message: str, *, status: int = 400):
        super().__init__(field, message)
        self.status = status


@transaction.atomic
def workflow_start_for_contact(
    *,
    workflow: Workflow,
    contact_id: int | None = None,
    email: str = "",
    external_id: str = "",
    params: dict | None = None,
) -> tuple[int, list[int]]:
    """Start a "button" workflow for one contact (the API call, the button's link): by id,
    email or external id; a workflow that begins with a contact block that creates contacts
    creates one for an email or external id it does not know. Returns (contact id, new run
    ids; none when the re-entry policy keeps the contact out). The run advances on commit."""
    if workflow.trigger_kind != TriggerKind.BUTTON:
        raise StartError(
            "workflow", "this workflow is not started by a button or an API call", status=409
        )
    if workflow.status != WorkflowStatus.ACTIVE or workflow.current_version is None:
        raise StartError("workflow", "this workflow is not active", status=409)
    alive = Contact.objects.alive()
    if contact_id is not None:
        found = alive.filter(pk=contact_id).values_list("pk", flat=True).first()
        field = "contactId"
    elif email:
        found = alive.filter(email=email).order_by("pk").values_list("pk", flat=True).first()
        field = "email"
    elif external_id:
        found = alive.filter(external_customer_id=external_id).values_list("pk", flat=True).first()
        field = "externalCustomerId"
    else:
        raise StartError("contactId", "name the contact: contactId, email or externalCustomerId")
    if (
        found is None
        and contact_id is None
        and contact_blocks.creates_contact(workflow.current_version.graph)
    ):
        found = contact_blocks.contact_for_key(
            key_value=email or external_id, key_as="email" if email else "externalId"
        )
    if found is None:
        raise StartError(field, "no such contact", status=404)
    _contact_lock(workflow.pk, found)
    table = Contact._meta.db_table
    started = runs_insert(
        workflow=workflow,
        contacts_sql=f"SELECT id FROM {table} WHERE id = %s AND deleted_at IS NULL",
        contacts_params=[found],
        params=params or {},
        claimed=True,
    )
    if started:
        transaction.on_commit(lambda: runs_advance(run_ids=started))
    return found, started

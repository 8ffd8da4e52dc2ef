"""Stop conditions: a run leaves its workflow early when its contact produces a given event
(a purchase, say), is no longer in a segment, or unsubscribes.

    workflow.stop_conditions = [{"type": "event", "event_type_id": 5},
                                {"type": "segment_leave", "segment_id": 3},
                                {"type": "unsubscribed"}]

Checked set-based twice: when an event arrives (the event's own type, `segmentLeft` of a
dynamic segment, `unsubscribed`), for the waiting runs of its contact; and before each wake-up
tick claims due runs, for every due run at once (an event since the run started, the segment's
members now, the unsubscribed list), which also catches static segments and runs that were
busy when the event came. A stopped run is exited with the reason in `exit_reason` and a last
path entry, which the run history shows.
"""

# Table names come from the models; every value goes through parameters.
# ruff: noqa: S608

from typing import Any

from django.db import connection
from django.utils.translation import gettext_lazy as _

from contacts.filters.compiler import segment_contacts
from contacts.models import Contact, Segment, Unsubscribed
from contacts.segment_members import LEFT_EVENT
from marketing.models import Event, EventType
from marketing.workflows.models import Workflow, WorkflowRun, WorkflowRunStatus, WorkflowStatus

STOP_TYPES = {
    "event": _("The contact produces an event"),
    "segment_leave": _("The contact is no longer in a segment"),
    "unsubscribed": _("The contact unsubscribes"),
}
MAX_STOP_CONDITIONS = 20
# The event marketing.engagement emits when a contact unsubscribes (that module imports the
# events processor, which imports this one, so the key is repeated here).
UNSUBSCRIBED = "unsubscribed"


def _stopping_workflows():
    # Paused workflows' runs hold where they are, but a stop still ends them.
    return Workflow.objects.filter(
        status__in=[WorkflowStatus.ACTIVE, WorkflowStatus.PAUSED]
    ).exclude(stop_conditions=[])


def stopping_event_types() -> tuple[set[int], list[str]]:
    """The event type ids that stop runs, and the keys of Herald's own events that do
    (segmentLeft, unsubscribed): the events processor must look at their events."""
    type_ids: set[int] = set()
    keys: list[str] = []
    for conditions in _stopping_workflows().values_list("stop_conditions", flat=True):
        for condition in conditions or []:
            kind = condition.get("type")
            if kind == "event" and isinstance(condition.get("event_type_id"), int):
                type_ids.add(condition["event_type_id"])
            elif kind == "segment_leave" and LEFT_EVENT not in keys:
                keys.append(LEFT_EVENT)
            elif kind == "unsubscribed" and UNSUBSCRIBED not in keys:
                keys.append(UNSUBSCRIBED)
    return type_ids, keys


def stop_reason(condition: dict) -> str:
    """The sentence the run history shows for a run this condition stopped."""
    kind = condition.get("type")
    if kind == "event":
        event_type = EventType.objects.filter(pk=condition.get("event_type_id")).first()
        key = event_type.key if event_type else condition.get("event_type_id")
        return f"stop condition: the contact produced the event {key}"
    if kind == "segment_leave":
        segment = Segment.objects.filter(pk=condition.get("segment_id")).first()
        name = f"“{segment.name}”" if segment else str(condition.get("segment_id"))
        return f"stop condition: the contact is no longer in the segment {name}"
    return "stop condition: the contact unsubscribed"


def _runs_exit(*, workflow_id: int, reason: str, where: str, params: list[Any]) -> int:
    """Exit the workflow's waiting runs that `where` (over run `r`) selects, in one UPDATE."""
    table = WorkflowRun._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {table} r
                   SET status = %s, exit_reason = %s, finished_at = now(), wake_at = NULL,
                       claimed_at = NULL, updated_at = now(),
                       path = r.path || jsonb_build_array(jsonb_build_object(
                           'step', r.current_step, 'kind', 'stop',
                           'at', to_jsonb(now()), 'note', %s::text))
                 WHERE r.workflow_id = %s AND r.status = %s AND ({where})""",
            [
                WorkflowRunStatus.EXITED,
                reason[:300],
                reason,
                workflow_id,
                WorkflowRunStatus.WAITING,
                *params,
            ],
        )
        return cursor.rowcount


def runs_stop_for_event(*, event, params: dict) -> int:
    """Exit the waiting runs of the event's contact whose workflows this event stops."""
    key = event.event_type.key
    stopped = 0
    for workflow in _stopping_workflows().order_by("pk"):
        for condition in workflow.stop_conditions or []:
            kind = condition.get("type")
            matches = (
                (kind == "event" and condition.get("event_type_id") == event.event_type_id)
                or (
                    kind == "segment_leave"
                    and key == LEFT_EVENT
                    and params.get("segmentId") == condition.get("segment_id")
                )
                or (kind == "unsubscribed" and key == UNSUBSCRIBED)
            )
            if matches:
                stopped += _runs_exit(
                    workflow_id=workflow.pk,
                    reason=stop_reason(condition),
                    where="r.contact_id = %s AND r.event_id IS DISTINCT FROM %s "
                    "AND r.started_at <= %s",
                    params=[event.contact_id, event.pk, event.created_at],
                )
    return stopped


def _due_condition_sql(condition: dict) -> tuple[str, list[Any]] | None:
    kind = condition.get("type")
    if kind == "event" and isinstance(condition.get("event_type_id"), int):
        # Served by the index on event (contact, created_at).
        return (
            f"""EXISTS (SELECT 1 FROM {Event._meta.db_table} e
                 WHERE e.contact_id = r.contact_id AND e.event_type_id = %s
                   AND e.created_at > r.started_at AND e.id IS DISTINCT FROM r.event_id)""",
            [condition["event_type_id"]],
        )
    if kind == "segment_leave":
        segment = Segment.objects.filter(pk=condition.get("segment_id")).first()
        if segment is None:
            return None
        members_sql, members_params = segment_contacts(segment).values("id").query.sql_with_params()
        return (
            f"NOT EXISTS (SELECT 1 FROM ({members_sql}) m WHERE m.id = r.contact_id)",
            list(members_params),
        )
    if kind == "unsubscribed":
        return (
            f"""EXISTS (SELECT 1 FROM {Contact._meta.db_table} c
                 JOIN {Unsubscribed._meta.db_table} u ON u.email = c.email
                 WHERE c.id = r.contact_id AND c.email <> '')""",
            [],
        )
    return None


def runs_stop_due() -> int:
    """Exit the due waiting runs (those the tick is about to wake) whose stop conditions hold
    now: one UPDATE per workflow and condition."""
    stopped = 0
    for workflow in _stopping_workflows().order_by("pk"):
        for condition in workflow.stop_conditions or []:
            compiled = _due_condition_sql(condition)
            if compiled is None:
                continue
            where, params = compiled
            stopped += _runs_exit(
                workflow_id=workflow.pk,
                reason=stop_reason(condition),
                where=f"r.wake_at <= now() AND {where}",
                params=params,
            )
    return stopped


def stop_problems(workflow: Workflow) -> list[str]:
    """Stop conditions that miss a setting or name something gone, for activation."""
    conditions = workflow.stop_conditions or []
    if not isinstance(conditions, list) or len(conditions) > MAX_STOP_CONDITIONS:
        return [f"Stop conditions: at most {MAX_STOP_CONDITIONS}, as a list."]
    problems = []
    for number, condition in enumerate(conditions, 1):
        kind = condition.get("type") if isinstance(condition, dict) else None
        name = f"Stop condition {number}"
        if kind == "event":
            type_id = condition.get("event_type_id")
            if not isinstance(type_id, int) or not EventType.objects.filter(pk=type_id).exists():
                problems.append(f"{name}: choose the event type that stops a run.")
        elif kind == "segment_leave":
            segment_id = condition.get("segment_id")
            known = isinstance(segment_id, int) and Segment.objects.filter(pk=segment_id).exists()
            if not known:
                problems.append(f"{name}: choose the segment a run's contact must stay in.")
        elif kind != "unsubscribed":
            problems.append(f"{name}: unknown kind {kind!r}.")
    return problems

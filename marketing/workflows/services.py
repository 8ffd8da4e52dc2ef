"""Every write to workflows: create, edit the trigger and the steps, activate, pause."""

import secrets
from typing import Any

from django.db import transaction
from django.utils import timezone

from campaigns.promo.models import PromoPool
from config.core.errors import ConflictError, HeraldError
from contacts.filters.compiler import FilterError, validate_filter
from contacts.models import CustomField, CustomFieldType, Segment, SegmentKind
from marketing.workflows import contact_blocks, send_blocks
from marketing.workflows import graph as wf_graph
from marketing.workflows.models import (
    ReEntry,
    TriggerKind,
    Workflow,
    WorkflowStatus,
    WorkflowVersion,
)
from marketing.workflows.stops import stop_problems
from marketing.workflows.triggers import segment_snapshot_reset
from templates.models import MessageTemplate

# Allowed status moves; anything else is refused with WorkflowStateError.
TRANSITIONS: dict[str, set[str]] = {
    WorkflowStatus.DRAFT: {WorkflowStatus.ACTIVE},
    WorkflowStatus.ACTIVE: {WorkflowStatus.PAUSED, WorkflowStatus.ACTIVE},
    WorkflowStatus.PAUSED: {WorkflowStatus.ACTIVE},
}


class WorkflowError(HeraldError):
    """The workflow cannot take this change; `problems` are sentences for the marketer."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


class WorkflowStateError(WorkflowError, ConflictError):
    """The change is not allowed in the workflow's status (TRANSITIONS)."""


@transaction.atomic
def workflow_create(
    *, name: str, graph: dict | None = None, created_by: Any = None, **settings: Any
) -> Workflow:
    workflow = Workflow(
        name=name.strip() or "Untitled workflow",
        draft_graph=graph or wf_graph.empty_graph(),
        webhook_secret=secrets.token_hex(32),
        button_key=secrets.token_urlsafe(12),
        created_by=created_by,
        **settings,
    )
    workflow.save()
    return workflow


@transaction.atomic
def workflow_update_settings(
    *,
    workflow: Workflow,
    name: str,
    description: str = "",
    trigger_kind: str,
    event_type: Any = None,
    trigger_conditions: list | None = None,
    segment: Any = None,
    date_trigger: dict | None = None,
    re_entry: str = ReEntry.ONCE,
    re_entry_days: int = 30,
    schedule: dict | None = None,
    stop_conditions: list | None = None,
) -> Workflow:
    """Name, trigger, stop conditions and re-entry policy. Applies to runs started from now
    on; stop conditions also to the runs in progress."""
    workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
    segment_changed = workflow.segment_id != getattr(segment, "pk", None) or (
        workflow.trigger_kind != trigger_kind
    )
    workflow.name = name.strip() or workflow.name
    workflow.description = description
    workflow.trigger_kind = trigger_kind
    workflow.event_type = event_type
    workflow.trigger_conditions = trigger_conditions or []
    workflow.segment = segment
    workflow.date_trigger = date_trigger or {}
    workflow.re_entry = re_entry
    workflow.re_entry_days = re_entry_days
    workflow.schedule = schedule or {}
    workflow.stop_conditions = stop_conditions or []
    if trigger_kind == TriggerKind.BUTTON and not workflow.button_key:
        workflow.button_key = secrets.token_urlsafe(12)
    workflow.save()
    if segment_changed and workflow.status == WorkflowStatus.ACTIVE:
        _trigger_reset(workflow)
    return workflow


def _trigger_reset(workflow: Workflow) -> None:
    """What a (newly) active trigger starts from: the segment as it is now, the imports
    finishing from now on."""
    if workflow.trigger_kind in (TriggerKind.SEGMENT_ENTER, TriggerKind.SEGMENT_LEAVE):
        segment_snapshot_reset(workflow=workflow)
    elif workflow.trigger_kind == TriggerKind.IMPORT:
        Workflow.objects.filter(pk=workflow.pk).update(segment_checked_at=timezone.now())


def _save_graph(workflow: Workflow, graph: dict) -> Workflow:
    Workflow.objects.filter(pk=workflow.pk).update(draft_graph=graph)
    workflow.draft_graph = graph
    return workflow


@transaction.atomic
def workflow_step_add(
    *, workflow: Workflow, kind: str, after: str = "", branch: str = "next"
) -> str:
    workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
    graph, step_id = wf_graph.step_insert(
        workflow.draft_graph, kind=kind, after=after, branch=branch
    )
    _save_graph(workflow, graph)
    return step_id


@transaction.atomic
def workflow_step_update(*, workflow: Workflow, step: dict) -> Workflow:
    workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
    return _save_graph(workflow, wf_graph.step_replace(workflow.draft_graph, step=step))


@transaction.atomic
def workflow_step_remove(*, workflow: Workflow, step_id: str) -> Workflow:
    workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
    return _save_graph(workflow, wf_graph.step_remove(workflow.draft_graph, step_id=step_id))


def _reference_problems(graph: dict) -> list[str]:
    """Steps that name templates or segments which are gone, unpublished or unfit."""

    problems = []
    steps = graph.get("steps", [])
    template_ids = wf_graph.reachable_templates(graph)
    templates = {t.pk: t for t in MessageTemplate.objects.filter(pk__in=template_ids)}
    segment_ids = [s.get("segment_id") for s in steps if s.get("kind", "").startswith("segment_")]
    segments = {s.pk: s for s in Segment.objects.filter(pk__in=[i for i in segment_ids if i])}
    for step in steps:
        name = wf_graph.step_name(step)
        kind = step.get("kind")
        if kind == "send" and isinstance(step.get("template_id"), int):
            template = templates.get(step["template_id"])
            if template is None:
                problems.append(f"{name}: template {step['template_id']} no longer exists")
                continue
            version = template.versions.order_by("-number").first()
            if version is None:
                problems.append(f"{name}: template “{template.name}” has no published version")
            elif version.channel != step.get("channel"):
                problems.append(
                    f"{name}: template “{template.name}” is a {version.channel} message, "
                    f"not {step.get('channel')}"
                )
        elif kind in ("segment_add", "segment_remove") and isinstance(step.get("segment_id"), int):
            segment = segments.get(step["segment_id"])
            if segment is None:
                problems.append(f"{name}: segment {step['segment_id']} no longer exists")
            elif segment.kind != SegmentKind.STATIC:
                problems.append(f"{name}: segment “{segment.name}” is dynamic; choose a static one")
        elif kind == "condition" and (step.get("check") or {}).get("type") == "contact":
            try:
                validate_filter((step.get("check") or {}).get("filter") or {})
            except FilterError as exc:
                problems.append(f"{name}: the contact filter is wrong at {exc.path}: {exc.message}")
        elif kind == "promo_issue" and isinstance(step.get("pool_id"), int):
            if not PromoPool.objects.filter(pk=step["pool_id"]).exists():
                problems.append(f"{name}: promo pool {step['pool_id']} no longer exists")
        elif kind == "contact":
            problems.extend(contact_blocks.reference_problems(step, name))
        elif kind == "update_field":
            match = wf_graph.CUSTOM_FIELD_RE.match(step.get("field") or "")
            if match and not CustomField.objects.filter(pk=int(match.group(1))).exists():
                problems.append(f"{name}: custom field {match.group(1)} no longer exists")
    return problems


def _trigger_problems(workflow: Workflow) -> list[str]:
    kind = workflow.trigger_kind
    if kind == TriggerKind.EVENT and workflow.event_type_id is None:
        return ["Trigger: choose the event type that starts this workflow."]
    if kind in (TriggerKind.SEGMENT_ENTER, TriggerKind.SEGMENT_LEAVE) and not workflow.segment_id:
        return ["Trigger: choose the segment to watch."]
    if kind in (TriggerKind.IMPORT, TriggerKind.SCHEDULE):
        segment = workflow.segment if workflow.segment_id else None
        if segment is None:
            return ["Trigger: choose the segment whose contacts start this workflow."]
        if kind == TriggerKind.IMPORT and segment.kind != SegmentKind.STATIC:
            return ["Trigger: imports add contacts to static segments; choose a static one."]
        if kind == TriggerKind.SCHEDULE:
            return _schedule_problems(workflow.schedule or {})
    if kind == TriggerKind.DATE:
        field_id = str((workflow.date_trigger or {}).get("field") or "")
        field = CustomField.objects.filter(pk=int(field_id)).first() if field_id.isdigit() else None
        if field is None or field.type != CustomFieldType.DATE:
            return ["Trigger: choose a date custom field (for example a birthday)."]
        if not wf_graph.TIME_RE.match(str((workflow.date_trigger or {}).get("time") or "")):
            return ["Trigger: the time of day must be HH:MM (24-hour)."]
    return []


def _schedule_problems(schedule: dict) -> list[str]:
    if schedule.get("every") not in ("day", "week"):
        return ["Trigger: the schedule runs every day or every week."]
    if not wf_graph.TIME_RE.match(str(schedule.get("time") or "")):
        return ["Trigger: the schedule's time of day must be HH:MM (24-hour)."]
    if schedule["every"] == "week" and schedule.get("weekday") not in range(1, 8):
        return ["Trigger: choose the schedule's day of the week."]
    return []


def workflow_problems(workflow: Workflow) -> list[str]:
    """Everything that stops this workflow's draft from being activated, each naming the
    step (or the trigger, or the stop condition) at fault."""
    problems = _trigger_problems(workflow) + stop_problems(workflow)
    structure = wf_graph.structure_problems(workflow.draft_graph)
    sends = send_blocks.reference_problems(workflow.draft_graph, wf_graph.step_name)
    return problems + structure + _reference_problems(workflow.draft_graph) + sends


def _set_status(workflow: Workflow, status: str) -> None:
    if status not in TRANSITIONS.get(workflow.status, set()):
        raise WorkflowStateError(
            [f"A {workflow.get_status_display().lower()} workflow cannot become {status}."]
        )
    workflow.status = status


@transaction.atomic
def workflow_activate(*, workflow: Workflow) -> Workflow:
    """Validate the draft and make it the version new runs start on. Runs in progress keep
    the version they started on. Activating an active workflow publishes its edits."""
    workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
    problems = workflow_problems(workflow)
    if problems:
        raise WorkflowError(problems)
    was_active = workflow.status == WorkflowStatus.ACTIVE
    _set_status(workflow, WorkflowStatus.ACTIVE)
    latest = workflow.versions.order_by("-number").first()
    if latest is None or latest.graph != workflow.draft_graph:
        latest = WorkflowVersion.objects.create(
            workflow=workflow,
            number=(latest.number + 1) if latest else 1,
            graph=workflow.draft_graph,
        )
    workflow.current_version = latest
    workflow.save()
    if not was_active:
        _trigger_reset(workflow)
    return workflow


@transaction.atomic
def workflow_pause(*, workflow: Workflow) -> Workflow:
    """Stop new entries; runs in progress hold where they are until it is activated again."""
    workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
    _set_status(workflow, WorkflowStatus.PAUSED)
    workflow.save()
    return workflow


@transaction.atomic
def workflow_delete(*, workflow: Workflow) -> None:
    if workflow.status == WorkflowStatus.ACTIVE:
        raise WorkflowStateError(["Pause the workflow before deleting it."])
    workflow.delete()

"""Workflow pages: list with statistics, editor, activation, simulator, run history."""

import re

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from config.core.roles import Role, has_role, role_required
from contacts.filters.builder import Catalog
from marketing.events import EventTypeError, event_type_create, event_types_builtin_ensure
from marketing.models import EventType, Order, OrderStatus
from marketing.workflows import contact_blocks, logic_blocks, services
from marketing.workflows import graph as wf_graph
from marketing.workflows.forms import (
    ParamRow,
    SimulateForm,
    StepForm,
    WorkflowNewForm,
    WorkflowSettingsForm,
    param_ops,
)
from marketing.workflows.models import Workflow, WorkflowMessage, WorkflowRun, WorkflowRunStatus
from marketing.workflows.scenarios import SCENARIOS, workflow_create_from_scenario
from marketing.workflows.simulator import simulate

# A step id (s1, s2, …; the API may name steps too), used as a form prefix.
STEP_PREFIX = re.compile(r"[A-Za-z0-9_]{1,40}")


def workflow_stats(workflow_ids: list[int]) -> dict[int, dict]:
    """Entered / in progress / completed / exited / failed / messages / conversions per
    workflow, in three grouped queries (indexed by workflow and status)."""
    stats = {
        pk: {
            "entered": 0,
            "in_progress": 0,
            "completed": 0,
            "exited": 0,
            "failed": 0,
            "sent": 0,
            "conversions": 0,
        }
        for pk in workflow_ids
    }
    rows = (
        WorkflowRun.objects.filter(workflow_id__in=workflow_ids)
        .values("workflow_id", "status")
        .annotate(n=Count("id"))
    )
    for row in rows:
        item = stats[row["workflow_id"]]
        item["entered"] += row["n"]
        if row["status"] in (WorkflowRunStatus.WAITING, WorkflowRunStatus.RUNNING):
            item["in_progress"] += row["n"]
        else:
            item[row["status"]] += row["n"]
    sent = (
        WorkflowMessage.objects.filter(run__workflow_id__in=workflow_ids)
        .values("run__workflow_id")
        .annotate(n=Count("id"))
    )
    for row in sent:
        stats[row["run__workflow_id"]]["sent"] = row["n"]
    # DELIVERED orders credited to one of the workflow's messages (marketing.attribution).
    path = "attributed_delivery__workflow_messages__run__workflow_id"
    converted = (
        Order.objects.filter(status=OrderStatus.DELIVERED, **{f"{path}__in": workflow_ids})
        .values(path)
        .annotate(n=Count("id", distinct=True))
    )
    for row in converted:
        stats[row[path]]["conversions"] = row["n"]
    return stats


@role_required(Role.VIEWER)
def workflow_list(request):
    if request.method == "POST":
        return _workflow_new(request)
    workflows = list(Workflow.objects.select_related("event_type", "segment", "current_version"))
    stats = workflow_stats([w.pk for w in workflows])
    rows = [(workflow, stats[workflow.pk]) for workflow in workflows]
    return render(
        request,
        "marketing/workflows/list.html",
        {
            "rows": rows,
            "form": WorkflowNewForm(),
            "scenarios": SCENARIOS.values(),
            "can_edit": has_role(request.user, Role.MARKETER),
        },
    )


def _workflow_new(request):
    if not has_role(request.user, Role.MARKETER):
        raise PermissionDenied("This page needs the marketer role.")
    form = WorkflowNewForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a scenario from the list.")
        return redirect("automation_home")
    name = form.cleaned_data["name"].strip()
    if form.cleaned_data["scenario"]:
        workflow = workflow_create_from_scenario(
            key=form.cleaned_data["scenario"], name=name, created_by=request.user
        )
    else:
        workflow = services.workflow_create(name=name or "New workflow", created_by=request.user)
    messages.success(request, f"Workflow “{workflow.name}” created as a draft.")
    return redirect(workflow)


def _editor_context(request, workflow: Workflow, *, settings_form=None, step_forms=None) -> dict:
    # Engagement and segment events can start a workflow before the first one has arrived.
    event_types_builtin_ensure()
    graph = workflow.draft_graph or wf_graph.empty_graph()
    step_forms = step_forms or {}
    rows = wf_graph.outline(graph)
    split_figures = logic_blocks.split_figures(workflow_id=workflow.pk, graph=graph)
    for row in rows:
        step = row.get("step")
        if step is not None:
            row["form"] = step_forms.get(step["id"]) or StepForm(step=step, graph=graph)
            row["kind_label"] = wf_graph.STEP_KINDS.get(step["kind"], step["kind"])
            row["split_figures"] = split_figures.get(step["id"])
    settings_form = settings_form or WorkflowSettingsForm.for_workflow(workflow)
    selected = settings_form["event_type"].value()
    return {
        "workflow": workflow,
        "rows": rows,
        "settings_form": settings_form,
        "event_types": EventType.objects.order_by("key"),
        "selected_event_type": int(selected)
        if str(selected or "").isascii() and str(selected or "").isdigit()
        else None,
        "condition_rows": settings_form.condition_rows(),
        "param_ops": param_ops(),
        "problems": services.workflow_problems(workflow),
        "step_kinds": wf_graph.STEP_KINDS.items(),
        "step_groups": contact_blocks.step_groups(),
        "base_url": settings.HERALD_BASE_URL.rstrip("/"),
        "can_edit": has_role(request.user, Role.MARKETER),
        "stats": workflow_stats([workflow.pk])[workflow.pk],
        "draft_differs": workflow.current_version is not None
        and workflow.current_version.graph != graph,
    }


@role_required(Role.VIEWER)
def workflow_detail(request, pk: int):
    workflow = get_object_or_404(Workflow.objects.select_related("current_version"), pk=pk)
    return render(request, "marketing/workflows/detail.html", _editor_context(request, workflow))


@require_POST
@role_required(Role.MARKETER)
def workflow_settings(request, pk: int):
    workflow = get_object_or_404(Workflow, pk=pk)
    form = WorkflowSettingsForm.for_workflow(workflow, request.POST)
    if not form.is_valid():
        context = _editor_context(request, workflow, settings_form=form)
        return render(request, "marketing/workflows/detail.html", context, status=400)
    services.workflow_update_settings(workflow=workflow, **form.service_kwargs())
    messages.success(request, "Trigger and settings saved.")
    return redirect(workflow)


@require_POST
@role_required(Role.MARKETER)
def workflow_step_add(request, pk: int):
    workflow = get_object_or_404(Workflow, pk=pk)
    try:
        step_id = services.workflow_step_add(
            workflow=workflow,
            kind=request.POST.get("kind", ""),
            after=request.POST.get("after", ""),
            branch=request.POST.get("branch", "next"),
        )
    except wf_graph.GraphError as exc:
        messages.error(request, exc.message)
        return redirect(workflow)
    messages.success(request, f"Step {step_id} added.")
    return redirect(f"{workflow.get_absolute_url()}#step-{step_id}")


@require_POST
@role_required(Role.MARKETER)
def workflow_step_save(request, pk: int, step_id: str):
    workflow = get_object_or_404(Workflow, pk=pk)
    step = wf_graph.steps_by_id(workflow.draft_graph).get(step_id)
    if step is None:
        messages.error(request, f"There is no step {step_id} any more.")
        return redirect(workflow)
    form = StepForm(request.POST, step=step, graph=workflow.draft_graph)
    if not form.is_valid():
        context = _editor_context(request, workflow, step_forms={step_id: form})
        return render(request, "marketing/workflows/detail.html", context, status=400)
    services.workflow_step_update(workflow=workflow, step=form.to_step())
    messages.success(request, f"Step {step_id} saved.")
    return redirect(f"{workflow.get_absolute_url()}#step-{step_id}")


@require_POST
@role_required(Role.MARKETER)
def workflow_step_delete(request, pk: int, step_id: str):
    workflow = get_object_or_404(Workflow, pk=pk)
    try:
        services.workflow_step_remove(workflow=workflow, step_id=step_id)
    except wf_graph.GraphError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Step {step_id} removed.")
    return redirect(workflow)


@require_POST
@role_required(Role.MARKETER)
def workflow_activate(request, pk: int):
    workflow = get_object_or_404(Workflow, pk=pk)
    try:
        workflow = services.workflow_activate(workflow=workflow)
    except services.WorkflowError as exc:
        for problem in exc.problems:
            messages.error(request, problem)
        return redirect(workflow)
    messages.success(
        request,
        f"Active on version {workflow.current_version.number}; contacts already in it keep "
        "the version they started on.",
    )
    return redirect(workflow)


@require_POST
@role_required(Role.MARKETER)
def workflow_pause(request, pk: int):
    workflow = get_object_or_404(Workflow, pk=pk)
    try:
        services.workflow_pause(workflow=workflow)
    except services.WorkflowError as exc:
        messages.error(request, exc.problems[0])
    else:
        messages.success(request, "Paused: no new entries; runs in progress hold until resumed.")
    return redirect(workflow)


@require_POST
@role_required(Role.MARKETER)
def workflow_delete(request, pk: int):
    workflow = get_object_or_404(Workflow, pk=pk)
    try:
        services.workflow_delete(workflow=workflow)
    except services.WorkflowError as exc:
        messages.error(request, exc.problems[0])
        return redirect(workflow)
    messages.success(request, f"Workflow “{workflow.name}” deleted.")
    return redirect("automation_home")


@role_required(Role.VIEWER)
def workflow_simulate(request, pk: int):
    """Read-only: viewers may simulate too."""
    workflow = get_object_or_404(Workflow.objects.select_related("current_version"), pk=pk)
    use = request.GET.get("version", "draft")
    graph = workflow.draft_graph
    if use == "current" and workflow.current_version is not None:
        graph = workflow.current_version.graph
    form = SimulateForm(request.GET if "contact" in request.GET else None)
    result = None
    if form.is_bound and form.is_valid():
        engaged = {e for e in ("opened", "clicked") if form.cleaned_data[e]}
        result = simulate(
            graph=graph,
            contact=form.cleaned_data["contact"],
            params=form.cleaned_data["params"],
            engaged=engaged,
            workflow_id=workflow.pk,
        )
    return render(
        request,
        "marketing/workflows/simulate.html",
        {"workflow": workflow, "form": form, "result": result, "use": use},
        status=400 if form.is_bound and not form.is_valid() else 200,
    )


@role_required(Role.VIEWER)
def workflow_runs(request, pk: int):
    workflow = get_object_or_404(Workflow, pk=pk)
    runs = workflow.runs.select_related("contact", "version")
    status = request.GET.get("status", "")
    if status in WorkflowRunStatus.values:
        runs = runs.filter(status=status)
    page = Paginator(runs, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "marketing/workflows/runs.html",
        {
            "workflow": workflow,
            "page": page,
            "status": status,
            "statuses": WorkflowRunStatus.choices,
        },
    )


@role_required(Role.VIEWER)
def workflow_run_detail(request, pk: int):
    run = get_object_or_404(
        WorkflowRun.objects.select_related("workflow", "contact", "version", "event"), pk=pk
    )
    steps = wf_graph.steps_by_id(run.version.graph)
    path = [
        {**entry, "label": (steps.get(entry["step"]) or {}).get("label") or entry.get("kind")}
        for entry in run.path
    ]
    # A list of pairs, not a dict: a step id "items" would shadow the dict method in a template.
    deliveries = [
        (message.step_id, message.delivery) for message in run.messages.select_related("delivery")
    ]
    return render(
        request,
        "marketing/workflows/run_detail.html",
        {"run": run, "path": path, "deliveries": deliveries},
    )


# --- Editor pieces for htmx -----------------------------------------------------------------


def _picker(request, *, selected: int | None, open_form: bool = False, **extra):
    return render(
        request,
        "marketing/workflows/_event_type_picker.html",
        {
            "event_types": EventType.objects.order_by("key"),
            "selected": selected,
            "open": open_form,
            "can_edit": has_role(request.user, Role.MARKETER),
            **extra,
        },
    )


def _selected_type(value: str) -> int | None:
    return int(value) if value.isdigit() else None


@role_required(Role.MARKETER)
def workflow_event_type_picker(request):
    """The trigger's event-type picker: GET shows it (with the "new event type" form when
    asked); POST creates the type through the events service and shows it selected."""
    if request.method != "POST":
        return _picker(
            request,
            selected=_selected_type(request.GET.get("event_type", "")),
            open_form=request.GET.get("new") == "1",
        )
    key = request.POST.get("new_event_key", "").strip()
    name = request.POST.get("new_event_name", "").strip()
    try:
        created = event_type_create(key=key, name=name)
    except EventTypeError as exc:
        return _picker(
            request,
            selected=_selected_type(request.POST.get("event_type", "")),
            open_form=True,
            key=key,
            name=name,
            errors={"key": gettext("Key: %(problem)s") % {"problem": exc.message}},
        )
    return _picker(request, selected=created.pk, created=created)


@require_GET
@role_required(Role.MARKETER)
def workflow_param_row(request):
    """An empty "event parameter · comparison · value" row for the trigger's conditions."""
    return render(
        request,
        "marketing/workflows/_param_row.html",
        {"row": ParamRow(), "ops": param_ops()},
    )


@require_GET
@role_required(Role.MARKETER)
def workflow_contact_row(request):
    """A condition step's contact row, re-drawn for the field and operator chosen (the
    operators and the value's input follow the field, as in the segment builder)."""
    prefix = request.GET.get("prefix", "")
    if not STEP_PREFIX.fullmatch(prefix):
        return HttpResponseBadRequest("bad step")
    catalog = Catalog()
    row = catalog.row(
        request.GET.get(f"{prefix}-cf_field", ""),
        request.GET.get(f"{prefix}-cf_op", ""),
        request.GET.get(f"{prefix}-cf_value", ""),
    )
    return render(
        request,
        "marketing/workflows/_contact_row.html",
        {"row": row, "catalog": catalog, "prefix": prefix},
    )

"""The public page behind a workflow's button link (/w/<key>/?c=<token>): GET asks the person
to confirm (so the link scanners of mail services, which only GET, start nothing), POST starts
the workflow for the contact the token was signed for."""

from django.shortcuts import render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from marketing.workflows.buttons import button_contact
from marketing.workflows.models import TriggerKind, Workflow, WorkflowStatus
from marketing.workflows.triggers import StartError, workflow_start_for_contact

TEMPLATE = "marketing/workflows/button.html"


@require_http_methods(["GET", "POST"])
def workflow_button(request, key: str):
    token = (request.POST if request.method == "POST" else request.GET).get("c", "")
    workflow = (
        Workflow.objects.select_related("current_version")
        .filter(button_key=key, trigger_kind=TriggerKind.BUTTON)
        .first()
        if key
        else None
    )
    contact_id = None if workflow is None else button_contact(workflow=workflow, token=token)
    if workflow is None or contact_id is None:
        problem = gettext("The link is incomplete or was changed. Open it again from the message.")
        return render(request, TEMPLATE, {"problem": problem}, status=404 if not workflow else 400)
    if workflow.status != WorkflowStatus.ACTIVE:
        problem = gettext("This offer is not available any more.")
        return render(request, TEMPLATE, {"problem": problem}, status=410)
    if request.method == "GET":
        return render(request, TEMPLATE, {"token": token})
    try:
        workflow_start_for_contact(workflow=workflow, contact_id=contact_id)
    except StartError:
        problem = gettext("This offer is not available any more.")
        return render(request, TEMPLATE, {"problem": problem}, status=410)
    return render(request, TEMPLATE, {"done": True})

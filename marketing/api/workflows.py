"""Herald's workflow API: start a workflow for one contact (POST
/api/herald/workflows/{id}/start) and the contact's signed button link (GET
/api/herald/workflows/{id}/button-link?contactId=)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from config.core.models import Scope
from config.core.schema import error_response
from contacts.models import Contact
from contacts.validation import email_normalise
from marketing.workflows.buttons import button_url
from marketing.workflows.graph import params_as_dict
from marketing.workflows.models import Workflow
from marketing.workflows.triggers import StartError, workflow_start_for_contact

START_REQUEST = inline_serializer(
    "WorkflowStartRequest",
    {
        "contactId": serializers.IntegerField(required=False),
        "email": serializers.EmailField(required=False),
        "externalCustomerId": serializers.CharField(required=False),
        "params": serializers.JSONField(
            required=False, help_text="An object, or the Generate event [{name, value}] list."
        ),
    },
)
START_RESPONSE = inline_serializer(
    "WorkflowStartResponse",
    {
        "contactId": serializers.IntegerField(),
        "started": serializers.BooleanField(
            help_text="False when the re-entry policy kept the contact out."
        ),
        "runId": serializers.IntegerField(allow_null=True),
    },
)
LINK_RESPONSE = inline_serializer("WorkflowButtonLink", {"url": serializers.CharField()})


def _workflow(pk: int) -> Workflow:
    workflow = Workflow.objects.select_related("current_version").filter(pk=pk).first()
    if workflow is None:
        raise NotFound(f"No workflow {pk}.")
    return workflow


class WorkflowStartView(APIView):
    """Start a workflow whose trigger is "a button or an API call" for one contact."""

    required_scope = Scope.EVENTS

    @extend_schema(
        summary="Start a workflow for one contact",
        request=START_REQUEST,
        responses={
            200: START_RESPONSE,
            400: error_response("A field is wrong; `field` names it."),
            404: error_response("No such workflow or contact."),
            409: error_response("Not active, or not started by a button or an API call."),
        },
    )
    def post(self, request, pk: int):
        workflow = _workflow(pk)
        data = request.data if isinstance(request.data, dict) else None
        if data is None:
            raise StartError("body", "a JSON object")
        contact_id = data.get("contactId")
        if contact_id is not None and (
            not isinstance(contact_id, int) or isinstance(contact_id, bool) or contact_id < 1
        ):
            raise StartError("contactId", "a positive integer")
        email = data.get("email") or ""
        if email:
            if not isinstance(email, str):
                raise StartError("email", "an email address")
            email, problem = email_normalise(email)
            if problem:
                raise StartError("email", problem)
        external_id = data.get("externalCustomerId") or ""
        if not isinstance(external_id, str) or len(external_id) > 255:
            raise StartError("externalCustomerId", "a string of at most 255 characters")
        params = data.get("params")
        if params is not None and not isinstance(params, (dict, list)):
            raise StartError("params", "an object or a list of {name, value}")
        found, runs = workflow_start_for_contact(
            workflow=workflow,
            contact_id=contact_id,
            email=email,
            external_id=external_id.strip(),
            params=params_as_dict(params),
        )
        return Response({"contactId": found, "started": bool(runs), "runId": (runs or [None])[0]})


class WorkflowButtonLinkView(APIView):
    """The contact's signed link to the workflow (for a button in a message)."""

    required_scope = Scope.EVENTS

    @extend_schema(
        summary="A contact's signed link that starts the workflow",
        parameters=[
            OpenApiParameter("contactId", int, required=True, description="The contact's id.")
        ],
        responses={200: LINK_RESPONSE},
    )
    def get(self, request, pk: int):
        workflow = _workflow(pk)
        raw = request.query_params.get("contactId", "")
        if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 2**63:
            raise StartError("contactId", "a positive integer (the contact's id)")
        contact_id = int(raw)
        if not Contact.objects.alive().filter(pk=contact_id).exists():
            raise StartError("contactId", "no such contact", status=404)
        return Response({"url": button_url(workflow=workflow, contact_id=contact_id)})

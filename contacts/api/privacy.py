"""Herald's own API for one person's data (under /api/herald/contacts/{id}/export): the
per-person export a privacy request asks for. Thin: contacts.privacy writes the document."""

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.views import APIView

from config.core.api_params import ID_MAX
from config.core.models import Scope
from config.core.schema import error_response
from contacts.models import Contact
from contacts.privacy import contact_export_filename, contact_export_stream

_ROWS = serializers.ListField(child=serializers.DictField())
EXPORT = inline_serializer(
    "ContactExport",
    {
        "exportedAt": serializers.DateTimeField(),
        "contact": serializers.DictField(help_text="The contact's own columns."),
        "channels": _ROWS,
        "fields": _ROWS,
        "tags": serializers.ListField(child=serializers.CharField()),
        "segments": _ROWS,
        "optin": serializers.DictField(help_text="Double opt-in: confirmed and when."),
        "unsubscribed": _ROWS,
        "suppressions": _ROWS,
        "importFailures": _ROWS,
        "deliveries": serializers.ListField(
            child=serializers.DictField(), help_text="Every message, with its status history."
        ),
        "promoCodes": _ROWS,
        "events": _ROWS,
        "orders": serializers.ListField(
            child=serializers.DictField(), help_text="With their items."
        ),
        "workflowRuns": _ROWS,
        "signups": serializers.ListField(
            child=serializers.DictField(), help_text="Sign-up form submissions (consent)."
        ),
    },
)


def export_response(contact: Contact) -> StreamingHttpResponse:
    """The export as a download, streamed (a contact may have a hundred thousand messages)."""
    response = StreamingHttpResponse(
        contact_export_stream(contact=contact), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="{contact_export_filename(contact)}"'
    return response


class ContactExportView(APIView):
    """GET: everything Herald holds about one contact, as one JSON document."""

    # Reading a contact's data is the contact read right's business.
    required_scope = Scope.CONTACTS

    @extend_schema(
        summary="Export everything about one contact",
        description=(
            "One JSON document with everything Herald holds about the contact, for a "
            "privacy (subject access) request, one section per kind of data. Streamed: a "
            "contact with many messages is written as it is read. Deleted contacts can be "
            "exported too; an erased one shows what is left. Each export is recorded in the "
            "audit log."
        ),
        parameters=[
            OpenApiParameter("contact_id", OpenApiTypes.INT, OpenApiParameter.PATH),
        ],
        responses={
            (200, "application/json"): OpenApiResponse(
                EXPORT, description="The export, as a download."
            ),
            404: error_response("No such contact."),
        },
    )
    def get(self, request, contact_id: str):
        pk = int(contact_id)  # the route takes digits only
        contact = Contact.objects.filter(pk=pk).first() if pk <= ID_MAX else None
        if contact is None:
            raise NotFound(f"no contact with id {contact_id}")
        return export_response(contact)

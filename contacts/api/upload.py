"""POST /v1/contacts/upload: import contacts from a CSV file at a URL (the eSputnik v1 API).

Answers at once with the import session; a worker downloads and imports the file, and the
status is read at GET /v1/importstatus/{sessionId}.
"""

from urllib.parse import urlsplit

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from config.core.models import Scope
from config.core.parsers import request_body
from contacts.api import examples
from contacts.fetch import host_refusal
from contacts.imports import csv_import_start
from contacts.models import ImportJob
from contacts.segments import groups_static_check
from contacts.validation import errors_body, import_options_parse

LINK_MAX = ImportJob._meta.get_field("source_url").max_length
LIST_OPTIONS = ("groupNames", "groupNamesExclude", "customFieldsIDs", "contactFields")

UPLOAD_REQUEST = inline_serializer(
    "ContactsUploadRequest",
    {
        "link": serializers.URLField(help_text="http(s) URL of a UTF-8 CSV; user:pass@ for auth"),
        "dedupeOn": serializers.ChoiceField(
            choices=["email", "sms", "email_or_sms", "id", "fieldId"], required=False
        ),
        "fieldId": serializers.IntegerField(required=False),
        "groupNames": serializers.ListField(child=serializers.CharField(), required=False),
        "groupNamesExclude": serializers.ListField(child=serializers.CharField(), required=False),
        "restoreDeleted": serializers.BooleanField(required=False),
        "eventKeyForNewContacts": serializers.CharField(required=False),
    },
)
UPLOAD_RESPONSE = inline_serializer(
    "ContactsUploadResponse", {"asyncSessionId": serializers.UUIDField()}
)


def link_problem(link) -> str | None:
    """What is wrong with `link` as a download address, checked before any job exists."""
    if not isinstance(link, str) or not link.strip():
        return "is required: the http(s) URL of the CSV file"
    link = link.strip()
    if len(link) > LINK_MAX:
        return f"must be at most {LINK_MAX} characters"
    try:
        parts = urlsplit(link)
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        return "is not a valid URL"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return "must be an http or https URL"
    if not parts.hostname:
        return "must name a host"
    reason = host_refusal(parts.hostname, port or (443 if scheme == "https" else 80))
    if reason:
        return f"points to {reason}; Herald only fetches files from public addresses"
    return None


class ContactsUploadView(APIView):
    required_scope = Scope.CONTACTS_ADD_UPDATE

    @extend_schema(
        summary="Import contacts from a CSV file at a URL",
        description=(
            "Herald downloads the UTF-8, comma-separated file (at most 100 MB; credentials as "
            "user:password@ in the link) from a public address and imports it like POST "
            "/v1/contacts. Columns: First name, Last name, Address, Region, City, Postcode, "
            "Email, Sms, Language code, Timezone, Contact id (externalCustomerId) and custom "
            "fields as GROUP_KEY.KEY; an unknown column fails the import. Follow the answer's "
            "asyncSessionId at GET /v1/importstatus/{sessionId}; failed rows carry their row "
            "number (the header is row 1)."
        ),
        request=UPLOAD_REQUEST,
        responses=UPLOAD_RESPONSE,
        examples=[examples.UPLOAD, examples.UPLOAD_ACCEPTED],
    )
    def post(self, request):
        # Form-encoded clients repeat a key for a list (groupNames=a&groupNames=b).
        body = request_body(request, lists=LIST_OPTIONS)
        errors = {}
        problem = link_problem(body.get("link"))
        if problem:
            errors["link"] = [problem]
        options, option_errors = import_options_parse(body)
        errors.update(errors_body(option_errors))
        if errors:
            raise ValidationError(errors)
        groups_static_check(names=options["groupNames"], field="groupNames")
        user = request.user if request.user and request.user.is_authenticated else None
        job = csv_import_start(options=options, link=body["link"].strip(), created_by=user)
        return Response({"asyncSessionId": str(job.session_id)})

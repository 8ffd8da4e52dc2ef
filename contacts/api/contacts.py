"""The eSputnik v1 API's contact resources. Thin: shape checks here, rules in contacts.services
(one contact), contacts.imports (bulk) and contacts.segments (groups); their refusals answer
through the API's error handler with the status and body each error class carries."""

import uuid

from django.db.models import Q
from django.http.request import RawPostDataException
from django.utils.http import parse_header_parameters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from config.core.models import Scope
from config.core.parsers import (
    json_body_load,
    request_body,
    text_problem_path,
    text_refuse,
    text_storable,
    text_suspect,
)
from config.core.schema import error_response
from contacts.api import examples
from contacts.api.paging import PAGING_PARAMETERS, position_paging
from contacts.api.schemas import CONTACT, CONTACT_ID, CONTACT_LIST, CONTACT_REQUEST, ERASE
from contacts.bulk.gc import gc_paused
from contacts.channels import email_normalise, phone_normalise
from contacts.imports import import_job_start
from contacts.models import Contact, ContactSource, ImportJob
from contacts.segments import groups_static_check
from contacts.services import (
    contact_create_or_update,
    contact_delete,
    contact_subscribe,
    contact_update,
)
from contacts.validation import (
    DEDUPE_ON,
    FALSE_WORDS,
    TRUE_WORDS,
    contact_to_api,
    errors_body,
    import_options_parse,
)

BULK_MAX = 3000

CONFLICT = error_response(
    "The contact conflicts with another, or the subscribe repeats one made within the last "
    "minute; the body names the field."
)
FAILED_CONTACT = inline_serializer(
    "FailedContact",
    {
        "index": serializers.IntegerField(),
        "reason": serializers.CharField(),
        "contact": serializers.JSONField(),
    },
)
BULK_RESPONSE = inline_serializer(
    "ContactsBulkResponse",
    {
        "asyncSessionId": serializers.UUIDField(),
        "failedContacts": FAILED_CONTACT.__class__(many=True),
        "errorMessage": serializers.CharField(allow_null=True),
    },
)
IMPORT_STATUS = inline_serializer(
    "ImportStatus",
    {
        "status": serializers.ChoiceField(choices=["STARTED", "IMPORTING", "FINISHED", "ERROR"]),
        "description": serializers.CharField(allow_blank=True),
        "contactIds": serializers.ListField(child=serializers.IntegerField()),
        "failedContacts": FAILED_CONTACT.__class__(many=True),
        "total": serializers.IntegerField(),
        "processed": serializers.IntegerField(),
        "created": serializers.IntegerField(),
        "updated": serializers.IntegerField(),
        "failed": serializers.IntegerField(),
    },
)
SEARCH_PARAMETERS = [
    *PAGING_PARAMETERS,
    OpenApiParameter("email", str),
    OpenApiParameter("sms", str, description="A phone number."),
    OpenApiParameter("firstname", str),
    OpenApiParameter("lastname", str),
    OpenApiParameter("externalCustomerId", str),
]


def _object(data) -> dict:
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["the body must be a JSON object"]})
    return data


def _bulk_body(request) -> tuple[dict, str | None, bool]:
    """The body, its text as received when it is UTF-8 JSON (else None), and whether its
    contacts may hold text PostgreSQL cannot store (NUL, a lone surrogate): such rows fail
    alone, in import_job_start, while such text elsewhere in the body is a 400.

    Such a body is decoded here, by the same parser, rather than through request.data: the
    request would keep its contacts alive until the response is sent, so the collector,
    resuming after gc_paused, would first scan every one of them (about 10 ms a request).
    Its depth is not counted (a megabyte of brackets): rows are shape-checked, and JSON too
    deep to parse is still refused."""
    media_type, params = parse_header_parameters(request.content_type or "")
    if media_type != "application/json" or params.get("charset", "utf-8").lower() != "utf-8":
        return request_body(request), None, False
    try:
        raw = request.body
        text = raw.decode()
    except (RawPostDataException, UnicodeDecodeError):
        return request_body(request), None, False
    body = _object(json_body_load(raw, check_text=False, check_depth=False))
    suspect = text_suspect(raw)
    if suspect:
        text_refuse({key: value for key, value in body.items() if key != "contacts"})
    return body, text, suspect


def _unstorable_rows(contacts: list) -> dict[int, tuple[tuple[str, str], object]]:
    """The rows holding text PostgreSQL cannot store → (field, problem), the row with U+FFFD
    in place of that text (for the import's failure report)."""
    rows = {}
    for index, row in enumerate(contacts):
        found = text_problem_path(row)
        if found is not None:
            rows[index] = (found, text_storable(row))
    return rows


def _contact_or_404(contact_id) -> Contact:
    contact = Contact.objects.alive().filter(pk=contact_id).first()
    if contact is None:
        raise NotFound(f"no contact with id {contact_id}")
    return contact


def _contact_body(request) -> dict:
    """PUT/POST /v1/contact take the Contact object itself."""
    body = request_body(request)
    # Some clients wrap it as {"contact": {...}}, as subscribe does.
    if set(body) == {"contact"} and isinstance(body["contact"], dict):
        return body["contact"]
    return body


def _flag(request, name: str) -> bool:
    raw = request.query_params.get(name, "false").strip().lower()
    if raw not in TRUE_WORDS | FALSE_WORDS:
        raise ValidationError({name: ["must be true or false"]})
    return raw in TRUE_WORDS


def _user(request):
    return request.user if request.user and request.user.is_authenticated else None


class SubscribeView(APIView):
    """POST /v1/contact/subscribe: one contact from a subscribe form (double opt-in)."""

    required_scope = Scope.CONTACTS_ADD_UPDATE

    @extend_schema(
        summary="Subscribe contact",
        request=inline_serializer(
            "SubscribeRequest",
            {
                "contact": CONTACT_REQUEST.__class__(
                    help_text="The contact: an email or sms channel is required."
                ),
                "groups": serializers.ListField(child=serializers.CharField(), required=False),
                "subscriptions": serializers.ListField(
                    child=serializers.JSONField(), required=False
                ),
                "formType": serializers.CharField(required=False, max_length=50),
            },
        ),
        responses={200: CONTACT_ID, 409: CONFLICT},
        examples=[examples.SUBSCRIBE, examples.CONTACT_ID],
    )
    def post(self, request):
        body = request_body(request)
        errors = {}
        contact = body.get("contact")
        if not isinstance(contact, dict):
            errors["contact"] = ["is required: a Contact object"]
        groups = body.get("groups") or []
        if not isinstance(groups, list) or not all(
            isinstance(g, str) and g.strip() for g in groups
        ):
            errors["groups"] = ["must be a list of group names"]
        form_type = body.get("formType") or None
        if form_type is not None and (not isinstance(form_type, str) or len(form_type) > 50):
            errors["formType"] = ["must be a string of at most 50 characters"]
        subscriptions = body.get("subscriptions")
        if subscriptions is not None and not isinstance(subscriptions, list):
            errors["subscriptions"] = ["must be a list"]
        if errors:
            raise ValidationError(errors)
        groups = list(dict.fromkeys(g.strip() for g in groups))
        groups_static_check(names=groups, field="groups")
        saved, _created = contact_subscribe(data=contact, groups=groups, form_type=form_type)
        return Response({"id": saved.pk})


class ContactsView(APIView):
    """GET /v1/contacts: search. POST /v1/contacts: add/update 1-3000 contacts asynchronously."""

    required_scope = {"GET": Scope.CONTACTS, "POST": Scope.CONTACTS_ADD_UPDATE}

    @extend_schema(
        summary="Search contacts",
        parameters=SEARCH_PARAMETERS,
        responses={200: CONTACT_LIST},
        examples=[examples.CONTACTS],
    )
    def get(self, request):
        params = request.query_params
        errors = {}
        try:
            offset, limit = position_paging(params)
        except ValidationError as exc:
            errors.update(exc.detail)
        query = Q()
        if params.get("email"):
            email, _ = email_normalise(params["email"])
            query &= Q(email=email or params["email"].strip().lower())
        if params.get("sms"):
            phone, problem = phone_normalise(params["sms"])
            if problem:
                errors["sms"] = [problem]
            query &= Q(phone=phone)
        if params.get("firstname"):
            query &= Q(first_name__iexact=params["firstname"].strip())
        if params.get("lastname"):
            query &= Q(last_name__iexact=params["lastname"].strip())
        if params.get("externalCustomerId"):
            query &= Q(external_customer_id=params["externalCustomerId"].strip())
        if errors:
            raise ValidationError(errors)
        matches = Contact.objects.alive().filter(query)
        total = matches.count()
        page = matches.order_by("pk").prefetch_related("segments")[offset : offset + limit]
        response = Response([contact_to_api(contact) for contact in page])
        response["TotalCount"] = str(total)
        return response

    @extend_schema(
        summary="Add or update 1-3000 contacts (asynchronous)",
        description=(
            "Answers at once. `failedContacts` lists every row refused synchronously, each "
            "alone, with its `index` in `contacts`, the `reason` (the field and the problem) "
            "and the `contact` as sent: a row that is not an object, a malformed field, a "
            "name over 40 characters, an email or phone the import cannot store, an unknown "
            "custom field id or a value of the wrong type. The other rows are imported "
            "asynchronously; rows refused there (a contact without a channel, a bad time "
            "zone, a match deleted without restoreDeleted, a new contact missing a required "
            "field, …) appear, with the synchronous ones, in the `failedContacts` of "
            "GET /v1/importstatus/{asyncSessionId}."
        ),
        request=inline_serializer(
            "ContactsBulkRequest",
            {
                "contacts": serializers.ListField(
                    child=CONTACT_REQUEST.__class__(),
                    min_length=1,
                    max_length=BULK_MAX,
                ),
                "dedupeOn": serializers.ChoiceField(choices=DEDUPE_ON, required=False),
                "fieldId": serializers.IntegerField(required=False),
                "contactFields": serializers.ListField(
                    child=serializers.CharField(), required=False
                ),
                "customFieldsIDs": serializers.ListField(
                    child=serializers.IntegerField(), required=False
                ),
                "groupNames": serializers.ListField(child=serializers.CharField(), required=False),
                "groupNamesExclude": serializers.ListField(
                    child=serializers.CharField(), required=False
                ),
                "restoreDeleted": serializers.BooleanField(required=False),
                "eventKeyForNewContacts": serializers.CharField(required=False),
            },
        ),
        responses={200: BULK_RESPONSE},
        examples=[examples.BULK, examples.BULK_FIELDS, examples.BULK_ACCEPTED],
    )
    def post(self, request):
        # Decoding the body and storing up to 3000 contacts: see gc_paused.
        with gc_paused():
            return self._post(request)

    def _post(self, request):
        body, body_text, text_suspect = _bulk_body(request)
        contacts = body.get("contacts")
        if not isinstance(contacts, list) or not 1 <= len(contacts) <= BULK_MAX:
            raise ValidationError({"contacts": [f"must be a list of 1 to {BULK_MAX} contacts"]})
        options, errors = import_options_parse(body)
        if errors:
            raise ValidationError(errors_body(errors))
        groups_static_check(names=options["groupNames"], field="groupNames")
        job = import_job_start(
            contacts=contacts,
            options=options,
            created_by=_user(request),
            body_text=body_text,
            unstorable=_unstorable_rows(contacts) if text_suspect else None,
        )
        return Response(
            {
                "asyncSessionId": str(job.session_id),
                "failedContacts": [
                    {"index": failure.index, "reason": failure.reason, "contact": failure.data}
                    for failure in job.failures.all()
                ],
                "errorMessage": None,
            }
        )


class ImportStatusView(APIView):
    """GET /v1/importstatus/{sessionId}."""

    required_scope = Scope.CONTACTS_ADD_UPDATE

    @extend_schema(
        summary="Import status",
        description=(
            "`failedContacts`: every refused row of the session, the ones the bulk request "
            "answered at once and the ones the import refused, in the same shape."
        ),
        parameters=[OpenApiParameter("session_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={200: IMPORT_STATUS},
        examples=[examples.IMPORT_STATUS],
    )
    def get(self, request, session_id: str):
        try:
            job = ImportJob.objects.filter(session_id=uuid.UUID(session_id)).first()
        except ValueError:
            job = None
        if job is None:
            raise NotFound(f"no import session {session_id}")
        return Response(
            {
                "status": job.status,
                "description": job.description,
                "contactIds": job.contact_ids,
                "failedContacts": [
                    {"index": failure.index, "reason": failure.reason, "contact": failure.data}
                    for failure in job.failures.all()
                ],
                "total": job.total,
                "processed": job.processed,
                "created": job.created_count,
                "updated": job.updated_count,
                "failed": job.failed_count,
            }
        )


class ContactView(APIView):
    """POST /v1/contact: add or update one. DELETE /v1/contact?externalCustomerId=…"""

    required_scope = {"POST": Scope.CONTACTS_ADD_UPDATE, "DELETE": Scope.CONTACTS}

    @extend_schema(
        summary="Add or update one contact",
        request=CONTACT_REQUEST,
        responses={200: CONTACT_ID, 409: CONFLICT},
        examples=[examples.ADD_CONTACT, examples.CONTACT_ID],
    )
    def post(self, request):
        contact, _created = contact_create_or_update(
            data=_contact_body(request), source=ContactSource.API
        )
        return Response({"id": contact.pk})

    @extend_schema(
        summary="Delete a contact by externalCustomerId",
        parameters=[
            OpenApiParameter("externalCustomerId", str, required=True),
            ERASE,
        ],
        responses={
            200: CONTACT_ID,
            404: error_response("No such contact."),
        },
        examples=[examples.CONTACT_ID],
    )
    def delete(self, request):
        external_id = request.query_params.get("externalCustomerId", "").strip()
        if not external_id:
            raise ValidationError({"externalCustomerId": ["is required"]})
        erase = _flag(request, "erase")
        contact = Contact.objects.alive().filter(external_customer_id=external_id).first()
        if contact is None:
            raise NotFound(f"no contact with externalCustomerId {external_id}")
        contact_delete(contact=contact, erase=erase)
        return Response({"id": contact.pk})


class ContactDetailView(APIView):
    """GET, PUT, DELETE /v1/contact/{id}."""

    required_scope = {
        "GET": Scope.CONTACTS,
        "PUT": Scope.CONTACTS_ADD_UPDATE,
        "DELETE": Scope.CONTACTS,
    }

    @extend_schema(summary="One contact", responses={200: CONTACT}, examples=[examples.CONTACT])
    def get(self, request, contact_id: int):
        contact = _contact_or_404(contact_id)
        return Response(contact_to_api(contact))

    @extend_schema(
        summary="Update a contact (never creates one)",
        request=CONTACT_REQUEST,
        responses={200: CONTACT, 409: CONFLICT},
        examples=[examples.UPDATE_CONTACT, examples.CONTACT],
    )
    def put(self, request, contact_id: int):
        contact = _contact_or_404(contact_id)
        contact = contact_update(contact=contact, data=_contact_body(request))
        return Response(contact_to_api(contact))

    @extend_schema(
        summary="Delete a contact",
        operation_id="v1_contact_delete_by_id",
        parameters=[ERASE],
        responses={200: CONTACT_ID},
        examples=[examples.CONTACT_ID],
    )
    def delete(self, request, contact_id: int):
        contact = _contact_or_404(contact_id)
        contact_delete(contact=contact, erase=_flag(request, "erase"))
        return Response({"id": contact.pk})

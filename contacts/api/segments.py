"""The eSputnik v1 API's resources for groups (segments), the custom field catalog and the
unsubscribed list. Thin: request shapes are read here, rules live in contacts.segments."""

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from config.core.errors import ConflictError
from config.core.models import Scope
from config.core.schema import error_response
from contacts.api import examples
from contacts.api.paging import PAGING_PARAMETERS, position_paging
from contacts.api.schemas import CONTACT_LIST
from contacts.custom_fields import custom_fields_load
from contacts.filters.compiler import FilterError, segment_contacts
from contacts.models import CustomField, CustomFieldType, Segment, SegmentKind
from contacts.segments import segment_attach, segment_detach
from contacts.unsubscribed import unsubscribed_add, unsubscribed_remove
from contacts.validation import contact_to_api

ADDRESS_BOOK_ID = "1"
ADDRESS_BOOK_NAME = "Main"
GROUP_TYPES = {SegmentKind.STATIC: "Static", SegmentKind.DYNAMIC: "Dynamic"}

MEMBERSHIP_REQUEST = inline_serializer(
    "GroupMembershipRequest",
    {
        "contactIds": serializers.ListField(child=serializers.IntegerField(), required=False),
        "externalCustomerIds": serializers.ListField(child=serializers.CharField(), required=False),
    },
)
FAILED_EMAIL = inline_serializer(
    "FailedEmail",
    {
        "index": serializers.IntegerField(help_text="Position in `emails`."),
        "email": serializers.JSONField(help_text="The value as sent."),
        "reason": serializers.CharField(),
    },
)
UNSUBSCRIBED_ADDED = inline_serializer(
    "UnsubscribedAddResponse",
    {
        "added": serializers.IntegerField(),
        "alreadyUnsubscribed": serializers.IntegerField(),
        "failed": FAILED_EMAIL.__class__(many=True, help_text="Addresses that are not valid."),
    },
)
UNSUBSCRIBED_REMOVED = inline_serializer(
    "UnsubscribedDeleteResponse",
    {
        "removed": serializers.IntegerField(),
        "notListed": serializers.IntegerField(),
        "failed": FAILED_EMAIL.__class__(many=True, help_text="Addresses that are not valid."),
    },
)
NOT_FOUND_KEYS = serializers.ListField(
    child=serializers.JSONField(),
    help_text="The contactIds or externalCustomerIds that name no contact.",
)
ATTACHED = inline_serializer(
    "GroupAttachResponse",
    {
        "attached": serializers.IntegerField(),
        "alreadyMembers": serializers.IntegerField(),
        "notFound": NOT_FOUND_KEYS,
    },
)
DETACHED = inline_serializer(
    "GroupDetachResponse",
    {"detached": serializers.IntegerField(), "notFound": NOT_FOUND_KEYS},
)
# The catalog's flags are the strings "true" and "false", as in the eSputnik v1 API.
FLAG_TEXT = serializers.CharField(help_text='"true" or "false"')
ADDRESS_BOOK = inline_serializer(
    "AddressBookResponse",
    {
        "addressBook": inline_serializer(
            "AddressBook",
            {
                "addressBookId": serializers.CharField(),
                "name": serializers.CharField(),
                "fieldGroups": inline_serializer(
                    "AddressBookFieldGroup",
                    {
                        "name": serializers.CharField(),
                        "fields": inline_serializer(
                            "AddressBookField",
                            {
                                "id": serializers.CharField(),
                                "name": serializers.CharField(),
                                "description": inline_serializer(
                                    "AddressBookFieldDescription",
                                    {
                                        "type": serializers.CharField(
                                            help_text="text, number, date, boolean, combobox…"
                                        ),
                                        "required": FLAG_TEXT,
                                        "readonly": FLAG_TEXT,
                                        "allowedValues": inline_serializer(
                                            "AddressBookAllowedValues",
                                            {
                                                "possibleValues": serializers.ListField(
                                                    child=serializers.CharField()
                                                )
                                            },
                                            required=False,
                                            help_text="Choice fields only.",
                                        ),
                                    },
                                ),
                            },
                            many=True,
                        ),
                    },
                    many=True,
                ),
            },
        )
    },
)
EMAILS_REQUEST = inline_serializer(
    "UnsubscribedEmailsRequest", {"emails": serializers.ListField(child=serializers.EmailField())}
)


class StaleFilter(ConflictError):
    """A stored dynamic filter that no longer compiles (e.g. a choice value was removed)."""

    RESPONSE = error_response(
        "The segment's stored filter no longer applies (a custom field or a choice it names "
        "was removed); the body names the filter's field."
    )

    def __init__(self, segment: Segment, exc: FilterError):
        super().__init__(f"the filter of segment {segment.pk} no longer applies; fix it")
        self.problem = exc

    def body(self) -> dict:
        return {"detail": self.message, f"filter.{self.problem.path}": [self.problem.message]}


def _group_or_404(group_id) -> Segment:
    segment = Segment.objects.filter(pk=group_id).first()
    if segment is None:
        raise NotFound(f"no group with id {group_id}")
    return segment


def _id_list(data, name: str) -> list | None:
    """A list from JSON (`[1, 2]`), a comma-separated string (`"1,2"`), or repeated form keys."""
    if hasattr(data, "getlist"):
        if name not in data:
            return None
        raw = data.getlist(name)
    else:
        if not isinstance(data, dict):
            raise ValidationError({"non_field_errors": ["the body must be a JSON object"]})
        raw = data.get(name)
        if raw is None:
            return None
        if not isinstance(raw, list | str | int):
            raise ValidationError({name: ["must be a list of ids or a comma-separated string"]})
        if not isinstance(raw, list):
            raw = [raw]
    values: list = []
    for item in raw:
        if isinstance(item, str):
            values.extend(part.strip() for part in item.split(",") if part.strip())
        else:
            values.append(item)
    return values


class GroupsView(APIView):
    """GET /v1/groups: segments with their eSputnik v1 type; total in the `TotalCount` header."""

    required_scope = Scope.CONTACTS

    @extend_schema(
        summary="Search groups (segments)",
        examples=[examples.GROUPS],
        parameters=[*PAGING_PARAMETERS, OpenApiParameter("name", str)],
        responses=inline_serializer(
            "Group",
            {
                "id": serializers.IntegerField(),
                "name": serializers.CharField(),
                "type": serializers.ChoiceField(choices=["Static", "Dynamic"]),
            },
            many=True,
        ),
    )
    def get(self, request):
        offset, limit = position_paging(request.query_params)
        groups = Segment.objects.order_by("pk")
        name = request.query_params.get("name", "").strip()
        if name:
            groups = groups.filter(name__icontains=name)
        total = groups.count()
        page = groups.values("id", "name", "kind")[offset : offset + limit]
        response = Response(
            [{"id": g["id"], "name": g["name"], "type": GROUP_TYPES[g["kind"]]} for g in page]
        )
        response["TotalCount"] = str(total)
        return response


class GroupContactsView(APIView):
    """GET /v1/group/{id}/contacts: the group's contacts as eSputnik v1 Contact objects."""

    required_scope = Scope.CONTACTS

    @extend_schema(
        summary="Contacts of a group",
        parameters=PAGING_PARAMETERS,
        responses={200: CONTACT_LIST, 409: StaleFilter.RESPONSE},
        examples=[examples.CONTACTS],
    )
    def get(self, request, group_id):
        segment = _group_or_404(group_id)
        offset, limit = position_paging(request.query_params)
        try:
            contacts = segment_contacts(segment)
        except FilterError as exc:
            raise StaleFilter(segment, exc) from None
        total = contacts.count()
        page = contacts.order_by("pk").prefetch_related(
            Prefetch("segments", queryset=Segment.objects.only("name"))
        )[offset : offset + limit]
        response = Response([contact_to_api(contact) for contact in page])
        response["TotalCount"] = str(total)
        return response


class _MembershipView(APIView):
    required_scope = Scope.CONTACTS
    membership_service = None

    def post(self, request, group_id):
        segment = _group_or_404(group_id)
        data = request.data if request.data else {}
        kwargs = {
            "contact_ids": _id_list(data, "contactIds"),
            "external_customer_ids": _id_list(data, "externalCustomerIds"),
        }
        result = type(self).membership_service(segment=segment, **kwargs)
        return Response(result)


class GroupAttachView(_MembershipView):
    """POST /v1/group/{id}/contacts/attach: add up to 500 contacts to a static group."""

    membership_service = staticmethod(segment_attach)

    @extend_schema(
        summary="Attach contacts to a static segment",
        request=MEMBERSHIP_REQUEST,
        responses=ATTACHED,
        examples=[examples.ATTACH, examples.ATTACH_EXTERNAL, examples.ATTACHED],
    )
    def post(self, request, group_id):
        return super().post(request, group_id)


class GroupDetachView(_MembershipView):
    """POST /v1/group/{id}/contacts/detach: remove contacts; with no ids, empty the group."""

    membership_service = staticmethod(segment_detach)

    @extend_schema(
        summary="Detach contacts from a static segment (no ids: empty it)",
        request=MEMBERSHIP_REQUEST,
        responses=DETACHED,
        examples=[examples.DETACH, examples.DETACHED],
    )
    def post(self, request, group_id):
        return super().post(request, group_id)


def _field_json(field: CustomField) -> dict:
    description = {
        "type": field.type,
        "required": "true" if field.required else "false",
        "readonly": "true" if field.readonly else "false",
    }
    if field.type == CustomFieldType.CHOICE:
        description["allowedValues"] = {"possibleValues": list(field.allowed_values)}
    return {"id": str(field.pk), "name": field.name, "description": description}


class AddressBooksView(APIView):
    """GET /v1/addressbooks: the custom field catalog ("Get catalog list").

    The eSputnik v1 API's example shows `fieldGroups` as one object because it has one group; Herald
    always answers a list of groups, so clients see one shape whatever the catalog holds.
    Ids and flags are strings, as in that API.
    """

    required_scope = Scope.CONTACTS

    @extend_schema(
        summary="Custom field catalog (Get catalog list)",
        responses=ADDRESS_BOOK,
        examples=[examples.CATALOG],
    )
    def get(self, request):
        groups: dict[str, list] = {}
        for field in custom_fields_load().values():
            groups.setdefault(field.group_name, []).append(_field_json(field))
        return Response(
            {
                "addressBook": {
                    "addressBookId": ADDRESS_BOOK_ID,
                    "name": ADDRESS_BOOK_NAME,
                    "fieldGroups": [
                        {"name": name, "fields": fields} for name, fields in groups.items()
                    ],
                }
            }
        )


class _UnsubscribedView(APIView):
    required_scope = Scope.CONTACTS

    def _emails(self, request) -> list:
        emails = _id_list(request.data if request.data else {}, "emails")
        if not emails:
            raise ValidationError({"emails": ["send a non-empty list of email addresses"]})
        return emails

    @staticmethod
    def _answer(result: dict) -> Response:
        stored = sum(value for key, value in result.items() if key != "failed")
        if result["failed"] and not stored:
            # Nothing valid at all: the request as a whole is wrong.
            raise ValidationError(
                {
                    "emails": [f"[{f['index']}] {f['reason']}" for f in result["failed"]],
                    "failed": result["failed"],
                }
            )
        return Response(result)


class UnsubscribedAddView(_UnsubscribedView):
    """POST /v1/emails/unsubscribed/add: no bulk email reaches these addresses any more."""

    @extend_schema(
        summary="Add emails to unsubscribed list",
        request=EMAILS_REQUEST,
        responses=UNSUBSCRIBED_ADDED,
        examples=[examples.UNSUBSCRIBE_ADD, examples.UNSUBSCRIBE_ADDED],
    )
    def post(self, request):
        result = unsubscribed_add(emails=self._emails(request))
        return self._answer(result)


class UnsubscribedDeleteView(_UnsubscribedView):
    """POST /v1/emails/unsubscribed/delete: take addresses off the unsubscribed list."""

    @extend_schema(
        summary="Remove emails from unsubscribed list",
        request=EMAILS_REQUEST,
        responses=UNSUBSCRIBED_REMOVED,
        examples=[examples.UNSUBSCRIBE_DELETE, examples.UNSUBSCRIBE_DELETED],
    )
    def post(self, request):
        result = unsubscribed_remove(emails=self._emails(request))
        return self._answer(result)

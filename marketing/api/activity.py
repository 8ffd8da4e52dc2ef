"""GET /api/herald/contacts/<id>/activity: a contact's activity timeline (marketing.activity),
newest first, paged by a `before` cursor and filtered by kinds."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from config.core.api_params import ID_MAX, IntParam, read_all
from config.core.models import Scope
from contacts.models import Contact
from marketing.activity import KINDS, PAGE_DEFAULT, PAGE_MAX, Cursor, CursorError, contact_activity

LIMIT = IntParam("limit", PAGE_DEFAULT, 1, PAGE_MAX, "Items per page.")


def kinds_parse(raw: str | None) -> set[str] | None:
    """The `kinds` parameter (comma-separated); None for every kind."""
    if raw is None or not raw.strip():
        return None
    kinds = {part.strip() for part in raw.split(",") if part.strip()}
    unknown = sorted(kinds - set(KINDS))
    if unknown:
        raise ValidationError(
            {"kinds": [f"unknown kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}"]}
        )
    return kinds


class ActivityItemSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=KINDS)
    id = serializers.IntegerField(help_text="The row's id in its own list (delivery, order, ...).")
    ref = serializers.IntegerField(
        help_text="The delivery of a message, open, click, unsubscribe or bounce; the workflow "
        "of a workflow run; else the same as id."
    )
    title = serializers.CharField(help_text="Campaign name, order id, event type or workflow.")
    status = serializers.CharField(allow_blank=True)
    url = serializers.CharField(allow_blank=True, help_text="The link, for a click.")
    detail = serializers.DictField(help_text="Channel, address, campaign id, params, totals...")


class ActivityPageSerializer(serializers.Serializer):
    items = ActivityItemSerializer(many=True)
    next = serializers.CharField(
        allow_null=True, help_text="`before` for the next (older) page; null at the end."
    )


class ContactActivityView(APIView):
    required_scope = Scope.CONTACTS

    @extend_schema(
        summary="A contact's activity timeline",
        parameters=[
            OpenApiParameter(
                "before",
                OpenApiTypes.STR,
                description="Only items older than this: an ISO 8601 date-time with offset, "
                "or the `next` of the previous page.",
            ),
            OpenApiParameter(
                "kinds",
                OpenApiTypes.STR,
                description=f"Comma-separated kinds to list (default all): {', '.join(KINDS)}.",
            ),
            LIMIT.openapi(),
        ],
        responses={200: ActivityPageSerializer},
    )
    def get(self, request, contact_id: str):
        (limit,) = read_all(request.query_params, LIMIT)
        kinds = kinds_parse(request.query_params.get("kinds"))
        before = None
        raw_before = request.query_params.get("before")
        if raw_before:
            try:
                before = Cursor.decode(raw_before)
            except CursorError as exc:
                raise ValidationError({"before": [str(exc)]}) from None
        pk = int(contact_id)
        if not 0 < pk <= ID_MAX or not Contact.objects.filter(pk=pk).exists():
            raise NotFound(f"no contact with id {contact_id}")
        page = contact_activity(contact_id=pk, before=before, kinds=kinds, limit=limit)
        return Response(ActivityPageSerializer({"items": page.items, "next": page.next}).data)

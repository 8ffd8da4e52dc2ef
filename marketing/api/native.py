"""Herald's own API (under /api/herald/): event types (with their declared params), event
history (delete one or many, analytics), orders, RFM.

Lists that grow without bound (events, orders) page by cursor (newest first).
"""

from django.db import transaction
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from config.core.api_params import IntParam, read_all
from config.core.models import Scope
from contacts.errors import ContactsRuleError
from marketing import rfm
from marketing.event_analytics import analytics_json, analytics_query, event_analytics
from marketing.event_params import PARAM_TYPES, DeclarationError, event_type_declare
from marketing.events import (
    EVENTS_DELETE_MAX,
    EventTypeError,
    event_type_create,
    event_type_update,
    events_delete,
    events_search,
)
from marketing.filters import FieldListError, FilterValueError, event_filters, instant, integer
from marketing.models import Event, EventType, Order, OrderItem, OrderStatus

LIMIT = IntParam("limit", 50, 1, 500, "Rows per page.")


class NewestFirst(CursorPagination):
    """Pages by an opaque `cursor` (the `next`/`previous` links). A `limit` out of its range or
    a cursor this list did not give is a 400 naming the parameter (DRF would ignore the one and
    answer 404 to the other)."""

    ordering = ("-created_at", "-id")
    page_size = LIMIT.default
    page_size_query_param = LIMIT.name
    max_page_size = LIMIT.maximum

    def get_page_size(self, request):
        (size,) = read_all(request.query_params, LIMIT)
        return size

    # Herald's own lists say how many rows match in all (`total`) beside the `next` page.
    def paginate_queryset(self, queryset, request, view=None):
        self.total = queryset.count()
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        response.data["total"] = self.total
        return response

    def get_paginated_response_schema(self, schema):
        paged = super().get_paginated_response_schema(schema)
        paged["properties"]["total"] = {
            "type": "integer",
            "description": "How many rows match in all (every page).",
        }
        paged.setdefault("required", []).append("total")
        return paged

    def decode_cursor(self, request):
        problem = {self.cursor_query_param: ["is not a cursor of this list; start without it"]}
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise ValidationError(problem) from None
        # Both orderings start with a date-time column: any other position would reach the
        # database as a value it cannot compare.
        if cursor is not None and cursor.position is not None:
            try:
                moment = parse_datetime(cursor.position)
            except ValueError:
                moment = None
            if moment is None:
                raise ValidationError(problem)
        return cursor

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == LIMIT.name:
                parameter["schema"] = LIMIT.schema
        return parameters


class OrdersNewestFirst(NewestFirst):
    ordering = ("-date", "-id")


class EventTypeSerializer(serializers.ModelSerializer):
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    key = serializers.CharField(max_length=200)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    # Read as given and checked by the service (event_type_declare), which names the entry.
    params = serializers.JSONField(
        source="params_declared",
        required=False,
        help_text="Declared params: [{name, type, required}], type one of "
        + ", ".join(PARAM_TYPES)
        + ". Events of the type are checked against them; [] takes anything.",
    )
    invalidMode = serializers.CharField(
        source="invalid_mode",
        required=False,
        help_text="refuse: an event that breaks the declaration is answered 400 and not "
        "stored; flag: it is stored, marked invalid with its problems.",
    )
    flaggedStartWorkflows = serializers.BooleanField(
        source="flagged_start_workflows",
        required=False,
        help_text="Whether events flagged invalid still start workflows (default false).",
    )

    class Meta:
        model = EventType
        fields = [
            "id",
            "key",
            "name",
            "createdAt",
            "params",
            "invalidMode",
            "flaggedStartWorkflows",
        ]
        validators: list = []  # uniqueness is a service rule that names the field


class EventTypeViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Event types: created on first use by Generate event, or here; key and name editable."""

    serializer_class = EventTypeSerializer
    required_scope = Scope.MANAGE

    def get_queryset(self):
        return EventType.objects.order_by("key")

    @transaction.atomic
    def perform_create(self, serializer):
        data = serializer.validated_data
        try:
            event_type = event_type_create(key=data["key"], name=data.get("name", ""))
            serializer.instance = _declare(event_type, data)
        except (EventTypeError, DeclarationError) as exc:
            raise ValidationError({exc.field: [exc.message]}) from None

    @transaction.atomic
    def perform_update(self, serializer):
        event_type = serializer.instance
        data = serializer.validated_data
        try:
            event_type = event_type_update(
                event_type=event_type,
                key=data.get("key", event_type.key),
                name=data.get("name", event_type.name),
            )
            serializer.instance = _declare(event_type, data)
        except (EventTypeError, DeclarationError) as exc:
            raise ValidationError({exc.field: [exc.message]}) from None


def _declare(event_type: EventType, data: dict) -> EventType:
    """Apply the declaration fields a create or update body carries (none: unchanged)."""
    names = ("params_declared", "invalid_mode", "flagged_start_workflows")
    if not any(name in data for name in names):
        return event_type
    return event_type_declare(
        event_type=event_type,
        params=data.get("params_declared", event_type.params_declared),
        invalid_mode=data.get("invalid_mode", event_type.invalid_mode),
        flagged_start_workflows=data.get(
            "flagged_start_workflows", event_type.flagged_start_workflows
        ),
    )


class EventSerializer(serializers.ModelSerializer):
    eventTypeKey = serializers.CharField(source="event_type.key")
    keyValue = serializers.CharField(source="key_value")
    contactId = serializers.IntegerField(source="contact_id", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at", help_text="When it arrived.")
    occurredAt = serializers.DateTimeField(
        source="occurred_at",
        help_text="When it happened (the sender's occurredAt, else createdAt).",
    )
    processedAt = serializers.DateTimeField(source="processed_at", allow_null=True)
    invalid = serializers.SerializerMethodField(
        help_text="Flagged: it broke its type's declared params."
    )
    problems = serializers.ListField(
        child=inline_serializer(
            "EventProblem", {"param": serializers.CharField(), "problem": serializers.CharField()}
        ),
        default=list,
        help_text="How it broke them (empty when it did not).",
    )

    class Meta:
        model = Event
        fields = [
            "id",
            "eventTypeKey",
            "keyValue",
            "params",
            "contactId",
            "createdAt",
            "occurredAt",
            "processedAt",
            "invalid",
            "problems",
        ]

    def get_invalid(self, event) -> bool:
        return event.problems is not None

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["problems"] = instance.problems or []
        return data


EVENTS_DELETE_REQUEST = inline_serializer(
    "EventsDeleteRequest",
    {
        "ids": serializers.ListField(
            child=serializers.IntegerField(min_value=1),
            min_length=1,
            max_length=EVENTS_DELETE_MAX,
            help_text=f"1 to {EVENTS_DELETE_MAX} event ids.",
        )
    },
)
EVENTS_DELETE_RESPONSE = inline_serializer(
    "EventsDeleteResponse",
    {
        "results": inline_serializer(
            "EventDeleteResult",
            {
                "id": serializers.IntegerField(),
                "deleted": serializers.BooleanField(),
                "error": serializers.CharField(required=False, help_text='"not found"'),
            },
            many=True,
        ),
        "deleted": serializers.IntegerField(help_text="How many were deleted."),
    },
)
_ANALYTICS_TYPE = inline_serializer(
    "EventAnalyticsType",
    {
        "id": serializers.IntegerField(),
        "key": serializers.CharField(),
        "name": serializers.CharField(),
        "total": serializers.IntegerField(),
        "uniqueContacts": serializers.IntegerField(),
        "perDay": serializers.ListField(child=serializers.IntegerField()),
    },
    many=True,
)
EVENT_ANALYTICS = inline_serializer(
    "EventAnalytics",
    {
        "from": serializers.DateField(),
        "to": serializers.DateField(help_text="Inclusive."),
        "timeZone": serializers.CharField(help_text="The zone days are counted in."),
        "days": serializers.ListField(child=serializers.DateField()),
        "types": _ANALYTICS_TYPE,
        "topValues": inline_serializer(
            "EventTopValues",
            {
                "eventTypeKey": serializers.CharField(),
                "param": serializers.CharField(),
                "values": inline_serializer(
                    "EventTopValue",
                    {"value": serializers.CharField(), "count": serializers.IntegerField()},
                    many=True,
                ),
            },
            allow_null=True,
        ),
    },
)


def _delete_ids(raw) -> list[int]:
    if not isinstance(raw, list) or not raw:
        raise FieldListError("ids", f"a list of 1 to {EVENTS_DELETE_MAX} event ids")
    if len(raw) > EVENTS_DELETE_MAX:
        raise FieldListError("ids", f"at most {EVENTS_DELETE_MAX} ids per call (got {len(raw)})")
    ids = []
    for index, value in enumerate(raw):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**63:
            raise FieldListError(f"ids[{index}]", "must be an event id (a positive integer)")
        ids.append(value)
    return list(dict.fromkeys(ids))


def _actor_id(request) -> int | None:
    return request.user.pk if request.user.is_authenticated else None


class EventViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Event history. Filters: type (key or id), contact (id), keyValue, from, to (ISO date or
    date-time; a date `to` includes that day), processed (true/false), invalid (true/false:
    flagged against the type's declared params). DELETE one, or POST `delete` for many; each
    deletion is in the audit log. `analytics`: figures by occurrence day."""

    serializer_class = EventSerializer
    pagination_class = NewestFirst
    # Reading history exposes every contact's event params; the events right only sends.
    required_scope = Scope.MANAGE

    def get_queryset(self):
        if self.action != "list":
            return Event.objects.select_related("event_type")
        # A bad filter is a FilterValueError: the exception handler answers {field: [message]}.
        return events_search(**event_filters(self.request.query_params))

    def perform_destroy(self, instance):
        events_delete(event_ids=[instance.pk], actor_id=_actor_id(self.request))

    @extend_schema(
        summary="Delete events by id",
        request=EVENTS_DELETE_REQUEST,
        responses={200: EVENTS_DELETE_RESPONSE},
        description="Deletes each event found, with an audit log entry; one that is not there "
        "is reported `not found`, the others are deleted all the same.",
    )
    @action(detail=False, methods=["post"], url_path="delete")
    def delete_many(self, request):
        data = request.data if isinstance(request.data, dict) else {}
        ids = _delete_ids(data.get("ids"))
        outcome = events_delete(event_ids=ids, actor_id=_actor_id(request))
        results = [
            {"id": pk, "deleted": True}
            if deleted
            else {"id": pk, "deleted": False, "error": "not found"}
            for pk, deleted in outcome.items()
        ]
        return Response(
            {"results": results, "deleted": sum(outcome.values())}, status=status.HTTP_200_OK
        )

    @extend_schema(
        summary="Event analytics",
        parameters=[
            OpenApiParameter(
                "from", str, description="First day (YYYY-MM-DD); default: 29 days before `to`."
            ),
            OpenApiParameter("to", str, description="Last day, inclusive; default: today."),
            OpenApiParameter("type", str, description="An event type (key or id) for topValues."),
            OpenApiParameter("param", str, description="The param of `type` whose values to rank."),
        ],
        responses={200: EVENT_ANALYTICS},
        description="Events per type per day and unique contacts per type, counted by when "
        "the events occurred (at most 366 days), and the 10 most frequent values of one "
        "param of one type.",
    )
    @action(detail=False, methods=["get"])
    def analytics(self, request):
        return Response(analytics_json(event_analytics(**analytics_query(request.query_params))))


class OrderItemSerializer(serializers.ModelSerializer):
    externalItemId = serializers.CharField(source="external_item_id")
    imageUrl = serializers.CharField(source="image_url")

    class Meta:
        model = OrderItem
        fields = [
            "externalItemId",
            "name",
            "category",
            "quantity",
            "cost",
            "url",
            "imageUrl",
            "description",
        ]


class OrderSerializer(serializers.ModelSerializer):
    externalOrderId = serializers.CharField(source="external_order_id")
    externalCustomerId = serializers.CharField(source="external_customer_id")
    contactId = serializers.IntegerField(source="contact_id", allow_null=True)
    totalCost = serializers.DecimalField(source="total_cost", max_digits=16, decimal_places=2)
    items = OrderItemSerializer(many=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "externalOrderId",
            "externalCustomerId",
            "contactId",
            "status",
            "totalCost",
            "currency",
            "date",
            "email",
            "phone",
            "items",
            "raw",
        ]


def order_filters(orders, query):
    status = (query.get("status") or "").strip()
    if status:
        if status not in OrderStatus.values:
            raise FilterValueError("status", f"one of {', '.join(OrderStatus.values)}")
        orders = orders.filter(status=status)
    contact = integer(query.get("contact"), "contact")
    if contact is not None:
        orders = orders.filter(contact_id=contact)
    for name, column in (
        ("externalOrderId", "external_order_id"),
        ("externalCustomerId", "external_customer_id"),
    ):
        value = (query.get(name) or "").strip()
        if value:
            orders = orders.filter(**{column: value})
    date_from = instant(query.get("from"), "from")
    date_to = instant(query.get("to"), "to", end_of_day=True)
    if date_from:
        orders = orders.filter(date__gte=date_from)
    if date_to:
        orders = orders.filter(date__lt=date_to)
    return orders


class OrderViewSet(viewsets.ReadOnlyModelViewSet):
    """Stored orders (write through POST /api/v1/orders). Filters: status, contact,
    externalOrderId, externalCustomerId, from, to (order date)."""

    serializer_class = OrderSerializer
    pagination_class = OrdersNewestFirst
    required_scope = Scope.MANAGE

    def get_queryset(self):
        orders = Order.objects.prefetch_related("items")
        if self.action != "list":
            return orders
        return order_filters(orders, self.request.query_params)


_RFM_GRID_FIELDS = {
    "rows": inline_serializer(
        "RFMRow",
        {
            "recency": serializers.IntegerField(min_value=1, max_value=5),
            "cells": inline_serializer(
                "RFMCell",
                {
                    "recency": serializers.IntegerField(min_value=1, max_value=5),
                    "frequency": serializers.IntegerField(min_value=1, max_value=5),
                    "contacts": serializers.IntegerField(),
                    "revenue": serializers.FloatField(),
                },
                many=True,
            ),
        },
        many=True,
        help_text="Recency 5 (recent) down to 1; each row's cells from frequency 1 to 5.",
    ),
    "contacts": serializers.IntegerField(help_text="Scored contacts."),
    "revenue": serializers.FloatField(),
    "computed_at": serializers.DateTimeField(allow_null=True),
}
RFM_GRID = inline_serializer("RFMGrid", _RFM_GRID_FIELDS)
RFM_RECOMPUTED = inline_serializer(
    "RFMRecomputed", {"scoredContacts": serializers.IntegerField(), **_RFM_GRID_FIELDS}
)
RFM_SEGMENT = inline_serializer(
    "RFMSegment",
    {
        "segmentId": serializers.IntegerField(),
        "name": serializers.CharField(),
        "filter": serializers.JSONField(help_text="The dynamic segment's filter."),
    },
)
RFM_REQUEST = inline_serializer(
    "RFMRequest",
    {
        "recompute": serializers.BooleanField(
            required=False, help_text="true: recompute every contact's scores now."
        ),
        "segmentName": serializers.CharField(required=False),
        "cells": serializers.ListField(
            child=serializers.CharField(),
            required=False,
            help_text='Grid cells to save as a dynamic segment, as "recency-frequency" '
            '("5-4"); [5, 4] and {"recency": 5, "frequency": 4} are accepted too.',
        ),
    },
)


def _rfm_grid_json() -> dict:
    """The grid in the API's declared shape (RFM_GRID): rfm.rfm_grid() also carries, for the
    RFM page, each cell's RFMGroup and the groups with their segments, which are not JSON."""
    grid = rfm.rfm_grid()
    return {
        "rows": [
            {
                "recency": row["recency"],
                "cells": [
                    {key: cell[key] for key in ("recency", "frequency", "contacts", "revenue")}
                    for cell in row["cells"]
                ],
            }
            for row in grid["rows"]
        ],
        "contacts": grid["contacts"],
        "revenue": grid["revenue"],
        "computed_at": grid["computed_at"],
    }


class RFMView(APIView):
    """GET: the 5 x 5 recency x frequency grid. POST {"recompute": true}: recompute now;
    POST {"segmentName", "cells": ["5-4", ...]}: save cells as a dynamic segment."""

    required_scope = Scope.MANAGE

    @extend_schema(summary="The RFM grid", responses={200: RFM_GRID})
    def get(self, request):
        return Response(_rfm_grid_json())

    @extend_schema(
        summary="Recompute the RFM scores, or save grid cells as a segment",
        request=RFM_REQUEST,
        responses={
            200: OpenApiResponse(RFM_RECOMPUTED, description="Recomputed (`recompute`)."),
            201: OpenApiResponse(RFM_SEGMENT, description="The cells saved as a segment."),
        },
    )
    def post(self, request):
        data = request.data if isinstance(request.data, dict) else {}
        if data.get("recompute") in (True, "true", "1"):
            scored = rfm.rfm_recompute()
            return Response({"scoredContacts": scored, **_rfm_grid_json()})
        try:
            cells = rfm.cells_parse(data.get("cells"))
            segment = rfm.rfm_segment_create(name=data.get("segmentName"), cells=cells)
        except (rfm.RFMError, ContactsRuleError) as exc:
            field = "segmentName" if exc.field == "name" else exc.field
            raise ValidationError({field: [exc.message]}) from None
        return Response(
            {"segmentId": segment.pk, "name": segment.name, "filter": segment.filter}, status=201
        )

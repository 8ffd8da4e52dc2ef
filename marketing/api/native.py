"""Herald's own API (under /api/herald/): event types, event history, orders, RFM.

Lists that grow without bound (events, orders) page by cursor (newest first).
"""

from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from config.core.api_params import IntParam, read_all
from config.core.models import Scope
from contacts.errors import ContactsRuleError
from marketing import rfm
from marketing.events import (
    EventTypeError,
    event_type_create,
    event_type_update,
    events_search,
)
from marketing.filters import FilterValueError, event_filters, instant, integer
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

    class Meta:
        model = EventType
        fields = ["id", "key", "name", "createdAt"]
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

    def perform_create(self, serializer):
        data = serializer.validated_data
        try:
            serializer.instance = event_type_create(key=data["key"], name=data.get("name", ""))
        except EventTypeError as exc:
            raise ValidationError({exc.field: [exc.message]}) from None

    def perform_update(self, serializer):
        event_type = serializer.instance
        data = serializer.validated_data
        try:
            serializer.instance = event_type_update(
                event_type=event_type,
                key=data.get("key", event_type.key),
                name=data.get("name", event_type.name),
            )
        except EventTypeError as exc:
            raise ValidationError({exc.field: [exc.message]}) from None


class EventSerializer(serializers.ModelSerializer):
    eventTypeKey = serializers.CharField(source="event_type.key")
    keyValue = serializers.CharField(source="key_value")
    contactId = serializers.IntegerField(source="contact_id", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")
    processedAt = serializers.DateTimeField(source="processed_at", allow_null=True)

    class Meta:
        model = Event
        fields = [
            "id",
            "eventTypeKey",
            "keyValue",
            "params",
            "contactId",
            "createdAt",
            "processedAt",
        ]


class EventViewSet(viewsets.ReadOnlyModelViewSet):
    """Event history. Filters: type (key or id), contact (id), keyValue, from, to (ISO date or
    date-time; a date `to` includes that day), processed (true/false)."""

    serializer_class = EventSerializer
    pagination_class = NewestFirst
    # Reading history exposes every contact's event params; the events right only sends.
    required_scope = Scope.MANAGE

    def get_queryset(self):
        if self.action != "list":
            return Event.objects.select_related("event_type")
        # A bad filter is a FilterValueError: the exception handler answers {field: [message]}.
        return events_search(**event_filters(self.request.query_params))


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

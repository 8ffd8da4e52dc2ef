"""Orders: POST /api/v1/orders (upsert 1-1000) and DELETE /api/v1/orders. Thin: the rules are
in marketing.orders.

Orders need a full-rights key (Scope.MANAGE): the eSputnik v1 API's limited rights (events;
events and contacts; contacts; messages) do not mention orders.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from config.core.models import Scope
from marketing.api import examples
from marketing.filters import FilterValueError, instant
from marketing.models import OrderStatus
from marketing.orders import (
    ITEM_STRINGS,
    ITEMS_MAX,
    MONEY_FIELDS,
    ORDERS_MAX,
    STRING_FIELDS,
    orders_delete,
    orders_upsert,
)


def _money(**kwargs) -> serializers.FloatField:
    return serializers.FloatField(min_value=0, **kwargs)


ORDER_ITEM = inline_serializer(
    "OrderItemInput",
    {
        **{
            name: serializers.CharField(
                max_length=limit, required=False, allow_blank=True, allow_null=True
            )
            for name, (_column, limit) in ITEM_STRINGS.items()
        },
        "quantity": _money(required=False, allow_null=True, help_text="1 when absent."),
        "cost": _money(required=False, allow_null=True),
    },
)
ORDER = inline_serializer(
    "OrderInput",
    {
        "externalOrderId": serializers.CharField(
            max_length=255, help_text="The order's id in your shop: orders upsert by it."
        ),
        "externalCustomerId": serializers.CharField(max_length=255),
        "totalCost": _money(),
        "status": serializers.ChoiceField(
            choices=OrderStatus.values, help_text="Only DELIVERED orders feed RFM analysis."
        ),
        "date": serializers.CharField(help_text="ISO 8601, e.g. 2017-03-08T09:30:00+02:00."),
        "currency": serializers.CharField(max_length=3, help_text="ISO 4217, e.g. USD."),
        "email": serializers.CharField(required=False, allow_blank=True, allow_null=True),
        "phone": serializers.CharField(required=False, allow_blank=True, allow_null=True),
        **{
            name: serializers.CharField(
                max_length=limit, required=False, allow_blank=True, allow_null=True
            )
            for name, (_column, limit) in STRING_FIELDS.items()
        },
        **{name: _money(required=False, allow_null=True) for name in MONEY_FIELDS},
        "additionalInfo": serializers.JSONField(required=False, allow_null=True),
        "items": serializers.ListField(
            child=ORDER_ITEM.__class__(), max_length=ITEMS_MAX, required=False, allow_null=True
        ),
    },
)
ORDERS_REQUEST = inline_serializer(
    "OrdersRequest",
    {"orders": serializers.ListField(child=ORDER.__class__(), min_length=1, max_length=ORDERS_MAX)},
)
ORDERS_RESPONSE = inline_serializer(
    "OrdersResponse",
    {
        "failedOrders": inline_serializer(
            "FailedOrder",
            {
                "index": serializers.IntegerField(help_text="Position in `orders`."),
                "externalOrderId": serializers.JSONField(help_text="As sent."),
                "reason": serializers.CharField(),
            },
            many=True,
        ),
        "storedOrders": serializers.IntegerField(),
        "createdOrders": serializers.IntegerField(),
        "updatedOrders": serializers.IntegerField(),
        "createdContacts": serializers.IntegerField(),
    },
)
ORDERS_DELETED = inline_serializer(
    "OrdersDeleteResponse", {"deletedOrders": serializers.IntegerField()}
)


def _ids(raw) -> list[str]:
    values = raw if isinstance(raw, list) else [raw]
    ids: list[str] = []
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ValidationError({"externalOrderIds": ["must be strings"]})
        ids.extend(part.strip() for part in value.split(",") if part.strip())
    return ids


class OrdersView(APIView):
    required_scope = Scope.MANAGE

    @extend_schema(
        summary="Add orders",
        request=ORDERS_REQUEST,
        responses={200: ORDERS_RESPONSE},
        examples=[examples.ADD_ORDERS, examples.ORDERS_STORED],
        description=(
            "Add or update 1-1000 orders (`orders`), upserted by externalOrderId. Required: "
            "externalOrderId, externalCustomerId, totalCost, status (INITIALIZED, IN_PROGRESS, "
            "DELIVERED, CANCELLED, ABANDONED_SHOPPING_CART), date (ISO 8601), currency (ISO "
            "4217). Answers `{failedOrders: [{index, externalOrderId, reason}], storedOrders, "
            "createdOrders, updatedOrders, createdContacts}`; valid orders are stored."
        ),
    )
    def post(self, request):
        data = request.data
        if not isinstance(data, dict):
            raise ValidationError({"non_field_errors": ["the body must be a JSON object"]})
        if "orders" not in data:
            raise ValidationError({"orders": ["required: a list of 1-1000 orders"]})
        # An OrdersError is answered by the exception handler as {field: [message]}.
        result = orders_upsert(orders=data["orders"])
        return Response(
            {
                "failedOrders": result.failed,
                "storedOrders": result.created + result.updated,
                "createdOrders": result.created,
                "updatedOrders": result.updated,
                "createdContacts": result.contacts_created,
            }
        )

    @extend_schema(
        request=None,
        parameters=[
            OpenApiParameter("externalOrderIds", str, description="Comma-separated ids."),
            OpenApiParameter("externalOrderId", str, description="One id; may repeat."),
            OpenApiParameter("startDate", OpenApiTypes.DATETIME),
            OpenApiParameter("endDate", OpenApiTypes.DATETIME),
        ],
        summary="Delete orders",
        responses={200: ORDERS_DELETED},
        examples=[examples.ORDERS_DELETED],
        description=(
            "Delete orders by `externalOrderIds` (comma-separated or repeated "
            "`externalOrderId`), or all orders dated from `startDate` to `endDate` (ISO 8601, "
            "at most 24 hours apart). Answers `{deletedOrders}`."
        ),
    )
    def delete(self, request):
        query = request.query_params
        body = request.data if isinstance(request.data, dict) else {}
        raw_ids = (
            query.getlist("externalOrderId")
            + query.getlist("externalOrderIds")
            + _ids(body.get("externalOrderIds") or body.get("externalOrderId") or [])
        )
        ids = _ids(raw_ids) if raw_ids else []
        start = query.get("startDate") or body.get("startDate")
        end = query.get("endDate") or body.get("endDate")
        # FilterValueError and OrdersError are answered by the exception handler as
        # {field: [message]}.
        date_from = instant(start, "startDate")
        date_to = instant(end, "endDate")
        if not ids and (date_from is None) != (date_to is None):
            missing = "endDate" if date_to is None else "startDate"
            raise FilterValueError(missing, "required with the other end of the range")
        deleted = orders_delete(external_order_ids=ids, date_from=date_from, date_to=date_to)
        return Response({"deletedOrders": deleted})

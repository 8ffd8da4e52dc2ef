"""Herald's own API for the suppression list (under /api/herald/suppressions): read it
(newest first, by keyset: `after` is the last id of the previous page), add an address by
hand, lift a suppression. Thin: contacts.suppression holds the rules; its refusals answer
400 naming the field.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from config.core.api_params import ID_MAX, IntParam, read_all
from config.core.models import Scope
from config.core.parsers import request_body_refuse_malformed
from contacts.models import ChannelType, Suppression, SuppressionReason
from contacts.suppression import (
    DETAIL_MAX,
    SUPPRESSIBLE_CHANNELS,
    address_normalise,
    suppression_add_manual,
    suppression_lift,
    suppressions_active,
    suppressions_search,
)

LIMIT = IntParam("limit", 50, 1, 500, "Rows per page.")
AFTER = IntParam("after", 0, 0, ID_MAX, "The `next` value of the previous page (an id).")
ADDRESS_MAX = 254


class SuppressionSerializer(serializers.ModelSerializer):
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    liftedAt = serializers.DateTimeField(source="lifted_at", read_only=True)
    liftedBy = serializers.CharField(source="lifted_by.username", read_only=True, allow_null=True)

    class Meta:
        model = Suppression
        fields = [
            "id",
            "channel",
            "address",
            "reason",
            "detail",
            "source",
            "createdAt",
            "liftedAt",
            "liftedBy",
        ]


class SuppressionAddSerializer(serializers.Serializer):
    # The model's choices (one enum in the schema for every "channel"); the service refuses
    # the channels that cannot be suppressed, naming the field.
    channel = serializers.ChoiceField(
        choices=ChannelType.choices,
        required=False,
        default=ChannelType.EMAIL,
        help_text="email or sms.",
    )
    address = serializers.CharField(max_length=ADDRESS_MAX)
    detail = serializers.CharField(
        max_length=DETAIL_MAX, required=False, allow_blank=True, default=""
    )


LIST_RESPONSE = inline_serializer(
    "SuppressionPage",
    {
        "results": SuppressionSerializer(many=True),
        "next": serializers.IntegerField(
            allow_null=True, help_text="Pass as `after` for the next page; null on the last."
        ),
        "total": serializers.IntegerField(help_text="How many rows match in all (every page)."),
    },
)
ADD_RESPONSE = inline_serializer(
    "SuppressionAdded",
    {
        "added": serializers.BooleanField(help_text="False: it was suppressed already."),
        "suppression": SuppressionSerializer(),
    },
)


class SuppressionsView(APIView):
    """GET: the list; POST: suppress an address by hand."""

    required_scope = Scope.MANAGE

    @extend_schema(
        summary="The suppression list",
        description=(
            "Addresses no message may reach on their channel, newest first. `address` "
            "matches the start of the stored address (emails in lower case, phones in "
            "E.164). Lifted suppressions only with `lifted=true`."
        ),
        parameters=[
            OpenApiParameter("address", str, description="Start of the address."),
            OpenApiParameter("reason", str, enum=[c for c, _ in SuppressionReason.choices]),
            OpenApiParameter("channel", str, enum=list(SUPPRESSIBLE_CHANNELS)),
            OpenApiParameter("lifted", bool, description="Include lifted suppressions."),
            LIMIT.openapi(),
            AFTER.openapi(),
        ],
        responses={200: LIST_RESPONSE},
    )
    def get(self, request):
        params = request.query_params
        limit, after = read_all(params, LIMIT, AFTER)
        errors: dict[str, list[str]] = {}
        reason = params.get("reason", "")
        if reason and reason not in SuppressionReason.values:
            errors["reason"] = [f"must be one of {', '.join(SuppressionReason.values)}"]
        channel = params.get("channel", "")
        if channel and channel not in SUPPRESSIBLE_CHANNELS:
            errors["channel"] = [f"must be one of {', '.join(SUPPRESSIBLE_CHANNELS)}"]
        address = params.get("address", "")
        if len(address) > ADDRESS_MAX:
            errors["address"] = [f"at most {ADDRESS_MAX} characters"]
        lifted = params.get("lifted", "").lower()
        if lifted not in ("", "true", "false", "1", "0"):
            errors["lifted"] = ["must be true or false"]
        if errors:
            raise ValidationError(errors)
        rows = suppressions_search(
            address=address, channel=channel, reason=reason, lifted=lifted in ("true", "1")
        )
        total = rows.count()
        if after:
            rows = rows.filter(pk__lt=after)
        page = list(rows.order_by("-pk")[: limit + 1])
        more = len(page) > limit
        page = page[:limit]
        return Response(
            {
                "results": SuppressionSerializer(page, many=True).data,
                "next": page[-1].pk if more else None,
                "total": total,
            }
        )

    @extend_schema(
        summary="Suppress an address by hand",
        description=(
            "No message will reach it on that channel until lifted. An address already "
            "suppressed keeps its first reason (`added` false). 400 names a bad field."
        ),
        request=SuppressionAddSerializer,
        responses={200: ADD_RESPONSE, 201: ADD_RESPONSE},
    )
    def post(self, request):
        body = SuppressionAddSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        address = address_normalise(data["channel"], data["address"])
        added = suppression_add_manual(
            channel=data["channel"],
            address=address,
            detail=data["detail"],
            user=request.user if request.user.is_authenticated else None,
        )
        suppression = suppressions_active(data["channel"], [address])[address]
        return Response(
            {"added": added, "suppression": SuppressionSerializer(suppression).data},
            status=201 if added else 200,
        )


class SuppressionLiftView(APIView):
    """POST: lift a suppression (the row stays, with who lifted it and when)."""

    required_scope = Scope.MANAGE

    @extend_schema(
        summary="Lift a suppression",
        description="Messages may reach the address again. 404 for an unknown id; lifting "
        "twice changes nothing (`lifted` false). Takes no body.",
        request=None,
        responses={
            200: inline_serializer(
                "SuppressionLifted",
                {"lifted": serializers.BooleanField(), "suppression": SuppressionSerializer()},
            )
        },
    )
    def post(self, request, suppression_id: str):
        request_body_refuse_malformed(request)
        pk = int(suppression_id)
        suppression = Suppression.objects.filter(pk=pk).first() if 0 < pk <= ID_MAX else None
        if suppression is None:
            raise NotFound(f"No suppression with id {suppression_id}.")
        user = request.user if request.user.is_authenticated else None
        lifted = suppression_lift(suppression=suppression, user=user)
        suppression.refresh_from_db()
        return Response({"lifted": lifted, "suppression": SuppressionSerializer(suppression).data})

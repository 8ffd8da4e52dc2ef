"""Herald's own API for promo code pools (under /api/herald/): pools, adding codes from a
JSON list or a CSV file, generating codes, listing codes, and the codes a campaign used.

Thin: serializers check shapes, campaigns.promo.services applies the rules and raises the
400s that name the field (and, for a file, each bad line).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.models import Campaign
from campaigns.promo.models import PromoCode, PromoPool
from campaigns.promo.services import (
    GENERATE_LENGTH_MAX,
    GENERATE_LENGTH_MIN,
    MAX_CODES_PER_CALL,
    PREFIX_MAX,
    CodesAdded,
    promo_codes_add,
    promo_codes_generate,
    promo_codes_of_campaign,
    promo_codes_upload,
    promo_pool_create,
    promo_pool_delete,
    promo_pool_update,
    promo_pools_counted,
)
from config.core.models import Scope

# Uploaded files larger than this are refused before parsing (a million codes of ~20 bytes).
MAX_FILE_BYTES = 50 * 1024 * 1024


class PromoPoolSerializer(serializers.ModelSerializer):
    key = serializers.CharField(
        max_length=50, help_text="Templates show a code of the pool as $!promo.KEY."
    )
    expiresAt = serializers.DateTimeField(source="expires_at", required=False, allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    free = serializers.IntegerField(read_only=True, help_text="Codes not handed out yet.")
    assigned = serializers.IntegerField(read_only=True, help_text="Codes handed out.")

    class Meta:
        model = PromoPool
        fields = ["id", "name", "key", "description", "expiresAt", "free", "assigned", "createdAt"]
        extra_kwargs = {"description": {"required": False, "allow_blank": True}}
        # The key's uniqueness is the service's rule (case-insensitive).
        validators: list = []


class PromoCodeSerializer(serializers.ModelSerializer):
    contactId = serializers.IntegerField(source="contact_id", allow_null=True)
    deliveryId = serializers.IntegerField(source="delivery_id", allow_null=True)
    workflowRunId = serializers.IntegerField(source="workflow_run_id", allow_null=True)
    assignedAt = serializers.DateTimeField(source="assigned_at", allow_null=True)

    class Meta:
        model = PromoCode
        fields = ["id", "code", "source", "contactId", "deliveryId", "workflowRunId", "assignedAt"]
        read_only_fields = fields


class CodesAddSerializer(serializers.Serializer):
    codes = serializers.ListField(
        child=serializers.CharField(trim_whitespace=True, allow_blank=False),
        allow_empty=False,
        max_length=MAX_CODES_PER_CALL,
        required=False,
        help_text="The codes (JSON); or send a CSV `file` (multipart): one code per line or "
        "a `code` column.",
    )
    file = serializers.FileField(required=False, help_text="CSV, UTF-8 (a BOM is fine).")


class DuplicateSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="Line of the file (position in the JSON list).")
    code = serializers.CharField()
    reason = serializers.CharField(help_text="`repeats line N` or `already in the pool`.")


class CodesAddedSerializer(serializers.Serializer):
    added = serializers.IntegerField()
    duplicates = DuplicateSerializer(many=True)


class GenerateSerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=1, max_value=MAX_CODES_PER_CALL)
    prefix = serializers.CharField(
        required=False, default="", allow_blank=True, trim_whitespace=False, max_length=PREFIX_MAX
    )
    length = serializers.IntegerField(
        required=False,
        default=8,
        min_value=GENERATE_LENGTH_MIN,
        max_value=GENERATE_LENGTH_MAX,
        help_text="Random characters after the prefix (no look-alikes: no 0/O, 1/I/L).",
    )


class GeneratedSerializer(serializers.Serializer):
    added = serializers.IntegerField()


class CampaignCodeSerializer(serializers.Serializer):
    code = serializers.CharField()
    pool = serializers.CharField(source="pool.key")
    contactId = serializers.IntegerField(source="contact_id", allow_null=True)
    email = serializers.CharField(source="delivery.locator")
    sentAt = serializers.DateTimeField(source="delivery.sent_at", allow_null=True)


class ById(CursorPagination):
    ordering = ("id",)
    page_size = 500
    page_size_query_param = "limit"
    max_page_size = 5000


def _added(result: CodesAdded) -> dict[str, Any]:
    return {
        "added": result.added,
        "duplicates": [
            {"line": line, "code": code, "reason": reason}
            for line, code, reason in result.duplicates
        ],
    }


ASSIGNED = OpenApiParameter(
    "assigned",
    OpenApiTypes.BOOL,
    description="true: only codes handed out; false: only free codes.",
)


class PromoPoolViewSet(viewsets.ModelViewSet):
    """Promo code pools. A template shows one code of a pool per recipient as `$!promo.KEY`;
    a run whose pool runs out pauses until codes are added."""

    serializer_class = PromoPoolSerializer
    required_scope = Scope.MANAGE
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[PromoPool]:
        return promo_pools_counted().order_by("name", "pk")

    def perform_create(self, serializer):
        pool = promo_pool_create(**serializer.validated_data)
        serializer.instance = self.get_queryset().get(pk=pool.pk)

    def perform_update(self, serializer):
        promo_pool_update(pool=serializer.instance, **serializer.validated_data)
        serializer.instance = self.get_queryset().get(pk=serializer.instance.pk)

    def perform_destroy(self, instance):
        promo_pool_delete(pool=instance)

    @extend_schema(
        request={
            "application/json": CodesAddSerializer,
            "multipart/form-data": CodesAddSerializer,
        },
        responses=CodesAddedSerializer,
        description='Add codes: `{"codes": [...]}` or a JSON list, or a CSV `file`. '
        "Duplicates (in the input or already in the pool) are reported with their line and "
        "skipped; the rest is stored. A code that is too long or holds a control character "
        "is a 400 listing each bad line, and nothing is stored.",
    )
    @action(detail=True, methods=["post"], url_path="codes")
    def codes_add(self, request: Request, pk: str | None = None) -> Response:
        pool = self.get_object()
        data = request.data
        if isinstance(data, list):
            data = {"codes": data}
        upload = request.FILES.get("file")
        if upload is not None:
            if upload.size > MAX_FILE_BYTES:
                raise ValidationError({"file": [f"At most {MAX_FILE_BYTES} bytes."]})
            result = promo_codes_upload(pool=pool, content=upload.read())
            return Response(_added(result))
        codes = data.get("codes") if hasattr(data, "get") else None
        if codes is None:
            raise ValidationError({"codes": ["Send a JSON list of codes, or a CSV file as file."]})
        if not isinstance(codes, list) or not codes:
            raise ValidationError({"codes": ["Must be a non-empty list of codes."]})
        if len(codes) > MAX_CODES_PER_CALL:
            raise ValidationError({"codes": [f"At most {MAX_CODES_PER_CALL} codes per call."]})
        lines = []
        for number, code in enumerate(codes, start=1):
            if not isinstance(code, str) or not code.strip():
                raise ValidationError({"codes": [f"Item {number}: must be a non-empty string."]})
            lines.append((number, code.strip()))
        result = promo_codes_add(pool=pool, lines=lines, field_name="codes")
        return Response(_added(result))

    @extend_schema(
        parameters=[ASSIGNED],
        responses=PromoCodeSerializer(many=True),
        operation_id="promo_pools_codes_list",
    )
    @codes_add.mapping.get
    def codes_list(self, request: Request, pk: str | None = None) -> Response:
        pool = self.get_object()
        codes = pool.codes.all()
        assigned = request.query_params.get("assigned")
        if assigned is not None:
            if assigned.lower() not in ("true", "false", "1", "0"):
                raise ValidationError({"assigned": ["Must be true or false."]})
            codes = codes.filter(assigned_at__isnull=assigned.lower() in ("false", "0"))
        paginator = ById()
        page = paginator.paginate_queryset(codes, request, view=self)
        return paginator.get_paginated_response(PromoCodeSerializer(page, many=True).data)

    @extend_schema(request=GenerateSerializer, responses={201: GeneratedSerializer})
    @action(detail=True, methods=["post"])
    def generate(self, request: Request, pk: str | None = None) -> Response:
        pool = self.get_object()
        body = GenerateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        added = promo_codes_generate(pool=pool, **body.validated_data)
        return Response({"added": added}, status=status.HTTP_201_CREATED)


class CampaignPromoCodesView(APIView):
    """The promo codes a campaign's messages carried: code, pool, contact, sent at."""

    required_scope = Scope.MANAGE

    @extend_schema(responses=CampaignCodeSerializer(many=True))
    def get(self, request: Request, campaign_id: str) -> Response:
        campaign = get_object_or_404(Campaign, pk=int(campaign_id))
        codes = promo_codes_of_campaign(campaign)
        paginator = ById()
        page = paginator.paginate_queryset(codes.order_by("pk"), request, view=self)
        response = paginator.get_paginated_response(CampaignCodeSerializer(page, many=True).data)
        response.data = {"count": codes.count(), **response.data}
        return response

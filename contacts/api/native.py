"""Herald's own API for the custom field catalog and segments (under /api/herald/).

Thin viewsets: serializers check shapes, contacts.segments applies the rules, and a
refused rule or a bad filter comes back as a 400 naming the field (`filter.tags.$in`).
"""

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from contacts.api.segments import StaleFilter
from contacts.models import CustomField, CustomFieldType, Segment, SegmentKind
from contacts.queries import FilterError, filter_reach, segment_reach
from contacts.segments import (
    ContactsRuleError,
    custom_field_create,
    custom_field_delete,
    custom_field_update,
    segment_create,
    segment_delete,
    segment_update,
)
from integrations.models import Scope

REACH_RESPONSE = inline_serializer("Reach", {"reach": serializers.IntegerField()})


def _rule_error(exc: ContactsRuleError) -> ValidationError:
    return ValidationError({exc.field: [exc.message]})


class CustomFieldSerializer(serializers.ModelSerializer):
    groupName = serializers.CharField(source="group_name", required=False, max_length=100)
    groupKey = serializers.CharField(source="group_key", required=False, max_length=100)
    allowedValues = serializers.ListField(
        source="allowed_values",
        child=serializers.CharField(max_length=200),
        required=False,
    )
    type = serializers.ChoiceField(choices=CustomFieldType.choices, required=False)
    key = serializers.CharField(required=False, max_length=100)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = CustomField
        fields = [
            "id",
            "name",
            "key",
            "groupName",
            "groupKey",
            "type",
            "required",
            "readonly",
            "allowedValues",
            "createdAt",
        ]
        # Uniqueness is a service rule (it answers with the field's name), not a validator.
        validators: list = []


class CustomFieldViewSet(viewsets.ModelViewSet):
    """Additional contact fields; their ids are what `fields[{id, value}]` and filters use."""

    serializer_class = CustomFieldSerializer
    required_scope = Scope.MANAGE
    filterset_fields = ["type", "group_name"]

    def get_queryset(self):
        return CustomField.objects.all()

    def perform_create(self, serializer):
        try:
            serializer.instance = custom_field_create(**serializer.validated_data)
        except ContactsRuleError as exc:
            raise _rule_error(exc) from None

    def perform_update(self, serializer):
        try:
            serializer.instance = custom_field_update(
                field=serializer.instance, **serializer.validated_data
            )
        except ContactsRuleError as exc:
            raise _rule_error(exc) from None

    def perform_destroy(self, instance):
        try:
            custom_field_delete(field=instance)
        except ContactsRuleError as exc:
            raise _rule_error(exc) from None


class SegmentSerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=SegmentKind.choices, required=False)
    filter = serializers.JSONField(required=False)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)

    class Meta:
        model = Segment
        fields = ["id", "name", "kind", "filter", "description", "createdAt", "updatedAt"]
        validators: list = []
        extra_kwargs = {"name": {"validators": []}, "description": {"required": False}}


class SegmentFilterSet(filters.FilterSet):
    name = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Segment
        fields = ["name", "kind"]


class ReachRequestSerializer(serializers.Serializer):
    filter = serializers.JSONField()


class SegmentViewSet(viewsets.ModelViewSet):
    """Static lists and dynamic filters; `reach` counts the contacts a filter matches now."""

    serializer_class = SegmentSerializer
    required_scope = Scope.MANAGE
    filterset_class = SegmentFilterSet

    def get_queryset(self):
        return Segment.objects.all()

    def perform_create(self, serializer):
        try:
            serializer.instance = segment_create(**serializer.validated_data)
        except ContactsRuleError as exc:
            raise _rule_error(exc) from None

    def perform_update(self, serializer):
        try:
            serializer.instance = segment_update(
                segment=serializer.instance, **serializer.validated_data
            )
        except ContactsRuleError as exc:
            raise _rule_error(exc) from None

    def perform_destroy(self, instance):
        try:
            segment_delete(segment=instance)
        except ContactsRuleError as exc:
            raise _rule_error(exc) from None

    @extend_schema(request=ReachRequestSerializer, responses=REACH_RESPONSE)
    @action(detail=False, methods=["post"], url_path="reach")
    def filter_reach(self, request):
        body = ReachRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            reach = filter_reach(body.validated_data["filter"])
        except FilterError as exc:
            path = "filter" if exc.path == "filter" else f"filter.{exc.path}"
            raise ValidationError({path: [exc.message]}) from None
        return Response({"reach": reach}, status=status.HTTP_200_OK)

    @extend_schema(request=None, responses=REACH_RESPONSE)
    @action(detail=True, methods=["get"], url_path="reach")
    def reach(self, request, pk=None):
        segment = self.get_object()
        try:
            reach = segment_reach(segment)
        except FilterError as exc:
            raise StaleFilter(segment, exc) from None
        return Response({"reach": reach})

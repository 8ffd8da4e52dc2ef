"""Herald's own API for the custom field catalog and segments (under /api/herald/).

Thin viewsets: serializers check shapes, contacts.segments applies the rules, and a
refused rule or a bad filter comes back as a 400 naming the field (`filter.tags.$in`).
"""

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from config.core.external_keys import PATH_ID, by_id_or_key, external_key_api_field
from config.core.models import Scope
from contacts.api.segments import StaleFilter
from contacts.custom_fields import custom_field_create, custom_field_delete, custom_field_update
from contacts.filters.compiler import FilterError, filter_reach, segment_reach
from contacts.models import CustomField, CustomFieldType, Segment, SegmentKind
from contacts.segment_members import CHANGES_PAGE_MAX, segment_changes_page
from contacts.segments import segment_create, segment_delete, segment_update

REACH_RESPONSE = inline_serializer("Reach", {"reach": serializers.IntegerField()})


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


class _ServiceViewSet(viewsets.ModelViewSet):
    """Writes go through the contacts services; their rule errors become 400s naming the
    field. Subclasses name the services and the keyword their update/delete take."""

    instance_kwarg: str

    def perform_create(self, serializer):
        serializer.instance = self.create_service(**serializer.validated_data)

    def perform_update(self, serializer):
        kwargs = {self.instance_kwarg: serializer.instance, **serializer.validated_data}
        serializer.instance = self.update_service(**kwargs)

    def perform_destroy(self, instance):
        self.delete_service(**{self.instance_kwarg: instance})


class CustomFieldViewSet(_ServiceViewSet):
    """Additional contact fields; their ids are what `fields[{id, value}]` and filters use."""

    serializer_class = CustomFieldSerializer
    required_scope = Scope.MANAGE
    filterset_fields = ["type", "group_name"]
    create_service = staticmethod(custom_field_create)
    update_service = staticmethod(custom_field_update)
    delete_service = staticmethod(custom_field_delete)
    instance_kwarg = "field"

    def get_queryset(self):
        return CustomField.objects.all()


class SegmentSerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=SegmentKind.choices, required=False)
    externalKey = external_key_api_field("The CRM campaigns API's audienceId takes it.")
    filter = serializers.JSONField(required=False)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)

    class Meta:
        model = Segment
        fields = [
            "id",
            "externalKey",
            "name",
            "kind",
            "filter",
            "description",
            "createdAt",
            "updatedAt",
        ]
        validators: list = []
        extra_kwargs = {"name": {"validators": []}, "description": {"required": False}}


class SegmentFilterSet(filters.FilterSet):
    name = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Segment
        fields = ["name", "kind"]


class ReachRequestSerializer(serializers.Serializer):
    filter = serializers.JSONField()


class ChangesQuerySerializer(serializers.Serializer):
    since = serializers.DateTimeField(help_text="Changes at or after this instant (ISO 8601).")
    limit = serializers.IntegerField(
        min_value=1, max_value=CHANGES_PAGE_MAX, default=100, help_text="Changes per page."
    )
    after = serializers.IntegerField(
        min_value=0, required=False, help_text="The `next` of the previous page."
    )


class SegmentChangeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    contactId = serializers.IntegerField(source="contact_id")
    change = serializers.ChoiceField(choices=["entered", "left"])
    at = serializers.DateTimeField()


class SegmentChangesSerializer(serializers.Serializer):
    segmentId = serializers.IntegerField()
    since = serializers.DateTimeField()
    entered = serializers.IntegerField(help_text="Contacts that entered since `since`.")
    left = serializers.IntegerField(help_text="Contacts that left since `since`.")
    changes = SegmentChangeSerializer(many=True, help_text="Oldest first, at most `limit`.")
    next = serializers.IntegerField(
        allow_null=True, help_text="Pass as `after` for the next page; null on the last page."
    )


class SegmentViewSet(_ServiceViewSet):
    """Static lists and dynamic filters; `reach` counts the contacts a filter matches now."""

    serializer_class = SegmentSerializer
    required_scope = Scope.MANAGE
    filterset_class = SegmentFilterSet
    create_service = staticmethod(segment_create)
    update_service = staticmethod(segment_update)
    delete_service = staticmethod(segment_delete)
    instance_kwarg = "segment"
    # A segment is named by its numeric id or its external key (aud-spring-prospects).
    lookup_value_regex = PATH_ID

    def get_queryset(self):
        return Segment.objects.all()

    def get_object(self):
        segment = by_id_or_key(self.get_queryset(), self.kwargs[self.lookup_field])
        if segment is None:
            raise NotFound(f"No segment with id or external key {self.kwargs[self.lookup_field]}.")
        self.check_object_permissions(self.request, segment)
        return segment

    @extend_schema(request=ReachRequestSerializer, responses=REACH_RESPONSE)
    @action(detail=False, methods=["post"], url_path="reach")
    def filter_reach(self, request):
        body = ReachRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        reach = filter_reach(body.validated_data["filter"])
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

    @extend_schema(
        parameters=[ChangesQuerySerializer],
        responses={200: SegmentChangesSerializer},
        description="Contacts that entered or left a dynamic segment (each change also "
        "emitted a segmentEntered / segmentLeft event). A static segment is a 400.",
    )
    @action(detail=True, methods=["get"], url_path="changes")
    def changes(self, request, pk=None):
        segment = self.get_object()
        query = ChangesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        if segment.kind != SegmentKind.DYNAMIC:
            raise ValidationError({"segment": ["only dynamic segments record changes"]})
        page = segment_changes_page(
            segment=segment,
            since=query.validated_data["since"],
            limit=query.validated_data["limit"],
            after=query.validated_data.get("after"),
        )
        return Response(SegmentChangesSerializer(page).data)

"""Herald's own API for message templates (under /api/herald/templates/).

Thin: serializers check shapes, templates.services applies the rules. A template that breaks
a rule answers 400 naming the field in the API's spelling, with line and column
(`{"html": ["Line 3, column 7: ..."]}`); deleting a template whose versions were sent is 409.
"""

from django.db import IntegrityError
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from config.core.external_keys import PATH_ID, by_id_or_key, external_key_api_field
from config.core.models import Scope
from config.core.parsers import request_body_refuse_malformed
from contacts.models import ChannelType, Contact
from templates.errors import TemplateError, TemplateValidationError
from templates.extensions import extensions_check, extensions_sample
from templates.forms import located
from templates.models import MessageTemplate, TemplateVersion
from templates.preview import SAMPLE_CONTACT
from templates.services import (
    template_create,
    template_delete,
    template_publish,
    template_render,
    template_update,
)

# Service (model) field name → the API's camelCase name.
API_NAMES = {
    "from_name": "fromName",
    "from_email": "fromEmail",
    "sms_text": "smsText",
    "external_id": "externalId",
    "external_key": "externalKey",
}


def _api_error(exc: TemplateValidationError) -> ValidationError:
    detail: dict[str, list[str]] = {}
    for error in exc.errors:
        detail.setdefault(API_NAMES.get(error.field, error.field), []).append(located(error))
    return ValidationError(detail)


class TemplateSerializer(serializers.ModelSerializer):
    channel = serializers.ChoiceField(choices=ChannelType.choices, required=False)
    fromName = serializers.CharField(
        source="from_name", required=False, allow_blank=True, max_length=200
    )
    fromEmail = serializers.CharField(
        source="from_email", required=False, allow_blank=True, max_length=254
    )
    html = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    textGenerated = serializers.BooleanField(source="text_generated", read_only=True)
    smsText = serializers.CharField(
        source="sms_text", required=False, allow_blank=True, trim_whitespace=False
    )
    externalId = serializers.CharField(
        source="external_id", required=False, allow_blank=True, allow_null=True, max_length=255
    )
    externalKey = external_key_api_field(
        "Not externalId, which is a provider's id of its copy; the CRM campaigns API's "
        "templateId takes this key."
    )
    version = serializers.IntegerField(read_only=True)
    editor = serializers.CharField(
        read_only=True,
        help_text="`html` or `blocks`: the editor the content was last designed in "
        "(a block design is read and saved at `templates/{id}/design`).",
    )
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)

    class Meta:
        model = MessageTemplate
        fields = [
            "id",
            "name",
            "channel",
            "subject",
            "preheader",
            "fromName",
            "fromEmail",
            "html",
            "text",
            "textGenerated",
            "smsText",
            "provider",
            "externalId",
            "externalKey",
            "version",
            "editor",
            "createdAt",
            "updatedAt",
        ]
        extra_kwargs = {
            "subject": {"required": False, "allow_blank": True},
            "preheader": {"required": False, "allow_blank": True},
            "provider": {"required": False, "allow_blank": True},
        }
        # Uniqueness of (provider, externalId) is answered from the constraint (perform_*).
        validators: list = []


class TemplateVersionSerializer(serializers.ModelSerializer):
    fromName = serializers.CharField(source="from_name")
    fromEmail = serializers.CharField(source="from_email")
    smsText = serializers.CharField(source="sms_text")
    publishedAt = serializers.DateTimeField(source="published_at")
    # Null when the version was published with an API key that no user owns.
    publishedBy = serializers.CharField(
        source="published_by.get_username", default=None, allow_null=True
    )
    languages = serializers.SlugRelatedField(
        many=True,
        read_only=True,
        slug_field="language_code",
        help_text="The language versions frozen with it (templates/{id}/languages).",
    )

    class Meta:
        model = TemplateVersion
        fields = [
            "number",
            "channel",
            "subject",
            "preheader",
            "fromName",
            "fromEmail",
            "html",
            "text",
            "smsText",
            "publishedAt",
            "publishedBy",
            "languages",
        ]
        read_only_fields = fields


class PreviewRequestSerializer(serializers.Serializer):
    contactId = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    data = serializers.JSONField(required=False, default=dict)
    version = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="Render this published version instead of the draft.",
    )

    def validate_data(self, value):
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValidationError("Must be a JSON object.")
        return value


PREVIEW_RESPONSE = inline_serializer(
    "TemplatePreview",
    {
        "subject": serializers.CharField(),
        "html": serializers.CharField(),
        "text": serializers.CharField(),
    },
)


class TemplateFilterSet(filters.FilterSet):
    name = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = MessageTemplate
        fields = ["name", "channel", "provider"]


class TemplateViewSet(viewsets.ModelViewSet):
    """Message templates (Velocity placeholders). Campaigns and messages send a published
    version: `publish` freezes the draft as the next version."""

    serializer_class = TemplateSerializer
    required_scope = Scope.MANAGE
    filterset_class = TemplateFilterSet

    # A template is named by its numeric id or its external key (tpl-spring-launch).
    lookup_value_regex = PATH_ID

    def get_queryset(self):
        return MessageTemplate.objects.order_by("-updated_at", "-pk")

    def get_object(self):
        reference = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        template = by_id_or_key(self.get_queryset(), reference)
        if template is None:
            raise NotFound(f"No template with id or external key {reference}.")
        self.check_object_permissions(self.request, template)
        return template

    def perform_create(self, serializer):
        try:
            serializer.instance = template_create(**serializer.validated_data)
        except TemplateValidationError as exc:
            raise _api_error(exc) from None
        except IntegrityError:
            # (provider, external_id) taken by an existing template, or a concurrent write
            # took one of the unique values the service checked.
            raise _duplicate_external_id() from None

    def perform_update(self, serializer):
        try:
            serializer.instance = template_update(
                template=serializer.instance, **serializer.validated_data
            )
        except TemplateValidationError as exc:
            raise _api_error(exc) from None
        except IntegrityError:
            raise _duplicate_external_id() from None

    def perform_destroy(self, instance):
        # A template whose versions were sent: TemplateInUseError, a 409 with its message.
        template_delete(template=instance)

    @extend_schema(
        summary="Publish the template as a new version",
        description="Takes no body: the template's current content becomes its next version.",
        request=None,
        responses={201: TemplateVersionSerializer},
    )
    @action(detail=True, methods=["post"])
    def publish(self, request, pk=None):
        request_body_refuse_malformed(request)
        template = self.get_object()
        try:
            version = template_publish(template=template, user=request.user)
        except TemplateValidationError as exc:
            raise _api_error(exc) from None
        return Response(TemplateVersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=TemplateVersionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request, pk=None):
        template = self.get_object()
        versions = template.versions.select_related("published_by").prefetch_related("languages")
        return Response(TemplateVersionSerializer(versions, many=True).data)

    @extend_schema(request=PreviewRequestSerializer, responses=PREVIEW_RESPONSE)
    @action(detail=True, methods=["post"])
    def preview(self, request, pk=None):
        template = self.get_object()
        body = PreviewRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        contact_id = body.validated_data.get("contactId")
        contact = SAMPLE_CONTACT
        if contact_id is not None:
            contact = Contact.objects.alive().filter(pk=contact_id).first()
            if contact is None:
                raise ValidationError({"contactId": [f"No contact with id {contact_id}."]})
        number = body.validated_data.get("version")
        source: dict = {"template": template}
        if number is not None:
            version = template.versions.filter(number=number).first()
            if version is None:
                raise ValidationError({"version": [f"This template has no version {number}."]})
            source = {"version": version}
        shown = source.get("version") or template
        errors = extensions_check(shown)
        if errors:
            raise _api_error(TemplateValidationError(errors))
        try:
            rendered = template_render(
                **source,
                contact=contact,
                data=body.validated_data["data"],
                extra=extensions_sample(shown),
            )
        except TemplateError as exc:
            # Answered on "data" (what a preview request sends), saying which part of the
            # template stopped (its budget, say) when known.
            field = getattr(exc, "field", None)
            where = f"{API_NAMES.get(field, field)}: " if field else ""
            raise ValidationError({"data": [f"{where}{exc}"]}) from None
        return Response({"subject": rendered.subject, "html": rendered.html, "text": rendered.text})


def _duplicate_external_id() -> ValidationError:
    return ValidationError(
        {
            "externalId": [
                "A template of this provider already has this external id (or another "
                "template took this externalKey at the same moment)."
            ]
        }
    )

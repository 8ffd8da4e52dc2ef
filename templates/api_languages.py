"""Herald's own API for the language versions of a template:
GET/POST /api/herald/templates/<id>/languages and
GET/PUT/DELETE /api/herald/templates/<id>/languages/<code>.

Thin: the serializer checks shapes, templates.languages applies the rules. A language the
template already has is a 400 naming `languageCode`; content errors name their field with
line and column, as the template API does.
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from config.core.models import Scope
from templates.errors import TemplateValidationError
from templates.forms import located
from templates.languages import (
    language_normalise,
    template_language_create,
    template_language_delete,
    template_language_update,
)
from templates.models import MessageTemplate, TemplateLanguage

API_NAMES = {"language_code": "languageCode", "sms_text": "smsText"}


def _api_error(exc: TemplateValidationError) -> ValidationError:
    detail: dict[str, list[str]] = {}
    for error in exc.errors:
        detail.setdefault(API_NAMES.get(error.field, error.field), []).append(located(error))
    return ValidationError(detail)


def _text(**kwargs) -> serializers.CharField:
    return serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, **kwargs)


class TemplateLanguageSerializer(serializers.Serializer):
    languageCode = serializers.CharField(
        source="language_code",
        max_length=10,
        help_text="A language code as contacts store it (en, uk, pt-BR); case-insensitive.",
    )
    subject = _text(max_length=500)
    preheader = _text(max_length=500)
    html = _text()
    text = _text(help_text="Empty: derived from the HTML.")
    textGenerated = serializers.BooleanField(source="text_generated", read_only=True)
    smsText = _text(source="sms_text")
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)


class TemplateLanguageUpdateSerializer(TemplateLanguageSerializer):
    languageCode = serializers.CharField(source="language_code", max_length=10, required=False)


def _template(pk) -> MessageTemplate:
    return get_object_or_404(MessageTemplate, pk=pk)


class TemplateLanguagesView(APIView):
    """The language versions of a template (its own content is the fallback version)."""

    required_scope = Scope.MANAGE

    @extend_schema(
        summary="List a template's language versions",
        responses=TemplateLanguageSerializer(many=True),
    )
    def get(self, request, pk):
        template = _template(pk)
        return Response(TemplateLanguageSerializer(template.languages.all(), many=True).data)

    @extend_schema(
        summary="Add a language version",
        description="A language the template already has is a 400 naming `languageCode`. "
        "Published with the template's next version.",
        request=TemplateLanguageSerializer,
        responses={201: TemplateLanguageSerializer},
    )
    def post(self, request, pk):
        template = _template(pk)
        body = TemplateLanguageSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            language = template_language_create(template=template, **body.validated_data)
        except TemplateValidationError as exc:
            raise _api_error(exc) from None
        return Response(TemplateLanguageSerializer(language).data, status=status.HTTP_201_CREATED)


class TemplateLanguageView(APIView):
    """One language version of a template, by its code."""

    required_scope = Scope.MANAGE

    def _language(self, pk, code) -> TemplateLanguage:
        return get_object_or_404(
            TemplateLanguage.objects.select_related("template"),
            template_id=pk,
            language_code=language_normalise(code),
        )

    @extend_schema(summary="Read a language version", responses=TemplateLanguageSerializer)
    def get(self, request, pk, code):
        return Response(TemplateLanguageSerializer(self._language(pk, code)).data)

    @extend_schema(
        summary="Change a language version",
        description="Keys left out keep their value; `languageCode` renames the version.",
        request=TemplateLanguageUpdateSerializer,
        responses=TemplateLanguageSerializer,
    )
    def put(self, request, pk, code):
        language = self._language(pk, code)
        body = TemplateLanguageUpdateSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        try:
            language = template_language_update(language=language, **body.validated_data)
        except TemplateValidationError as exc:
            raise _api_error(exc) from None
        return Response(TemplateLanguageSerializer(language).data)

    @extend_schema(
        summary="Remove a language version",
        description="Published versions keep theirs.",
        responses={204: None},
    )
    def delete(self, request, pk, code):
        template_language_delete(language=self._language(pk, code))
        return Response(status=status.HTTP_204_NO_CONTENT)

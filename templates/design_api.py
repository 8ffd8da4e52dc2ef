"""Herald's own API for block designs and their images (under /api/herald/).

GET/POST /api/herald/templates/<id>/design reads and saves a template's MJML design (POST
compiles it on the server; a design that fails answers 400 naming `mjml` with the
compiler's message, and the template keeps its last good design and HTML).
POST /api/herald/images (multipart, field `file`) stores an image and answers its public URL.
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from config.core.errors import FieldError
from config.core.models import Scope
from config.core.parsers import MultiPartParser
from templates.design import editor_image_create, editor_image_url, template_design_save
from templates.errors import TemplateValidationError
from templates.models import EditorImage, MessageTemplate


class DesignSerializer(serializers.Serializer):
    mjml = serializers.CharField(
        trim_whitespace=False, help_text="The MJML document (<mjml>…</mjml>)."
    )
    project = serializers.JSONField(
        required=False,
        default=dict,
        help_text="The block editor's project data, kept to reopen the design as it was left.",
    )

    def validate_project(self, value):
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValidationError("Must be a JSON object.")
        return value


class DesignResponseSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The template's id.")
    editor = serializers.CharField(help_text="`html` or `blocks`: the editor last used.")
    mjml = serializers.CharField()
    project = serializers.JSONField()
    html = serializers.CharField(help_text="The compiled, sanitised HTML the template sends.")
    updatedAt = serializers.DateTimeField()


def _design(template: MessageTemplate) -> dict:
    return {
        "id": template.pk,
        "editor": template.editor,
        "mjml": template.design_mjml,
        "project": template.design_project or {},
        "html": template.html,
        "updatedAt": template.updated_at,
    }


class TemplateDesignView(APIView):
    required_scope = Scope.MANAGE

    @extend_schema(operation_id="template_design_read", responses=DesignResponseSerializer)
    def get(self, request, pk: int):
        template = get_object_or_404(MessageTemplate, pk=pk)
        return Response(DesignResponseSerializer(_design(template)).data)

    @extend_schema(
        operation_id="template_design_save",
        request=DesignSerializer,
        responses=DesignResponseSerializer,
    )
    def post(self, request, pk: int):
        template = get_object_or_404(MessageTemplate, pk=pk)
        body = DesignSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            template = template_design_save(
                template=template,
                mjml=body.validated_data["mjml"],
                project=body.validated_data["project"],
            )
        except FieldError as exc:  # the compiler's message, or a template that is not email
            raise ValidationError({exc.field: [exc.message]}) from None
        except TemplateValidationError as exc:
            raise ValidationError({"mjml": [error.message for error in exc.errors]}) from None
        return Response(DesignResponseSerializer(_design(template)).data)


class ImageUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="PNG, JPEG, GIF or WebP, at most 5 MB.")


class ImageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField(help_text="Absolute public URL, for use in messages.")
    name = serializers.CharField()
    contentType = serializers.CharField()
    size = serializers.IntegerField()


def _image(image: EditorImage) -> dict:
    return {
        "id": image.pk,
        "url": editor_image_url(image),
        "name": image.name,
        "contentType": image.content_type,
        "size": image.size,
    }


class ImageUploadView(APIView):
    required_scope = Scope.MANAGE
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="image_upload",
        request={"multipart/form-data": ImageUploadSerializer},
        responses={201: ImageSerializer},
    )
    def post(self, request):
        body = ImageUploadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            image = editor_image_create(upload=body.validated_data["file"], user=request.user)
        except FieldError as exc:  # not an accepted image type, or too big
            raise ValidationError({exc.field: [exc.message]}) from None
        return Response(ImageSerializer(_image(image)).data, status=status.HTTP_201_CREATED)

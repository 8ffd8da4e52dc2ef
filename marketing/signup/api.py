"""Herald's own API for subscription forms (under /api/herald/forms): list, create, read,
replace and delete a form, and its statistics.

Thin: the serializer checks shapes, marketing.signup.services applies the rules; a refused
rule is a 400 naming the field in the API's own spelling (`redirectUrl`, `fields[0].key`).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from config.core.models import Scope
from contacts.models import Segment
from marketing.api.native import NewestFirst
from marketing.signup.models import FormLanguage, SignupForm
from marketing.signup.services import (
    STATS_DAYS,
    SignupFormError,
    signup_form_create,
    signup_form_delete,
    signup_form_stats,
    signup_form_update,
)

# The rules name model attributes; the API names its own keys.
API_NAMES = {
    "consent_enabled": "consentEnabled",
    "consent_text": "consentText",
    "double_optin": "doubleOptIn",
    "thank_you_message": "thankYouMessage",
    "redirect_url": "redirectUrl",
    "accent_color": "accentColor",
    "button_text": "buttonText",
}

FORM_EXAMPLE = {
    "name": "Newsletter",
    "key": "newsletter",
    "fields": [
        {"key": "email", "label": "Your email", "required": True},
        {"key": "first_name", "label": "", "required": False},
        {"key": "field:3", "label": "Birthday", "required": False},
    ],
    "consentEnabled": True,
    "consentText": "I agree to receive the newsletter and can unsubscribe at any time.",
    "groups": ["Newsletter"],
    "tags": ["newsletter"],
    "doubleOptIn": True,
    "thankYouMessage": "Thank you! Check your inbox to confirm.",
    "redirectUrl": "",
    "language": "en",
    "accentColor": "#1d4ed8",
    "buttonText": "Subscribe",
    "enabled": True,
}


class FormFieldSerializer(serializers.Serializer):
    key = serializers.CharField(
        help_text="email, phone, first_name, last_name, or field:<custom field id>."
    )
    label = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=200,
        help_text="Shown above the input; empty: the field's own name.",
    )
    required = serializers.BooleanField(required=False, default=False)


class SignupFormSerializer(serializers.ModelSerializer):
    fields = FormFieldSerializer(  # type: ignore[assignment]
        many=True, help_text="The inputs in the order shown; email is required and always there."
    )
    consentEnabled = serializers.BooleanField(
        source="consent_enabled", required=False, default=False
    )
    consentText = serializers.CharField(
        source="consent_text",
        required=False,
        allow_blank=True,
        default="",
        help_text="The text beside the consent checkbox; stored with each submission.",
    )
    groups = serializers.SlugRelatedField(
        slug_field="name",
        many=True,
        required=False,
        queryset=Segment.objects.all(),
        help_text="Names of static segments a subscriber joins.",
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, default=list
    )
    doubleOptIn = serializers.BooleanField(source="double_optin", required=False, default=True)
    thankYouMessage = serializers.CharField(
        source="thank_you_message", required=False, allow_blank=True, default=""
    )
    redirectUrl = serializers.CharField(
        source="redirect_url",
        required=False,
        allow_blank=True,
        default="",
        max_length=500,
        help_text="An http(s) address people are sent to after subscribing, instead of the "
        "thank-you message.",
    )
    language = serializers.ChoiceField(choices=FormLanguage.choices, required=False, default="en")
    accentColor = serializers.CharField(
        source="accent_color", required=False, default="#1d4ed8", max_length=7
    )
    buttonText = serializers.CharField(
        source="button_text", required=False, allow_blank=True, default="", max_length=60
    )
    enabled = serializers.BooleanField(required=False, default=True)
    url = serializers.SerializerMethodField(help_text="The form's hosted page.")
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)

    class Meta:
        model = SignupForm
        fields = [
            "id",
            "name",
            "key",
            "fields",
            "consentEnabled",
            "consentText",
            "groups",
            "tags",
            "doubleOptIn",
            "thankYouMessage",
            "redirectUrl",
            "language",
            "accentColor",
            "buttonText",
            "enabled",
            "url",
            "createdAt",
            "updatedAt",
        ]
        # The key's uniqueness is the service's rule (it answers naming `key`).
        validators: list = []
        extra_kwargs = {"key": {"validators": []}}

    def get_url(self, form: SignupForm) -> str:
        return f"{settings.HERALD_BASE_URL}{reverse('signup_page', args=[form.key])}"


class SignupFormInputSerializer(SignupFormSerializer):
    """The request body of create and replace, for the schema only: SignupFormSerializer
    without its read-only fields. The project does not split request and response components
    (COMPONENT_SPLIT_REQUEST), so the shared component lists id, url, createdAt and updatedAt
    as required and a request example would not validate against it."""

    url = None  # type: ignore[assignment]
    createdAt = None  # type: ignore[assignment]
    updatedAt = None  # type: ignore[assignment]

    class Meta(SignupFormSerializer.Meta):
        fields = [
            name
            for name in SignupFormSerializer.Meta.fields
            if name not in ("id", "url", "createdAt", "updatedAt")
        ]


class DayStatsSerializer(serializers.Serializer):
    day = serializers.DateField()
    views = serializers.IntegerField()
    submissions = serializers.IntegerField()
    newContacts = serializers.IntegerField(source="new_contacts")
    updatedContacts = serializers.IntegerField(source="updated_contacts")
    confirmed = serializers.IntegerField(help_text="New contacts who confirmed (double opt-in).")
    spam = serializers.IntegerField(help_text="Submissions blocked as spam or over the rate limit.")
    conversionRate = serializers.FloatField(
        source="conversion", allow_null=True, help_text="Submissions per 100 views."
    )


class FormStatsSerializer(serializers.Serializer):
    totals = DayStatsSerializer(help_text="Since the form was created (`day` is today).")
    days = DayStatsSerializer(many=True, help_text=f"The last {STATS_DAYS} days, oldest first.")


def _service_values(data: dict[str, Any]) -> dict[str, Any]:
    values = dict(data)
    if "groups" in values:
        values["groups"] = list(values["groups"])
    if "fields" in values:
        values["fields"] = [dict(item) for item in values["fields"]]
    return values


def _refused(exc: SignupFormError) -> ValidationError:
    errors: dict[str, list[str]] = {}
    for problem in exc.problems:
        head, bracket, rest = problem.field.partition("[")
        errors.setdefault(API_NAMES.get(head, head) + bracket + rest, []).append(problem.message)
    return ValidationError(errors)


@extend_schema_view(
    list=extend_schema(description="Subscription forms, newest first."),
    create=extend_schema(
        description="Create a form. A key already used or a form without the email field is a "
        "400 naming the field.",
        request=SignupFormInputSerializer,
        examples=[OpenApiExample("Newsletter form", value=FORM_EXAMPLE, request_only=True)],
    ),
    update=extend_schema(
        description="Replace a form's settings (every field; omitted ones take their defaults).",
        request=SignupFormInputSerializer,
        examples=[OpenApiExample("Newsletter form", value=FORM_EXAMPLE, request_only=True)],
    ),
    destroy=extend_schema(description="Delete a form: its page answers 404 from then on."),
)
class SignupFormViewSet(viewsets.ModelViewSet):
    """Subscription forms: a hosted page at /f/<key>/ and an embeddable form. Submissions
    subscribe like POST /api/v1/contact/subscribe with formType=<key>."""

    serializer_class = SignupFormSerializer
    pagination_class = NewestFirst
    required_scope = Scope.MANAGE
    http_method_names = ["get", "post", "put", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[SignupForm]:
        return SignupForm.objects.prefetch_related("groups")

    def perform_create(self, serializer):
        try:
            serializer.instance = signup_form_create(**_service_values(serializer.validated_data))
        except SignupFormError as exc:
            raise _refused(exc) from None

    def perform_update(self, serializer):
        try:
            serializer.instance = signup_form_update(
                form=serializer.instance, **_service_values(serializer.validated_data)
            )
        except SignupFormError as exc:
            raise _refused(exc) from None

    def perform_destroy(self, instance):
        signup_form_delete(form=instance)

    @extend_schema(
        responses=FormStatsSerializer,
        description=f"Views, submissions, new and updated contacts, confirmations, spam blocked "
        f"and the conversion rate: in total and per day for the last {STATS_DAYS} days.",
        examples=[
            OpenApiExample(
                "Statistics",
                response_only=True,
                value={
                    "totals": {
                        "day": "2026-12-07",
                        "views": 120,
                        "submissions": 9,
                        "newContacts": 7,
                        "updatedContacts": 2,
                        "confirmed": 5,
                        "spam": 3,
                        "conversionRate": 7.5,
                    },
                    "days": [
                        {
                            "day": "2026-12-07",
                            "views": 40,
                            "submissions": 3,
                            "newContacts": 3,
                            "updatedContacts": 0,
                            "confirmed": 2,
                            "spam": 1,
                            "conversionRate": 7.5,
                        }
                    ],
                },
            )
        ],
    )
    @action(detail=True, methods=["get"])
    def stats(self, request: Request, pk: str | None = None) -> Response:
        stats = signup_form_stats(form=self.get_object())
        return Response(FormStatsSerializer({"totals": stats.totals, "days": stats.days}).data)

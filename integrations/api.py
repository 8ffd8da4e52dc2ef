"""Integrations' API: who an API key belongs to (the eSputnik v1 API's account info), and
Herald's own endpoints for connected providers (the Telegram subscribe link)."""

from django.contrib.auth import get_user_model
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.delivery.providers import ProviderError
from config.core.errors import ConflictError, FieldError, HeraldError
from config.core.models import APIKey, Integration, Organisation, Scope
from config.core.schema import error_response
from contacts.models import Contact
from integrations.providers.telegram import TelegramProvider, telegram_subscribe_link

# Ids are PostgreSQL bigints; a larger number is no id at all.
_ID_MAX = 2**63 - 1


def _id(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and 0 < int(raw) <= _ID_MAX else None


@extend_schema_field(
    {
        "type": "string",
        "anyOf": [{"format": "email"}, {"maxLength": 0}],
        "description": "The email of the key's owner (else of the first administrator, else the "
        "organisation's sender address); empty when Herald knows none of them.",
    }
)
class UserEmailField(serializers.CharField):
    pass


class AccountInfoView(APIView):
    """Who the credentials belong to; integrators call it to check a key."""

    required_scope = Scope.ACCOUNT

    @extend_schema(
        summary="Get account info",
        description="Integrators call it to check an API key (the eSputnik document's first step).",
        responses=inline_serializer(
            "AccountInfo",
            {"userEmail": UserEmailField(), "organisationName": serializers.CharField()},
        ),
        examples=[
            OpenApiExample(
                "Account info",
                summary="Whose key it is",
                response_only=True,
                value={"userEmail": "owner@shop.example.com", "organisationName": "Shop"},
            )
        ],
    )
    def get(self, request):
        user = request.user if request.user.is_authenticated else None
        if user is None and isinstance(request.auth, APIKey):
            user = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
        organisation = Organisation.load()
        return Response(
            {
                "userEmail": (user.email if user else "") or organisation.default_sender_email,
                "organisationName": organisation.name,
            }
        )


class NotFound(HeraldError):
    """The integration or contact a path or parameter names does not exist."""

    status = 404


class TelegramSubscribeLinkView(APIView):
    """The deep link that subscribes a contact's Telegram chat to the integration's bot, for
    a shop to put in an email or on a page. Like all of /api/herald/, it needs the full
    right (README: "Herald's own API, keys and limits")."""

    required_scope = Scope.MANAGE

    @extend_schema(
        summary="Telegram subscribe link of a contact",
        parameters=[
            OpenApiParameter("id", int, OpenApiParameter.PATH, description="The integration's id."),
            OpenApiParameter("contactId", int, required=True, description="The contact's id."),
        ],
        responses={
            200: inline_serializer(
                "TelegramSubscribeLink",
                {
                    "link": serializers.URLField(),
                    "bot": serializers.CharField(),
                    "contactId": serializers.IntegerField(),
                    "integrationId": serializers.IntegerField(),
                },
            ),
            409: error_response(
                "The bot's username is unknown (never connected) and the Bot API cannot tell "
                "it now; the body says why."
            ),
        },
    )
    def get(self, request, pk: str):
        integration_id = _id(pk)
        integration = (
            Integration.objects.filter(pk=integration_id).first() if integration_id else None
        )
        if integration is None:
            raise NotFound(f"no integration with id {pk}", field="id")
        if integration.kind != TelegramProvider.kind:
            raise FieldError(
                "id",
                f"integration {integration.pk} is a {integration.kind} integration, not Telegram",
            )
        raw = request.query_params.get("contactId", "")
        if not raw:
            raise FieldError("contactId", "is required")
        contact_id = _id(raw)
        if contact_id is None:
            raise FieldError("contactId", "must be a contact id (a positive integer)")
        contact = Contact.objects.alive().filter(pk=contact_id).first()
        if contact is None:
            raise NotFound(f"no contact with id {raw}", field="contactId")
        try:
            link = telegram_subscribe_link(integration, contact)
        except ProviderError as exc:
            raise ConflictError(
                f"the bot's username is unknown; test the connection first ({exc.message})",
                field="id",
            ) from None
        return Response(
            {
                "link": link,
                "bot": integration.settings.get("bot_username", ""),
                "contactId": contact.pk,
                "integrationId": integration.pk,
            }
        )

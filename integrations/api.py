from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.core.models import APIKey, Organisation, Scope


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
        responses=inline_serializer(
            "AccountInfo",
            {"userEmail": UserEmailField(), "organisationName": serializers.CharField()},
        )
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

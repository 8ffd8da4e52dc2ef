"""OpenAPI shapes of the eSputnik v1 API's contact resources (what contact_to_api answers and
what the contact views read), shared by the contact and group views."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

CHANNEL = inline_serializer(
    "ContactChannel",
    {
        "type": serializers.CharField(help_text="email, sms, mobilepush, webpush, telegram…"),
        "value": serializers.CharField(),
    },
)
CONTACT = inline_serializer(
    "Contact",
    {
        "id": serializers.IntegerField(),
        "firstName": serializers.CharField(allow_blank=True),
        "lastName": serializers.CharField(allow_blank=True),
        "channels": CHANNEL.__class__(many=True),
        "address": inline_serializer(
            "ContactAddress",
            {
                "region": serializers.CharField(allow_blank=True),
                "town": serializers.CharField(allow_blank=True),
                "address": serializers.CharField(allow_blank=True),
                "postcode": serializers.CharField(allow_blank=True),
            },
        ),
        "fields": inline_serializer(
            "ContactFieldValue",
            {
                "id": serializers.JSONField(help_text="The custom field's id."),
                "value": serializers.JSONField(),
            },
            many=True,
        ),
        "externalCustomerId": serializers.CharField(allow_null=True),
        "languageCode": serializers.CharField(allow_blank=True),
        "timeZone": serializers.CharField(allow_blank=True),
        "groups": serializers.ListField(child=serializers.CharField(), help_text="Read only."),
        "tags": serializers.ListField(child=serializers.CharField()),
        "confirmed": serializers.BooleanField(),
        "source": serializers.CharField(),
        "createdAt": serializers.DateTimeField(allow_null=True),
        "updatedAt": serializers.DateTimeField(allow_null=True),
        "deleted": serializers.BooleanField(),
    },
)
CONTACTS = CONTACT.__class__(many=True)
CONTACT_ID = inline_serializer("ContactId", {"id": serializers.IntegerField()})
CONTACT_LIST = OpenApiResponse(
    CONTACTS, description="Contacts in id order; the total in the TotalCount header."
)
ERASE = OpenApiParameter(
    "erase",
    str,
    enum=["true", "false"],
    description="true also removes the contact's personal data.",
)
# A Contact object in a body; the services check it and answer 400 naming each field.
CONTACT_REQUEST = OpenApiTypes.OBJECT

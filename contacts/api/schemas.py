"""OpenAPI shapes of the eSputnik v1 API's contact resources (what contact_to_api answers and
what the contact views read), shared by the contact and group views."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

from contacts.validation import ADDRESS_LIMITS, NAME_MAX

CHANNEL = inline_serializer(
    "ContactChannel",
    {
        "type": serializers.CharField(help_text="email, sms, mobilepush, webpush, telegram…"),
        "value": serializers.CharField(),
    },
)
FIELD_VALUE = inline_serializer(
    "ContactFieldValue",
    {
        "id": serializers.JSONField(help_text="The custom field's id."),
        "value": serializers.JSONField(),
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
        "fields": FIELD_VALUE.__class__(many=True),
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
# A Contact object in a body: every key is optional (an update touches only the keys it
# carries; unknown keys, such as the read-only ones of CONTACT, are ignored). The services check
# it and answer 400 naming each field.
CONTACT_REQUEST = inline_serializer(
    "ContactInput",
    {
        "id": serializers.IntegerField(
            required=False, help_text="Ignored on update: the path names the contact."
        ),
        "firstName": serializers.CharField(
            required=False, allow_blank=True, allow_null=True, max_length=NAME_MAX
        ),
        "lastName": serializers.CharField(
            required=False, allow_blank=True, allow_null=True, max_length=NAME_MAX
        ),
        "channels": CHANNEL.__class__(
            many=True,
            required=False,
            help_text="The contact's email address and phone number (type email, sms), and "
            "any other channel it can be reached on.",
        ),
        "address": inline_serializer(
            "ContactAddressInput",
            {
                key: serializers.CharField(
                    required=False, allow_blank=True, allow_null=True, max_length=limit
                )
                for key, limit in ADDRESS_LIMITS.items()
            },
            required=False,
            allow_null=True,
        ),
        "fields": FIELD_VALUE.__class__(
            many=True,
            required=False,
            allow_null=True,
            help_text="Custom field values: the field's id (GET /v1/addressbooks) and its "
            "value; an empty value clears the field.",
        ),
        "externalCustomerId": serializers.CharField(
            required=False, allow_blank=True, allow_null=True, max_length=255
        ),
        "languageCode": serializers.CharField(
            required=False, allow_blank=True, allow_null=True, max_length=10, help_text="e.g. en"
        ),
        "timeZone": serializers.CharField(
            required=False,
            allow_blank=True,
            allow_null=True,
            max_length=64,
            help_text="An IANA time zone, e.g. Europe/Kyiv.",
        ),
        "tags": serializers.ListField(
            child=serializers.CharField(max_length=100), required=False, allow_null=True
        ),
    },
)

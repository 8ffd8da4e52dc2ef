"""OpenAPI examples of the eSputnik v1 API's contact resources.

Request examples are the eSputnik documents' own bodies, verbatim, named as those documents
name the method ("Subscribe contact", "Add/update contacts"); where a document shows an answer
in a shape Herald does not give, the example keeps the document's values in Herald's shape and
says what differs. The other examples show what Herald answers.
"""

from drf_spectacular.utils import OpenApiExample

SESSION_ID = "c5a7e3f0-1b7d-4a8e-9f43-2d1e6b0a9c11"

SUBSCRIBE = OpenApiExample(
    "Subscribe contact",
    summary="Subscribe contact (a subscribe form)",
    description="The eSputnik document's example: an unconfirmed contact, added to the "
    "Subscribers group; `formType` abc makes the events subscribeFromApi-abc (new contact) "
    "or subscribeUpdateFromApi-abc (known contact).",
    request_only=True,
    value={
        "contact": {
            "channels": [
                {"type": "email", "value": "mail@example.com"},
                {"type": "sms", "value": "380942583691"},
            ],
            "firstName": "John",
            "lastName": "Smith",
            "address": {
                "town": "London",
                "region": "West",
                "address": "First str. 1",
                "postcode": "12345",
            },
            "fields": [{"id": "12345", "value": "..."}],
        },
        "groups": ["Subscribers"],
        "formType": "abc",
    },
)
CONTACT_ID = OpenApiExample(
    "Contact id", summary="The contact's id", response_only=True, value={"id": 1024}
)

BULK = OpenApiExample(
    "Add update contacts",
    summary="Add/update contacts",
    description="The eSputnik document's example: contacts are found by email "
    "(`dedupeOn`), added to Customers and removed from Subscribers; new ones get the event "
    "newContact.",
    request_only=True,
    value={
        "contacts": [
            {
                "channels": [
                    {"type": "email", "value": "mail@example.com"},
                    {"type": "sms", "value": "380942583691"},
                ],
                "firstName": "John",
                "lastName": "Smith",
                "address": {
                    "town": "London",
                    "region": "West",
                    "address": "First str. 1",
                    "postcode": "12345",
                },
                "fields": [{"id": 12345, "value": "..."}],
            }
        ],
        "dedupeOn": "email",
        "customFieldsIDs": [12345],
        "groupNames": ["Customers"],
        "groupNamesExclude": ["Subscribers"],
        "restoreDeleted": False,
        "eventKeyForNewContacts": "newContact",
    },
)
BULK_FIELDS = OpenApiExample(
    "Pass additional field values",
    summary="How to pass additional field values",
    description="The eSputnik document's example: one custom field (id 12345, see GET "
    "/v1/addressbooks) of a contact found by its email address.",
    request_only=True,
    value={
        "contacts": [
            {
                "channels": [{"type": "email", "value": "test@mail.com"}],
                "fields": [{"id": 12345, "value": "..."}],
            }
        ],
        "customFieldsIDs": [12345],
    },
)
BULK_ACCEPTED = OpenApiExample(
    "Import session",
    summary="Accepted: follow the session at GET /v1/importstatus/{sessionId}",
    response_only=True,
    value={"asyncSessionId": SESSION_ID, "failedContacts": [], "errorMessage": None},
)
IMPORT_STATUS = OpenApiExample(
    "Import finished",
    summary="A finished import with one failed row",
    response_only=True,
    value={
        "status": "FINISHED",
        "description": "2 contacts: 1 created, 0 updated, 1 failed",
        "contactIds": [1024],
        "failedContacts": [
            {
                "index": 1,
                "reason": "channels[0].value: 'mail@' is not a valid email address",
                "contact": {"channels": [{"type": "email", "value": "mail@"}]},
            }
        ],
        "total": 2,
        "processed": 2,
        "created": 1,
        "updated": 0,
        "failed": 1,
    },
)

CONTACT_VALUE = {
    "id": 1024,
    "firstName": "John",
    "lastName": "Smith",
    "channels": [
        {"type": "email", "value": "mail@example.com"},
        {"type": "sms", "value": "380942583691"},
    ],
    "address": {
        "region": "West",
        "town": "London",
        "address": "First str. 1",
        "postcode": "12345",
    },
    "fields": [{"id": 12345, "value": "..."}],
    "externalCustomerId": "12345",
    "languageCode": "en",
    "timeZone": "Europe/London",
    "groups": ["Subscribers"],
    "tags": [],
    "confirmed": True,
    "source": "subscribe_form",
    "createdAt": "2026-12-01T09:30:00+00:00",
    "updatedAt": "2026-12-02T10:00:00+00:00",
    "deleted": False,
}
CONTACT = OpenApiExample("Contact", summary="A contact", response_only=True, value=CONTACT_VALUE)
# A list answer's example is one item: the schema generator shows it inside the list.
CONTACTS = OpenApiExample(
    "Search contacts",
    summary="Contacts found (the total is in the TotalCount header)",
    response_only=True,
    value=CONTACT_VALUE,
)
ADD_CONTACT = OpenApiExample(
    "Add contact",
    summary="Add contact (or update the one with this email or phone)",
    request_only=True,
    value={
        "channels": [{"type": "email", "value": "mail@example.com"}],
        "firstName": "John",
        "lastName": "Smith",
        "externalCustomerId": "12345",
        "languageCode": "en",
    },
)
UPDATE_CONTACT = OpenApiExample(
    "Update contact",
    summary="Update contact: only the keys sent change",
    request_only=True,
    value={"firstName": "John", "lastName": "Smith", "address": {"town": "London"}},
)

UPLOAD = OpenApiExample(
    "Add update contacts from external file",
    summary="Add/update contacts from external file",
    request_only=True,
    value={
        "link": "https://user:password@example.com/exports/contacts.csv",
        "dedupeOn": "email",
        "groupNames": ["Customers"],
        "restoreDeleted": False,
        "eventKeyForNewContacts": "newContact",
    },
)
UPLOAD_ACCEPTED = OpenApiExample(
    "Import session",
    summary="Accepted: follow the session at GET /v1/importstatus/{sessionId}",
    response_only=True,
    value={"asyncSessionId": SESSION_ID},
)

GROUPS = OpenApiExample(
    "Groups",
    summary="Segments (the total is in the TotalCount header)",
    response_only=True,
    value={"id": 7, "name": "Subscribers", "type": "Static"},
)
ATTACH = OpenApiExample(
    "Attach contact to static segment",
    summary="Attach contacts by their ids",
    request_only=True,
    value={"contactIds": [1024, 1025]},
)
ATTACH_EXTERNAL = OpenApiExample(
    "Attach by externalCustomerIds",
    summary="Attach contacts by your own customer ids",
    request_only=True,
    value={"externalCustomerIds": ["12345", "12346"]},
)
ATTACHED = OpenApiExample(
    "Attached",
    summary="One attached, one already a member, one unknown",
    response_only=True,
    value={"attached": 1, "alreadyMembers": 1, "notFound": [99999]},
)
DETACH = OpenApiExample(
    "Delete from static segment",
    summary="Detach contacts by their ids (send none to empty the segment)",
    request_only=True,
    value={"contactIds": [1024]},
)
DETACHED = OpenApiExample(
    "Detached", summary="Detached", response_only=True, value={"detached": 1, "notFound": []}
)

CATALOG = OpenApiExample(
    "Get catalog list",
    summary="Get catalog list: the custom fields",
    description="The eSputnik document's example. There `fieldGroups` is one object (its "
    "catalog has one group); Herald always answers a list of groups, so clients meet one "
    "shape whatever the catalog holds.",
    response_only=True,
    value={
        "addressBook": {
            "addressBookId": "7200",
            "name": "Main",
            "fieldGroups": [
                {
                    "name": "Personal",
                    "fields": [
                        {
                            "id": "15867",
                            "name": "Date of birth",
                            "description": {
                                "type": "date",
                                "required": "false",
                                "readonly": "false",
                            },
                        },
                        {
                            "id": "15868",
                            "name": "Gender",
                            "description": {
                                "type": "combobox",
                                "allowedValues": {"possibleValues": ["M", "F"]},
                                "required": "false",
                                "readonly": "false",
                            },
                        },
                    ],
                }
            ],
        }
    },
)

UNSUBSCRIBE_ADD = OpenApiExample(
    "Add emails to unsubscribed list",
    summary="Add emails to unsubscribed list",
    description="The eSputnik document's example. The address is unsubscribed, not a "
    "contact: every contact with it stops getting bulk email; SMS and other channels stay.",
    request_only=True,
    value={"emails": ["test1@mail.com", "test2@mail.com"]},
)
UNSUBSCRIBE_ADDED = OpenApiExample(
    "Added",
    summary="One added, one already on the list",
    response_only=True,
    value={"added": 1, "alreadyUnsubscribed": 1, "failed": []},
)
UNSUBSCRIBE_DELETE = OpenApiExample(
    "Remove emails from unsubscribed list",
    summary="Remove emails from unsubscribed list",
    description="The eSputnik document: the body is as for adding.",
    request_only=True,
    value={"emails": ["test1@mail.com", "test2@mail.com"]},
)
UNSUBSCRIBE_DELETED = OpenApiExample(
    "Removed",
    summary="Both removed",
    response_only=True,
    value={"removed": 2, "notListed": 0, "failed": []},
)

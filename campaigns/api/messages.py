"""eSputnik v1 message resources. Thin: shapes checked here, rules in campaigns.messages.

Answers are immediate; sending is asynchronous. Every accepted recipient gets a `requestId`
for GET /v1/message/status; a refused recipient gets status ERROR and a `message` saying why,
while the others are queued.

Answers take the eSputnik document's shapes: ids are strings, the status flags the strings
"true" and "false", and `results` is the object itself when the request names one recipient
(or one requestId), a list in the order given when it names several.
"""

from email.utils import parseaddr
from typing import Any

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.api import examples
from campaigns.messages import (
    RECIPIENTS_MAX,
    STATUS_IDS_MAX,
    MessageError,
    email_send_start,
    message_statuses,
    smartsend_start,
    sms_send_start,
    viber_send_start,
)
from config.core.models import APIKey, Scope
from config.core.parsers import request_body
from config.core.schema import error_response
from contacts.channels import email_normalise
from contacts.validation import FALSE_WORDS, TRUE_WORDS, errors_body
from templates.errors import HtmlSanitizeError, TemplateSyntaxError
from templates.sanitize import html_to_text
from templates.services import compiled

SUBJECT_MAX = 500
# Fields a form-encoded body repeats (emails=a&emails=b); JSON sends arrays.
LIST_FIELDS = ("emails", "phoneNumbers", "tags")
FROM_NAME_MAX = 200
SMS_SENDER_MAX = 20
SMS_TEXT_MAX = 2000
# Viber cuts a sender name at 28 characters and refuses texts over 7000.
VIBER_SENDER_MAX = 28
VIBER_TEXT_MAX = 7000
EXTERNAL_ID_MAX = 255


BOOLEAN_TEXT = {"type": "string", "enum": ["true", "false"]}
RESULT_ITEM = {
    "type": "object",
    "properties": {
        "id": {
            "type": "string",
            "nullable": True,
            "description": "The contact the message goes to (null: a messenger chat no contact "
            "holds).",
        },
        "locator": {"type": "string"},
        "status": {"type": "string", "enum": ["OK", "ERROR"]},
        "requestId": {
            "type": "string",
            "format": "uuid",
            "nullable": True,
            "description": "Ask GET /v1/message/status with it. An ERROR has one when the "
            "message was recorded but not sent (a suppressed address: status SKIPPED).",
        },
        "message": {
            "type": "string",
            "description": 'Only on an ERROR: why, e.g. "suppressed: hard bounce — 550 no such '
            'user (SendGrid, 2026-12-01)".',
        },
    },
    "required": ["id", "locator", "status", "requestId"],
}
STATUS_ITEM = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "The contact (absent when there is none)."},
        "requestId": {"type": "string"},
        "status": {
            "type": "string",
            "description": "QUEUED, SENT, DELIVERED, OPENED, CLICKED, BOUNCED, COMPLAINED, "
            "UNSUBSCRIBED, FAILED, SKIPPED, or NOT_FOUND for an unknown requestId.",
        },
        "failed": {
            **BOOLEAN_TEXT,
            "description": '"true" when failed, bounced (as the provider reported), or skipped '
            "(a suppressed address); a complaint about a bounced message too.",
        },
        "delivered": {
            **BOOLEAN_TEXT,
            "description": '"true" when the message reached the recipient: the provider '
            "reported delivery, or it was opened, clicked, complained about or unsubscribed "
            "from.",
        },
        "message": {
            "type": "string",
            "description": "Only when there is a reason: why it failed (the bounce, the "
            "suppression), or that the requestId is unknown.",
        },
    },
    "required": ["requestId", "status", "failed", "delivered"],
}


def _one_or_many(item: dict, what: str) -> dict:
    return {
        "oneOf": [item, {"type": "array", "items": item}],
        "description": f"An object when the request names one {what}, as the eSputnik "
        f"document shows; a list, in the order asked, when it names several (or a group).",
    }


@extend_schema_field(_one_or_many(RESULT_ITEM, "recipient"))
class SendResultsField(serializers.JSONField):
    pass


@extend_schema_field(_one_or_many(STATUS_ITEM, "requestId"))
class StatusResultsField(serializers.JSONField):
    pass


SEND_RESPONSE = inline_serializer(
    "MessageSendResponse",
    {
        "id": serializers.CharField(help_text="The send request (a string, as in the document)."),
        "results": SendResultsField(),
    },
)
SMARTSEND_REQUEST = inline_serializer(
    "SmartSendRequest",
    {
        "recipients": inline_serializer(
            "SmartSendRecipient",
            {
                "locator": serializers.CharField(
                    required=False, help_text="Email, or phone for SMS messages."
                ),
                "contactId": serializers.IntegerField(required=False),
                "jsonParam": serializers.CharField(
                    required=False,
                    help_text="$data for this recipient: a JSON object in a string (an object "
                    "is accepted too).",
                ),
                "languageCode": serializers.CharField(required=False),
            },
            many=True,
        ),
        "email": serializers.BooleanField(required=False),
        "fromName": serializers.CharField(required=False),
        "externalRequestId": serializers.CharField(required=False),
    },
)
EMAIL_REQUEST = inline_serializer(
    "EmailMessageRequest",
    {
        "from": serializers.CharField(required=False, help_text='"Name" <address>'),
        "subject": serializers.CharField(),
        "htmlText": serializers.CharField(required=False),
        "plainText": serializers.CharField(required=False),
        "emails": serializers.ListField(child=serializers.CharField(), max_length=1000),
        "tags": serializers.ListField(child=serializers.CharField(), required=False),
        "externalRequestId": serializers.CharField(required=False),
        "skipPersonalisation": serializers.BooleanField(required=False),
    },
)
SMS_REQUEST = inline_serializer(
    "SMSMessageRequest",
    {
        "from": serializers.CharField(required=False),
        "text": serializers.CharField(),
        "phoneNumbers": serializers.ListField(
            child=serializers.CharField(), required=False, max_length=1000
        ),
        "groupId": serializers.IntegerField(required=False),
        "tags": serializers.ListField(child=serializers.CharField(), required=False),
    },
)
VIBER_REQUEST = inline_serializer(
    "ViberMessageRequest",
    {
        "from": serializers.CharField(
            required=False,
            help_text=f"The sender name shown above the message (at most {VIBER_SENDER_MAX} "
            "characters); the Viber integration's when absent.",
        ),
        "text": serializers.CharField(help_text="A Velocity template ($contact)."),
        "phoneNumbers": serializers.ListField(
            child=serializers.CharField(),
            max_length=1000,
            help_text="Contacts' phone numbers; each reaches the Viber user of the contact "
            "with that number.",
        ),
        "tags": serializers.ListField(child=serializers.CharField(), required=False),
        "externalRequestId": serializers.CharField(required=False),
    },
)
SMS_RESPONSE = inline_serializer(
    "SMSMessageResponse",
    {
        "id": serializers.CharField(),
        "results": SendResultsField(),
        "count": serializers.IntegerField(help_text="Messages queued in all."),
    },
)
STATUS_RESPONSE = inline_serializer("MessageStatusResponse", {"results": StatusResultsField()})


class _Errors(dict):
    def add(self, field: str, problem: str) -> None:
        self.setdefault(field, []).append(problem)


def _flag(value: Any, name: str, errors: _Errors) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    errors.add(name, "must be true or false")
    return None


def _string(body, name: str, limit: int, errors: _Errors, *, required: bool = False) -> str:
    value = body.get(name)
    if value is None or value == "":
        if required:
            errors.add(name, "is required")
        return ""
    if not isinstance(value, str):
        errors.add(name, "must be a string")
        return ""
    if len(value) > limit:
        errors.add(name, f"must be at most {limit} characters")
    return value


def _tags(body, errors: _Errors) -> list[str]:
    tags = body.get("tags")
    if tags in (None, ""):
        return []
    if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
        errors.add("tags", "must be a list of strings")
        return []
    return [tag.strip()[:100] for tag in tags]


def _addresses(body, name: str, errors: _Errors, *, required: bool = True) -> list:
    values = body.get(name)
    if values is None:
        if required:
            errors.add(name, "is required: a list of recipients")
        return []
    if not isinstance(values, list):
        errors.add(name, "must be a list")
        return []
    if required and not values:
        errors.add(name, "must not be empty")
    if len(values) > RECIPIENTS_MAX:
        errors.add(name, f"at most {RECIPIENTS_MAX} per call (got {len(values)})")
    return values


def _template_source(value: str, name: str, errors: _Errors) -> None:
    try:
        compiled(value)
    except TemplateSyntaxError as exc:
        errors.add(name, f"template syntax error: {exc}")


def _key(request) -> APIKey | None:
    return request.auth if isinstance(request.auth, APIKey) else None


def _domain_error(exc: MessageError) -> Response:
    return Response(errors_body(exc.errors), status=exc.status)


def one_or_many(items: list[dict[str, Any]], *, several: bool) -> dict[str, Any] | list:
    """`results` as the eSputnik document writes it: the object itself for a request naming
    one recipient (or requestId), the list when it names several."""
    return items if several or len(items) != 1 else items[0]


def _answer(send_request, results, *, several: bool) -> Response:
    return Response(
        {
            "id": str(send_request.pk),
            "results": one_or_many([r.as_api() for r in results], several=several),
        }
    )


def _status_item(status: dict[str, Any]) -> dict[str, Any]:
    """A ledger status in the document's shape: flags as the strings "true" and "false"."""
    item: dict[str, Any] = {}
    if status["id"] is not None:
        item["id"] = str(status["id"])
    item.update(
        requestId=status["requestId"],
        status=status["status"],
        failed="true" if status["failed"] else "false",
        delivered="true" if status["delivered"] else "false",
    )
    if status["message"]:
        item["message"] = status["message"]
    return item


class SmartSendView(APIView):
    """POST /v1/message/{id}/smartsend: send prepared message `id` (its latest published
    version) to up to 1000 recipients, each with its own `jsonParam` ($data)."""

    required_scope = Scope.MESSAGES

    @extend_schema(
        summary="Send a prepared message",
        description=(
            "Sends the latest published version of message (template) `id`; 404 if there is "
            "no such message, 400 if it was never published. At most 1000 recipients. A "
            "recipient Herald does not know becomes a contact with only that channel. Single "
            "messages are transactional: they also reach addresses on the unsubscribed list, "
            "but never a suppressed address (hard bounce, complaint, repeated soft bounces, "
            "added by hand): its result is an ERROR naming the reason, with a requestId whose "
            "status is SKIPPED. "
            "`languageCode` picks the message's language version (case-insensitive; "
            "`en-GB` falls back to `en`); without it, the contact's language is used; a "
            "language the message has no version for gets its main content."
        ),
        request=SMARTSEND_REQUEST,
        responses=SEND_RESPONSE,
        examples=[examples.SMARTSEND, examples.SEND_ANSWER, examples.SEND_ANSWER_SEVERAL],
    )
    def post(self, request, **kwargs):
        body = request_body(request, lists=LIST_FIELDS)
        errors = _Errors()
        recipients = body.get("recipients")
        if not isinstance(recipients, list) or not recipients:
            errors.add("recipients", "is required: a non-empty list of recipients")
        elif len(recipients) > RECIPIENTS_MAX:
            errors.add("recipients", f"at most {RECIPIENTS_MAX} per call (got {len(recipients)})")
        else:
            for index, recipient in enumerate(recipients):
                if not isinstance(recipient, dict):
                    errors.add(f"recipients[{index}]", "must be an object")
        email = _flag(body.get("email"), "email", errors)
        from_name = _string(body, "fromName", 200, errors)
        external_id = _string(body, "externalRequestId", EXTERNAL_ID_MAX, errors)
        if errors:
            return Response(errors, status=400)
        try:
            send_request, results = smartsend_start(
                template_id=kwargs["id"],
                recipients=recipients,
                email=email,
                from_name=from_name,
                external_request_id=external_id,
                api_key=_key(request),
            )
        except MessageError as exc:
            return _domain_error(exc)
        return _answer(send_request, results, several=len(recipients) > 1)


class EmailView(APIView):
    """POST /v1/message/email: one email (Velocity content unless skipPersonalisation) to up
    to 1000 addresses."""

    required_scope = Scope.MESSAGES

    @extend_schema(
        summary="Send an email",
        description=(
            "subject, htmlText and plainText are Velocity templates ($contact, $data) unless "
            "skipPersonalisation is true; without plainText a text part is derived from the "
            "HTML. Without `from`, the organisation's default sender is used. A suppressed "
            "address is not sent: its result is an ERROR naming the reason."
        ),
        request=EMAIL_REQUEST,
        responses=SEND_RESPONSE,
        examples=[examples.EMAIL, examples.SEND_ANSWER, examples.SEND_ANSWER_SEVERAL],
    )
    def post(self, request):
        body = request_body(request, lists=LIST_FIELDS)
        errors = _Errors()
        sender = _string(body, "from", 320, errors)
        from_name, from_email = parseaddr(sender) if sender else ("", "")
        if sender:
            from_email, problem = email_normalise(from_email)
            if problem:
                errors.add("from", f'must be an address like "Shop" <news@shop.com>: {problem}')
            if len(from_name) > FROM_NAME_MAX:
                errors.add("from", f"the name must be at most {FROM_NAME_MAX} characters")
        subject = _string(body, "subject", SUBJECT_MAX, errors, required=True)
        if "\n" in subject or "\r" in subject:
            errors.add("subject", "must be a single line")
        html = _string(body, "htmlText", 2_000_000, errors)
        text = _string(body, "plainText", 1_000_000, errors)
        if not html and not text and "htmlText" not in errors:
            errors.add("htmlText", "htmlText or plainText is required")
        skip = _flag(body.get("skipPersonalisation"), "skipPersonalisation", errors) or False
        emails = _addresses(body, "emails", errors)
        tags = _tags(body, errors)
        external_id = _string(body, "externalRequestId", EXTERNAL_ID_MAX, errors)
        if not skip:
            for name, value in (("subject", subject), ("htmlText", html), ("plainText", text)):
                if value and name not in errors:
                    _template_source(value, name, errors)
        if html and not text and not errors:
            try:
                text = html_to_text(html)
            except (HtmlSanitizeError, TemplateSyntaxError) as exc:
                # Deriving the text parses the HTML as a template, with skipPersonalisation too.
                errors.add("htmlText", str(exc))
        if errors:
            return Response(errors, status=400)
        send_request, results = email_send_start(
            from_email=from_email or "",
            from_name=from_name,
            subject=subject,
            html=html,
            text=text,
            emails=emails,
            tags=tags,
            external_request_id=external_id,
            skip_personalisation=skip,
            api_key=_key(request),
        )
        return _answer(send_request, results, several=len(emails) > 1)


class SMSView(APIView):
    """POST /v1/message/sms: one text to up to 1000 `phoneNumbers`, or to the contacts of a
    group (`groupId`). With a group, `results` lists only the phoneNumbers given and `count`
    says how many messages were queued in all."""

    required_scope = Scope.MESSAGES

    @extend_schema(
        summary="Send an SMS",
        description=(
            "A suppressed number given in phoneNumbers is not sent: its result is an ERROR "
            "naming the reason. A group's suppressed numbers are left out of `count`."
        ),
        request=SMS_REQUEST,
        responses={200: SMS_RESPONSE, 404: error_response("No group with that groupId.")},
        examples=[examples.SMS, examples.SMS_ANSWER, examples.SMS_GROUP_ANSWER],
    )
    def post(self, request):
        body = request_body(request, lists=LIST_FIELDS)
        errors = _Errors()
        sender = _string(body, "from", SMS_SENDER_MAX, errors)
        text = _string(body, "text", SMS_TEXT_MAX, errors, required=True)
        numbers = _addresses(body, "phoneNumbers", errors, required=False)
        raw_group = body.get("groupId")
        group_id = None
        if raw_group not in (None, ""):
            try:
                group_id = int(raw_group)
            except (TypeError, ValueError):
                errors.add("groupId", "must be a group id")
        if (
            not numbers
            and group_id is None
            and "phoneNumbers" not in errors
            and "groupId" not in errors
        ):
            errors.add("phoneNumbers", "phoneNumbers or groupId is required")
        tags = _tags(body, errors)
        if text and "text" not in errors:
            _template_source(text, "text", errors)
        if errors:
            return Response(errors, status=400)
        try:
            send_request, results, count = sms_send_start(
                sender=sender,
                text=text,
                phone_numbers=numbers,
                group_id=group_id,
                tags=tags,
                api_key=_key(request),
            )
        except MessageError as exc:
            return _domain_error(exc)
        # A group names many recipients: always the list, of the phoneNumbers given.
        response = _answer(send_request, results, several=group_id is not None or len(numbers) > 1)
        response.data["count"] = count
        return response


class ViberView(APIView):
    """POST /v1/message/viber: one text to up to 1000 `phoneNumbers`, each reaching the Viber
    user of the contact with that number, through the integration connecting Viber."""

    required_scope = Scope.MESSAGES

    @extend_schema(
        summary="Send a Viber message",
        description=(
            "Viber addresses a user, not a phone number: each number reaches the Viber user "
            "of the oldest contact with that number who subscribed to the bot (its `viber` "
            "channel). A number without one is an ERROR saying so, the others are queued; no "
            "contact is created. Without an enabled integration connecting Viber the request "
            "is refused with 409 naming `channel`. Status: GET /v1/message/status."
        ),
        request=VIBER_REQUEST,
        responses={
            200: SEND_RESPONSE,
            409: error_response("No enabled integration connects Viber (`channel`)."),
        },
        examples=[examples.VIBER, examples.VIBER_ANSWER, examples.SEND_ANSWER_SEVERAL],
    )
    def post(self, request):
        body = request_body(request, lists=LIST_FIELDS)
        errors = _Errors()
        sender = _string(body, "from", VIBER_SENDER_MAX, errors)
        text = _string(body, "text", VIBER_TEXT_MAX, errors, required=True)
        numbers = _addresses(body, "phoneNumbers", errors)
        tags = _tags(body, errors)
        external_id = _string(body, "externalRequestId", EXTERNAL_ID_MAX, errors)
        if text and "text" not in errors:
            _template_source(text, "text", errors)
        if errors:
            return Response(errors, status=400)
        try:
            send_request, results = viber_send_start(
                sender=sender,
                text=text,
                phone_numbers=numbers,
                tags=tags,
                external_request_id=external_id,
                api_key=_key(request),
            )
        except MessageError as exc:
            return _domain_error(exc)
        return _answer(send_request, results, several=len(numbers) > 1)


class StatusView(APIView):
    """GET /v1/message/status?ids=requestId,requestId (comma-separated or repeated)."""

    required_scope = Scope.MESSAGES

    @extend_schema(
        summary="Status of single messages",
        parameters=[
            OpenApiParameter(
                "ids", str, required=True, description="requestIds, comma-separated or repeated"
            )
        ],
        responses=STATUS_RESPONSE,
        examples=[examples.STATUS_ANSWER, examples.STATUS_ANSWER_SEVERAL],
    )
    def get(self, request):
        ids = [
            part.strip()
            for value in request.query_params.getlist("ids")
            for part in value.split(",")
            if part.strip()
        ]
        ids = list(dict.fromkeys(ids))
        if not ids:
            return Response({"ids": ["is required: requestIds separated by commas"]}, status=400)
        if len(ids) > STATUS_IDS_MAX:
            return Response(
                {"ids": [f"at most {STATUS_IDS_MAX} per call (got {len(ids)})"]}, status=400
            )
        statuses = [_status_item(status) for status in message_statuses(request_ids=ids)]
        return Response({"results": one_or_many(statuses, several=len(ids) > 1)})

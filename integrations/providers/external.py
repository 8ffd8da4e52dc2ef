"""The external-campaign provider: a service that implements the provider contract of the CRM
marketing workspace (its email-service and messenger modules) as JSON over HTTP. Herald hands
it whole campaigns (prepare → create → stats → webhooks; campaigns.delivery.handover), imports
and publishes templates through it (integrations.template_sync), and applies what its
webhook reports.

The protocol (also in the README, "Connecting a service through the provider contract").
Every request carries `Authorization: Bearer <API key>`; bodies and answers are JSON. Paths
are relative to the integration's base URL.

    GET  /templates?offset=0&limit=50    → [{id, name, subject, html, text?}]  (a page; a
                                           full page means "ask again from offset+limit")
    GET  /templates/{id}/html            → {id, html}
    POST /templates {html, name, id?}    → {id}        (with id: replace that template)
    POST /contacts/export {contacts: [{id, email, phone, firstName, lastName, languageCode,
                           timeZone, tags, fields}]}             → 2xx
    POST /campaigns/{campaignId}/prepare {type, contacts: [...]} → 2xx
         (called once per slice of the audience: emails for type email, E.164 phones for
         sms, Herald contact ids for messenger; the service keeps the union, so a slice
         sent twice adds nothing)
    POST /campaigns {campaignId, name, type, subject, html, text, fromName, fromEmail,
                     templateId, sendAt}                          → {id}
         (idempotent by campaignId: the same campaignId again answers the id it already has)
    POST /messenger-campaigns {campaignId, name, type, text, botId, messengerType} → {id}
         (idempotent by campaignId likewise)
    GET  /campaigns/{id}/stats → {status, sent, delivered, opened, clicked, bounced,
                                  complained, unsubscribed, failed}
    GET  /messenger-types      → ["telegram", …]
    GET  /messenger-bots       → [{id, name, messengerType, link}]

Errors: a 4xx answer (but 408/429) is the service refusing (its body becomes the permanent
error's message); 408, 429, 5xx, timeouts and refused connections are transient.

`campaignId` is Herald's: "herald-run-<run id>"; the service's `id` for it is the external id
Herald keeps on the run.

The service's webhook (the integration's webhook URL) POSTs
`{"actions": [{"type": ..., ...}]}` with `X-Timestamp` (Unix seconds) and `X-Signature`, the
hex HMAC-SHA256 of "<X-Timestamp>.<raw body>" with the integration's webhook secret. A
request more than 5 minutes old, or a signature already seen, is refused (401). Actions, with
the fields of campaigns.delivery.feedback:

    {"type": "UpdateDeliveryStatus", "status": "delivered", "externalId": "<campaign id at
     the service>", "email": "<address or phone>", "contactId": <Herald contact id>,
     "messageId": "", "heraldId": "", "eventId": "", "detail": "", "url": "",
     "at": "<ISO 8601>"}
    (the recipient: externalId with email, or with contactId — a messenger campaign's
    recipients are known to the service only by the contact ids it was prepared with)
    {"type": "Unsubscribe", "email": "...", "externalId": "<category>", "all": true,
     "reason": ""}
    {"type": "UpdateCampaign", "externalId": "...", "status": "sending" | "sent" | ...}
    {"type": "UpdateCampaignStats", "externalId": "...", "stats": {status, sent, ...}}
    {"type": "SendEmail", "to": "...", "subject": "...", "html": "", "text": "",
     "fromEmail": "", "fromName": ""}

Statuses are Herald's names (campaigns.delivery.providers: DeliveryStatus, CampaignStatus).
A body that is not this shape is answered 400 and nothing of it is applied.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

from campaigns.delivery.feedback import (
    Action,
    SendEmail,
    Unsubscribe,
    UpdateCampaign,
    UpdateCampaignStats,
    UpdateDeliveryStatus,
    WebhookResult,
)
from campaigns.delivery.providers import (
    CampaignRequest,
    CampaignStats,
    CampaignStatus,
    CampaignType,
    DeliveryStatus,
    ImportedTemplate,
    MessengerBot,
    Provider,
    ProviderError,
    SettingField,
    WebhookCall,
    WebhookRefused,
    provider_register,
)
from config.core.errors import FieldError
from contacts.models import MESSENGER_CHANNELS, ChannelType, Contact
from integrations.providers.http_generic import (
    DEFAULT_TIMEOUT,
    HttpAnswer,
    HttpClient,
    answer_error,
    timeout_check,
    url_check,
)
from integrations.webhook_auth import hmac_hex, nonce_check, secret_equal, timestamp_check
from integrations.webhooks import WebhookMalformed

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Timestamp"


@provider_register
class ExternalCampaignProvider(Provider):
    kind = "external"
    label = "Service implementing the provider contract (whole campaigns)"
    channels = frozenset({ChannelType.EMAIL, ChannelType.SMS, *MESSENGER_CHANNELS})
    accepts_campaigns = True
    has_templates = True
    fields: ClassVar[tuple[SettingField, ...]] = (
        SettingField("base_url", "Base URL", kind="url", help="e.g. https://esp.example/api/v1"),
        SettingField("api_key", "API key", secret=True, help="Sent as a bearer token."),
        SettingField(
            "webhook_secret",
            "Webhook signing secret",
            secret=True,
            help="The service signs its webhook requests (X-Signature) with it.",
        ),
        SettingField("timeout", "Timeout (seconds)", kind="float", required=False, default=30),
        SettingField("bot_id", "Messenger bot id", required=False, help="For messenger campaigns."),
        SettingField("messenger_type", "Messenger type", required=False, default=""),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client: HttpClient | None = None

    @classmethod
    def settings_validate(cls, values: dict[str, Any]) -> dict[str, Any]:
        cleaned = dict(values)
        cleaned["base_url"] = url_check("base_url", values.get("base_url")).rstrip("/")
        if not str(values.get("api_key") or ""):
            raise FieldError("api_key", "This field is required.")
        if not str(values.get("webhook_secret") or ""):
            raise FieldError("webhook_secret", "This field is required.")
        cleaned["timeout"] = timeout_check("timeout", values.get("timeout") or 30)
        return cleaned

    # HTTP ------------------------------------------------------------------------------

    @property
    def client(self) -> HttpClient:
        if self._client is None:
            self._client = HttpClient(float(self.setting("timeout") or DEFAULT_TIMEOUT))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        base = str(self.setting("base_url") or "").rstrip("/")
        if not base:
            raise ProviderError("the integration has no base URL", permanent=True)
        headers = {"Authorization": f"Bearer {self.setting('api_key') or ''}"}
        body = json.dumps(payload).encode() if payload is not None else b""
        answer: HttpAnswer = self.client.request(method, base + path, headers=headers, body=body)
        if not 200 <= answer.status < 300:
            raise answer_error(answer, f"{method} {path}")
        try:
            return answer.json()
        except (ValueError, UnicodeDecodeError):
            raise ProviderError(
                f"{method} {path} answered with something that is not JSON: {answer.excerpt()}",
                permanent=True,
            ) from None

    @staticmethod
    def _id(answer: Any, what: str) -> str:
        if isinstance(answer, dict) and answer.get("id") not in (None, ""):
            return str(answer["id"])
        raise ProviderError(f"{what}: the service's answer names no id", permanent=True)

    def connection_test(self) -> str:
        try:
            self._call("GET", "/templates?" + urlencode({"offset": 0, "limit": 1}))
        finally:
            self.close()
        return "the service answered"

    # The provider contract --------------------------------------------------------------

    def templates_import(self, offset: int, limit: int) -> list[ImportedTemplate]:
        answer = self._call("GET", "/templates?" + urlencode({"offset": offset, "limit": limit}))
        if not isinstance(answer, list):
            raise ProviderError("GET /templates: the answer is not a list", permanent=True)
        templates = []
        for item in answer:
            if not isinstance(item, dict) or item.get("id") in (None, ""):
                raise ProviderError("GET /templates: a template without an id", permanent=True)
            templates.append(
                ImportedTemplate(
                    external_id=str(item["id"]),
                    name=str(item.get("name") or f"Template {item['id']}"),
                    subject=str(item.get("subject") or ""),
                    html=str(item.get("html") or ""),
                    text=str(item.get("text") or ""),
                    from_name=str(item.get("fromName") or ""),
                    from_email=str(item.get("fromEmail") or ""),
                )
            )
        return templates

    def template_html(self, external_id: str) -> str:
        answer = self._call("GET", f"/templates/{quote(external_id, safe='')}/html")
        if isinstance(answer, dict) and isinstance(answer.get("html"), str):
            return str(answer["html"])
        raise ProviderError("GET /templates/{id}/html: the answer has no html", permanent=True)

    def template_html_set(self, html: str, name: str, external_id: str = "") -> str:
        payload: dict[str, Any] = {"html": html, "name": name}
        if external_id:
            payload["id"] = external_id
        return self._id(self._call("POST", "/templates", payload), "POST /templates")

    def contacts_export(self, contact_ids: list[int]) -> None:
        rows = Contact.objects.filter(pk__in=contact_ids).values(
            "pk",
            "email",
            "phone",
            "first_name",
            "last_name",
            "language_code",
            "time_zone",
            "tags",
            "fields",
        )
        contacts = [
            {
                "id": row["pk"],
                "email": row["email"],
                "phone": row["phone"],
                "firstName": row["first_name"],
                "lastName": row["last_name"],
                "languageCode": row["language_code"],
                "timeZone": row["time_zone"],
                "tags": row["tags"],
                "fields": row["fields"],
            }
            for row in rows
        ]
        if contacts:
            self._call("POST", "/contacts/export", {"contacts": contacts})

    def campaign_prepare(self, campaign_id: str, type: CampaignType, contacts: list[str]) -> None:
        self._call(
            "POST",
            f"/campaigns/{quote(campaign_id, safe='')}/prepare",
            {"type": str(type), "contacts": contacts},
        )

    def campaign_create(self, request: CampaignRequest) -> str:
        payload = {
            "campaignId": request.campaign_id,
            "name": request.name,
            "type": str(request.type),
            "subject": request.subject,
            "html": request.html,
            "text": request.text,
            "fromName": request.from_name,
            "fromEmail": request.from_email,
            "templateId": request.template_external_id,
            "sendAt": request.send_at.isoformat() if request.send_at else None,
        }
        return self._id(self._call("POST", "/campaigns", payload), "POST /campaigns")

    def messenger_campaign_create(self, request: CampaignRequest) -> str:
        payload = {
            "campaignId": request.campaign_id,
            "name": request.name,
            "type": str(request.type),
            "text": request.text,
            "botId": request.bot_id or str(self.setting("bot_id") or ""),
            "messengerType": request.messenger_type or str(self.setting("messenger_type") or ""),
        }
        answer = self._call("POST", "/messenger-campaigns", payload)
        return self._id(answer, "POST /messenger-campaigns")

    def campaign_stats(self, external_id: str) -> CampaignStats:
        answer = self._call("GET", f"/campaigns/{quote(external_id, safe='')}/stats")
        if not isinstance(answer, dict):
            raise ProviderError("GET /campaigns/{id}/stats: not an object", permanent=True)
        try:
            return CampaignStats.from_dict(answer)
        except ValueError as exc:
            raise ProviderError(f"GET /campaigns/{{id}}/stats: {exc}", permanent=True) from None

    def messenger_types(self) -> list[str]:
        answer = self._call("GET", "/messenger-types")
        if not isinstance(answer, list):
            raise ProviderError("GET /messenger-types: not a list", permanent=True)
        return [str(item) for item in answer]

    def messenger_bots(self) -> list[MessengerBot]:
        answer = self._call("GET", "/messenger-bots")
        if not isinstance(answer, list):
            raise ProviderError("GET /messenger-bots: not a list", permanent=True)
        return [
            MessengerBot(
                id=str(item.get("id", "")),
                name=str(item.get("name", "")),
                messenger_type=str(item.get("messengerType", "")),
                link=str(item.get("link", "")),
            )
            for item in answer
            if isinstance(item, dict)
        ]

    # Webhooks --------------------------------------------------------------------------

    def webhook_authenticate(self, call: WebhookCall) -> None:
        secret = str(self.setting("webhook_secret") or "")
        if not secret:
            raise WebhookRefused("no webhook secret is configured for this integration")
        stamp = call.header(TIMESTAMP_HEADER)
        if not stamp:
            raise WebhookRefused(f"missing {TIMESTAMP_HEADER} header")
        timestamp_check(stamp, call)
        given = call.header(SIGNATURE_HEADER).strip()
        expected = hmac_hex(secret, f"{stamp}.".encode() + call.body)
        if not given or not secret_equal(given, expected):
            raise WebhookRefused("wrong or missing webhook signature")
        nonce_check(self.integration, f"sig:{given}", call)

    def webhook_parse(self, call: WebhookCall) -> WebhookResult:
        try:
            data = call.json()
        except (ValueError, UnicodeDecodeError) as exc:
            raise WebhookMalformed(f"the body is not JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("actions"), list):
            raise WebhookMalformed('the body must be {"actions": [...]}')
        actions = []
        for index, item in enumerate(data["actions"]):
            try:
                actions.append(action_parse(item))
            except (KeyError, TypeError, ValueError) as exc:
                raise WebhookMalformed(f"action {index}: {exc}") from None
        return WebhookResult(actions=actions)


def _text(item: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = item.get(name)
    if value in (None, ""):
        if required:
            raise ValueError(f"{name} is required")
        return ""
    if not isinstance(value, str | int):
        raise ValueError(f"{name} must be a string")
    return str(value)


def _at(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _contact_id(value: Any) -> int | None:
    """A Herald contact id as the service echoes it (a number, or digits in a string)."""
    if value in (None, ""):
        return None
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not (text.isascii() and text.isdigit() and 0 < int(text) < 2**63):
        raise ValueError("contactId must be a Herald contact id (a positive integer)")
    return int(text)


def action_parse(item: Any) -> Action:
    """One action of the service's webhook body. Raises KeyError/TypeError/ValueError."""
    if not isinstance(item, dict):
        raise TypeError("not an object")
    kind = item.get("type")
    if kind == "UpdateDeliveryStatus":
        action = UpdateDeliveryStatus(
            status=DeliveryStatus(_text(item, "status", required=True)),
            email=_text(item, "email"),
            external_id=_text(item, "externalId"),
            contact_id=_contact_id(item.get("contactId")),
            message_id=_text(item, "messageId"),
            herald_id=_text(item, "heraldId"),
            event_id=_text(item, "eventId"),
            detail=_text(item, "detail"),
            url=_text(item, "url"),
            at=_at(item.get("at")),
        )
        by_recipient = action.email or action.contact_id is not None
        if not (action.herald_id or action.message_id or (action.external_id and by_recipient)):
            raise ValueError(
                "name the message: heraldId, messageId, or externalId with email or contactId"
            )
        return action
    if kind == "Unsubscribe":
        return Unsubscribe(
            email=_text(item, "email", required=True),
            external_id=_text(item, "externalId"),
            all=bool(item.get("all", not item.get("externalId"))),
            reason=_text(item, "reason"),
        )
    if kind == "UpdateCampaign":
        return UpdateCampaign(
            external_id=_text(item, "externalId", required=True),
            status=CampaignStatus(_text(item, "status", required=True)),
        )
    if kind == "UpdateCampaignStats":
        stats = item.get("stats")
        if not isinstance(stats, dict):
            raise TypeError("stats must be an object")
        return UpdateCampaignStats(
            external_id=_text(item, "externalId", required=True),
            stats=CampaignStats.from_dict(stats),
        )
    if kind == "SendEmail":
        return SendEmail(
            to=_text(item, "to", required=True),
            subject=_text(item, "subject", required=True),
            html=_text(item, "html"),
            text=_text(item, "text"),
            from_email=_text(item, "fromEmail"),
            from_name=_text(item, "fromName"),
        )
    raise ValueError(f"unknown action type {kind!r}")

"""Viber through its REST bot API (https://chatapi.viber.com/pa/): a bot account sends
campaigns and single messages to the Viber users who subscribed to it, and its webhook keeps
contacts' Viber ids current.

- Connecting (`connection_test`): get_account_info names the bot account, then set_webhook
  points Viber at the integration's webhook URL. Every call carries the account's auth token
  in the X-Viber-Auth-Token header.
- A contact's Viber channel is {"type": "viber", "value": "<Viber user id>"} in
  Contact.extra_channels, as a messenger chat is for Telegram: written through the contacts
  API (`channels`), or by the webhook when a person opens the subscribe link
  `viber://pa?chatURI=<account uri>&context=<payload>` (the same signed payload as
  Telegram's deep link, bound to the integration) and Viber reports `conversation_started`
  with that context, or `subscribed`.
- Sending (`ViberSender`): send_message with the delivery's locator (the Viber user id) as
  `receiver`, type text and `sender: {name}` (the request's sender name, else the
  integration's). Viber answers HTTP 200 with the outcome in the JSON body's `status`: 0 is
  accepted (its `message_token` is the provider id); a user who is not subscribed or not on
  Viber (6, 5) fails permanently and leaves the contact; 12 (too many requests) is throttled
  and retried; account-level refusals (bad token, blocked or suspended account) fail the rest
  of the batch with Viber's words rather than repeating the refusal per row.
- Leaving: an `unsubscribed` callback removes the Viber id from its contact.
- Delivery reports: `delivered`, `seen` (read: the ledger's opened) and `failed` (with Viber's
  `desc`) move the message found by its `message_token` (the delivery's provider id) through
  the ledger, each report once.

Webhook callbacks are signed: X-Viber-Content-Signature is the hex HMAC-SHA256 of the body
with the auth token; anything else is refused with 401 and changes nothing. Other callbacks
(message, …) are answered 200 and change nothing.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from campaigns.delivery.content import SendContent
from campaigns.delivery.feedback import Action, UpdateDeliveryStatus, WebhookResult
from campaigns.delivery.providers import (
    DeliveryStatus,
    MessengerBot,
    Provider,
    ProviderError,
    SettingField,
    WebhookCall,
    WebhookRefused,
    provider_register,
)
from campaigns.delivery.senders import Message, Outcome, Sender, accepted, permanent, transient
from contacts.models import ChannelType, CustomField
from integrations.providers.outbound import provider_urlopen
from integrations.providers.telegram import (
    messenger_chat_subscribe,
    messenger_chats_forget,
    messenger_recipients_gone,
    subscribe_payload_contact,
)
from integrations.webhook_auth import hmac_hex, secret_equal, timestamp_check
from integrations.webhooks import WebhookMalformed

logger = logging.getLogger(__name__)

VIBER = ChannelType.VIBER.value
DEFAULT_API_URL = "https://chatapi.viber.com/pa"
TOKEN_HEADER = "X-Viber-Auth-Token"  # noqa: S105 (a header name)
SIGNATURE_HEADER = "X-Viber-Content-Signature"
# send_message refuses longer texts; the sender's name is cut by Viber at 28 characters.
TEXT_MAX = 7000
SENDER_NAME_MAX = 28
# Seconds to wait for one call; a send that times out is retried by the engine.
TIMEOUT = 10.0
# The callbacks set_webhook asks for (subscribed, unsubscribed and conversation_started are
# always sent).
EVENT_TYPES = [
    "delivered",
    "seen",
    "failed",
    "subscribed",
    "unsubscribed",
    "conversation_started",
]
# Delivery report callbacks and the ledger status each means.
REPORTS = {
    "delivered": DeliveryStatus.DELIVERED,
    "seen": DeliveryStatus.OPENED,
    "failed": DeliveryStatus.FAILED,
}


def _report(callback: dict[str, Any], status: DeliveryStatus) -> list[Action]:
    """A delivery report as a ledger action; none without the message's token."""
    token = callback.get("message_token")
    if not isinstance(token, int | str) or isinstance(token, bool) or not str(token).strip():
        return []
    timestamp = callback.get("timestamp")
    at = None
    if isinstance(timestamp, int | float) and not isinstance(timestamp, bool):
        at = datetime.fromtimestamp(timestamp / 1000, tz=UTC)
    return [
        UpdateDeliveryStatus(
            status=status,
            message_id=str(token),
            # Viber repeats a callback it got no 200 for: one report per message and event.
            event_id=f"viber:{token}:{callback['event']}",
            detail=str(callback.get("desc") or "")[:500],
            at=at,
        )
    ]


# Viber's status codes (the `status` of every answer), as its REST API documents them.
OK = 0
RECEIVER_NOT_REGISTERED = 5
NOT_SUBSCRIBED = 6
TOO_MANY_REQUESTS = 12
# The receiver cannot be messaged by this account: its contact leaves the channel.
GONE = frozenset({RECEIVER_NOT_REGISTERED, NOT_SUBSCRIBED})
# Refusals of the message itself or its receiver: permanent for that row only.
ROW_REFUSALS = frozenset({3, 4, RECEIVER_NOT_REGISTERED, NOT_SUBSCRIBED, 11, 13, 14})
# Refusals of the account (bad token, blocked, not found, suspended, not authorised, no
# balance): every other row of the batch would meet the same answer.
ACCOUNT_REFUSALS = frozenset({1, 2, 7, 8, 9, 15, 19, 20, 21, 23, 24})


class ViberAPIError(ProviderError):
    """Viber refused a call: `code` is its status code (0 when it could not be reached or
    did not answer in JSON), `message` its status_message."""

    def __init__(self, code: int, message: str, *, http_status: int = 200) -> None:
        self.code = code
        self.message = message
        transient_error = (
            code == TOO_MANY_REQUESTS
            or (code == 0 and (http_status >= 500 or http_status in (0, 408, 429)))
            or (code not in ROW_REFUSALS and code not in ACCOUNT_REFUSALS and code != 0)
        )
        super().__init__(
            f"Viber {code}: {message}" if code else message,
            permanent=not transient_error,
            throttled=code == TOO_MANY_REQUESTS or http_status == 429,
        )


class ViberAPI:
    """The REST bot API: POST <base>/<method> with a JSON body and the X-Viber-Auth-Token
    header; every answer is a JSON object with `status` (0 = ok) and `status_message`."""

    def __init__(self, base_url: str, token: str, timeout: float = TIMEOUT) -> None:
        self.base_url = (base_url or DEFAULT_API_URL).rstrip("/")
        self.token = token
        self.timeout = timeout

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        if not self.token:
            raise ViberAPIError(2, "no auth token is configured")
        request = urllib.request.Request(  # noqa: S310 (the base URL is the admin's setting)
            f"{self.base_url}/{method}",
            data=json.dumps(params or {}).encode(),
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                TOKEN_HEADER: self.token,
            },
            method="POST",
        )
        try:
            with provider_urlopen(request, timeout=self.timeout) as response:
                raw, status = response.read(), response.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise ViberAPIError(0, f"Viber API unreachable: {reason}", http_status=0) from None
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("status"), int):
            # A proxy's error page, not Viber: judged by the HTTP status alone.
            raise ViberAPIError(
                0,
                f"HTTP {status} without a Viber answer",
                http_status=status if status >= 400 else 502,
            )
        if answer["status"] != OK:
            raise ViberAPIError(
                answer["status"], str(answer.get("status_message") or "error"), http_status=status
            )
        return answer


class ViberSender(Sender):
    """send_message per delivery (see the module's docstring for how answers are judged)."""

    channels = frozenset({VIBER})

    def __init__(
        self, provider: ViberProvider, content: SendContent, custom_fields: list[CustomField]
    ) -> None:
        super().__init__(content, custom_fields)
        self.api = provider.api()
        self.name = provider.name
        self.sender_name = (
            content.from_name
            or (content.template_version.from_name if content.template_version else "")
            or provider.setting("sender_name", "")
        )[:SENDER_NAME_MAX]

    def send(self, batch: list[Message]) -> dict[int, Outcome]:
        outcomes: dict[int, Outcome] = {}
        gone: dict[str, int | None] = {}
        for position, message in enumerate(batch):
            delivery = message.delivery
            text = message.rendered.text
            if not text.strip():
                outcomes[delivery.pk] = permanent("the message text is empty for this recipient")
                continue
            params = {
                "receiver": delivery.locator,
                "type": "text",
                "text": text[:TEXT_MAX],
                "sender": {"name": self.sender_name},
                "tracking_data": str(delivery.request_id or delivery.pk),
            }
            try:
                answer = self.api.call("send_message", params)
            except ViberAPIError as exc:
                reason = str(exc)
                unreachable = exc.code == 0 and not exc.permanent
                if exc.throttled or unreachable or exc.code in ACCOUNT_REFUSALS:
                    # The same answer awaits the rest: throttled rows and rows Viber could
                    # not be reached for wait for a retry (not a timeout each), an account
                    # refusal fails them with Viber's words.
                    for rest in batch[position:]:
                        outcomes[rest.delivery.pk] = (
                            transient(reason, throttled=exc.throttled)
                            if not exc.permanent
                            else permanent(reason)
                        )
                    break
                if exc.code in GONE:
                    gone[delivery.locator] = delivery.contact_id
                outcomes[delivery.pk] = permanent(reason) if exc.permanent else transient(reason)
                continue
            outcomes[delivery.pk] = accepted(str(answer.get("message_token", "")))
        messenger_recipients_gone(channel=VIBER, gone=gone)
        return outcomes


@provider_register
class ViberProvider(Provider):
    """A Viber bot account: sends to subscribed users row by row (it takes no whole
    campaigns) and keeps contacts' Viber ids current from its webhook."""

    kind = "viber"
    label = "Viber bot"
    channels = frozenset({VIBER})
    fields = (
        SettingField(
            "auth_token",
            "Auth token",
            secret=True,
            help="The bot account's token from the Viber Admin Panel (partners.viber.com).",
        ),
        SettingField(
            "sender_name",
            "Sender name",
            help=f"The name shown above each message (at most {SENDER_NAME_MAX} characters).",
        ),
        SettingField(
            "api_url",
            "Viber API URL",
            kind="url",
            required=False,
            default=DEFAULT_API_URL,
            help="Viber's, unless a proxy stands in between.",
        ),
    )

    def api(self) -> ViberAPI:
        return ViberAPI(self.setting("api_url", DEFAULT_API_URL), self.setting("auth_token", ""))

    def webhook_url(self) -> str:
        return f"{settings.HERALD_BASE_URL}/webhooks/{self.integration.webhook_key}/"

    def account_info(self) -> dict[str, Any]:
        return self.api().call("get_account_info")

    def connection_test(self) -> str:
        info = self.account_info()
        settings_now = dict(self.integration.settings or {})
        settings_now.update(account_id=info.get("id", ""), account_uri=info.get("uri", ""))
        self.integration.settings = settings_now
        self.settings = dict(settings_now)
        self.integration.save(update_fields=["settings", "updated_at"])
        url = self.webhook_url()
        self.api().call("set_webhook", {"url": url, "event_types": EVENT_TYPES})
        return f"Connected as {info.get('name') or info.get('uri')}; Viber sends callbacks to {url}"

    def sender(self, content: SendContent, custom_fields: list[CustomField]) -> Sender:
        if not self.setting("auth_token", ""):
            raise ProviderError("the Viber integration has no auth token", permanent=True)
        return ViberSender(self, content, custom_fields)

    def messenger_types(self) -> list[str]:
        return [VIBER]

    def messenger_bots(self) -> list[MessengerBot]:
        info = self.account_info()
        uri = str(info.get("uri", ""))
        return [
            MessengerBot(
                id=str(info.get("id", "")),
                name=str(info.get("name") or uri),
                messenger_type=VIBER,
                link=f"viber://pa?chatURI={uri}" if uri else "",
            )
        ]

    # Webhook ------------------------------------------------------------------------------

    def webhook_authenticate(self, call: WebhookCall) -> None:
        token = self.setting("auth_token", "")
        expected = hmac_hex(token, call.body) if token else ""
        if not secret_equal(call.header(SIGNATURE_HEADER).lower(), expected):
            raise WebhookRefused(f"wrong or missing {SIGNATURE_HEADER}")
        # The signature covers the body only, so a captured callback stays valid for ever; its
        # own timestamp (milliseconds) bounds a replay (a stale "subscribed" would link the chat
        # again) to the replay window. Viber repeats a callback with the same body, so no nonce:
        # a repeat inside the window is applied once by the ledger.
        try:
            stamp = call.json().get("timestamp")
        except (ValueError, AttributeError):
            stamp = None
        if not isinstance(stamp, int | float) or isinstance(stamp, bool):
            raise WebhookRefused("the callback has no timestamp")
        timestamp_check(stamp / 1000, call)

    def webhook_parse(self, call: WebhookCall) -> WebhookResult:
        try:
            callback = call.json()
        except ValueError:
            raise WebhookMalformed("the callback is not JSON") from None
        if not isinstance(callback, dict) or not isinstance(callback.get("event"), str):
            raise WebhookMalformed("the callback has no event")
        event = callback["event"]
        if event in REPORTS:
            return WebhookResult(actions=_report(callback, REPORTS[event]))
        if event == "unsubscribed" and callback.get("user_id"):
            messenger_chats_forget(channel=VIBER, chat_ids=[str(callback["user_id"])])
        elif event in ("conversation_started", "subscribed"):
            user = callback.get("user")
            context = callback.get("context")
            if isinstance(user, dict) and user.get("id") and isinstance(context, str):
                self._subscribe(str(user["id"]), context)
        return WebhookResult()

    def _subscribe(self, user_id: str, payload: str) -> None:
        contact = subscribe_payload_contact(self.integration, payload)
        if contact is not None:
            messenger_chat_subscribe(channel=VIBER, contact=contact, chat_id=user_id)

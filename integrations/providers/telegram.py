"""Telegram through the Bot API: a bot sends campaigns and single messages to the chats of
contacts who subscribed with the bot's deep link, and its webhook keeps those chats current.

- Connecting (`connection_test`): getMe names the bot, then setWebhook points Telegram at the
  integration's webhook URL with a secret token Telegram repeats in every update
  (X-Telegram-Bot-Api-Secret-Token).
- Subscribing: `telegram_subscribe_link` gives https://t.me/<bot>?start=<payload>; the payload
  is a signed token naming the contact. Telegram sends "/start <payload>" when the person
  opens the link and presses Start, and the contact's telegram channel
  ({"type": "telegram", "value": "<chat id>"} in Contact.extra_channels) becomes that chat.
- Sending (`TelegramSender`): sendMessage to the delivery's locator (the chat id). A chat that
  blocked the bot (403) fails permanently and leaves the contact, so it is not messaged again.
- Leaving: "/stop", or blocking the bot (a my_chat_member update with status "kicked"),
  removes the chat from its contact.

Decisions:
- A Telegram update is not a delivery status: there is no feedback action for "this chat
  belongs to that contact". The webhook parser therefore applies subscribe and leave itself,
  in one transaction with a WebhookNonce row "telegram-update:<update_id>", so an update
  delivered twice (Telegram redelivers within minutes) changes nothing the second time.
  Nonces are forgotten after the replay window (the integrations.webhook_nonces_forget beat
  task): a replay from admin later than that applies the update again, as asked. The reply
  to the person is the webhook's answer (the Bot API lets a webhook answer with a method
  call), so it costs no request of its own. Every update is answered 200: Telegram would
  otherwise send it again and again.
- A chat belongs to one contact: subscribing a chat moves it from any other contact, so one
  person never gets a campaign twice; a contact has one telegram chat (the newest).
- Subscribe payloads do not expire (the link sits in old emails) and are bound to the
  integration (a link of one bot does not subscribe through another).
"""

# Table and column names below come from the models; every value goes through parameters.
# ruff: noqa: S608

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils.crypto import constant_time_compare, salted_hmac

from campaigns.delivery.content import SendContent
from campaigns.delivery.feedback import WebhookResponse, WebhookResult
from campaigns.delivery.providers import (
    MessengerBot,
    Provider,
    ProviderError,
    SettingField,
    WebhookCall,
    WebhookRefused,
    provider_register,
)
from campaigns.delivery.senders import Message, Outcome, Sender, accepted, permanent, transient
from config.core.models import Integration, Organisation
from config.core.secrets import secrets_seal, secrets_stored
from contacts.models import ChannelType, Contact, CustomField
from integrations.models import WebhookNonce
from integrations.providers.outbound import provider_urlopen
from integrations.webhook_auth import secret_equal
from integrations.webhooks import WebhookMalformed

logger = logging.getLogger(__name__)

TELEGRAM = ChannelType.TELEGRAM.value
DEFAULT_API_URL = "https://api.telegram.org"
# sendMessage refuses longer texts ("message is too long").
TEXT_MAX = 4096
# Seconds to wait for one Bot API call; a send that times out is retried by the engine.
TIMEOUT = 10.0
# The updates the webhook asks for: messages (/start, /stop) and the bot's own membership in
# a chat (blocked, kicked).
ALLOWED_UPDATES = ["message", "my_chat_member"]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
# Statuses of the bot in a chat (ChatMember) that mean it can no longer write there.
GONE_STATUSES = frozenset({"kicked", "left"})

SUBSCRIBED_TEXT = "You are subscribed to messages from {organisation}. Send /stop to unsubscribe."
UNSUBSCRIBED_TEXT = "You are unsubscribed and will get no more messages from {organisation}."
INVALID_LINK_TEXT = (
    "Sorry, this subscribe link is not valid (any more). Please open the link from our "
    "latest message again."
)
START_HINT_TEXT = "To subscribe, please open the subscribe link from our email or website."


# --- the Bot API client --------------------------------------------------------------------


class BotAPIError(ProviderError):
    """The Bot API refused a call: `code` (error_code, the HTTP status) and `description` as
    Telegram wrote them; `retry_after` (seconds) when it throttled."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        self.code = code
        self.description = description
        self.retry_after = retry_after
        throttled = code == 429
        transient = code == 0 or code >= 500 or code in (408, 429)
        super().__init__(description, permanent=not transient, throttled=throttled)


class BotAPI:
    """The Bot API's HTTP interface: POST <base>/bot<token>/<method> with a JSON body; every
    answer is {"ok": true, "result": …} or {"ok": false, "error_code", "description",
    "parameters"}. The token is in the URL, so no URL ever goes into an error message."""

    def __init__(self, base_url: str, token: str, timeout: float = TIMEOUT) -> None:
        self.base_url = (base_url or DEFAULT_API_URL).rstrip("/")
        self.token = token
        self.timeout = timeout

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        if not self.token:
            raise BotAPIError(401, "no bot token is configured")
        request = urllib.request.Request(  # noqa: S310 (the base URL is the admin's setting)
            f"{self.base_url}/bot{self.token}/{method}",
            data=json.dumps(params or {}).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            method="POST",
        )
        try:
            with provider_urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise BotAPIError(0, f"Telegram Bot API unreachable: {reason}") from None
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            # A proxy's error page, not Telegram: judged by the HTTP status alone.
            code = status if status >= 400 else 502
            raise BotAPIError(code, f"HTTP {status} without a Bot API answer")
        if answer.get("ok") is True:
            return answer.get("result")
        code = answer.get("error_code")
        code = code if isinstance(code, int) else status
        parameters = answer.get("parameters")
        retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
        raise BotAPIError(
            code,
            str(answer.get("description") or f"error {code}"),
            retry_after if isinstance(retry_after, int) else None,
        )


# --- contacts' telegram chats --------------------------------------------------------------


def messenger_chats_forget(
    *, channel: str, chat_ids: list[str], contact_ids: list[int] | None = None
) -> int:
    """Remove these chats of a messenger channel (telegram, viber) from the contacts holding
    them (only from `contact_ids` when given: the recipients a send just learned about);
    return the contacts changed. Without contact ids it reads every contact's channels:
    webhooks only, one chat at a time."""
    if not chat_ids:
        return 0
    # Containment (@>) finds the holders: the one test a GIN index on extra_channels serves.
    entries = [json.dumps([{"type": channel, "value": chat}]) for chat in chat_ids]
    params: list[Any] = [channel, chat_ids, entries]
    where = "extra_channels @> ANY(%s::jsonb[])"
    if contact_ids is not None:
        where += " AND id = ANY(%s)"
        params.append(contact_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {Contact._meta.db_table}
                   SET extra_channels = COALESCE(
                         (SELECT jsonb_agg(x.e ORDER BY x.n)
                            FROM jsonb_array_elements(extra_channels) WITH ORDINALITY x(e, n)
                           WHERE NOT (x.e->>'type' = %s AND x.e->>'value' = ANY(%s))),
                         '[]'::jsonb),
                       updated_at = now()
                 WHERE {where}""",
            params,
        )
        return cursor.rowcount


def messenger_recipients_gone(*, channel: str, gone: dict[str, int | None]) -> None:
    """After a send: the chats that refused the bot for good ({chat: its delivery's contact})
    leave their contacts, so the next campaign does not try them again."""
    if not gone:
        return
    contact_ids = [pk for pk in gone.values() if pk is not None]
    changed = messenger_chats_forget(
        channel=channel,
        chat_ids=list(gone),
        # Rows without a contact (a chat messaged by id) would be missed by the contact ids.
        contact_ids=contact_ids if len(contact_ids) == len(gone) else None,
    )
    logger.info("%s: %s chats refused the bot; %s contacts left", channel, len(gone), changed)


def telegram_chats_forget(*, chat_ids: list[str], contact_ids: list[int] | None = None) -> int:
    """Remove these telegram chats from the contacts holding them (messenger_chats_forget)."""
    return messenger_chats_forget(channel=TELEGRAM, chat_ids=chat_ids, contact_ids=contact_ids)


@transaction.atomic
def messenger_chat_subscribe(*, channel: str, contact: Contact, chat_id: str) -> None:
    """Make `chat_id` the contact's chat on a messenger channel: it replaces the contact's
    older chat there and leaves any other contact that held it."""
    messenger_chats_forget(channel=channel, chat_ids=[chat_id])
    contact.refresh_from_db(fields=["extra_channels"])
    kept = [
        entry
        for entry in contact.extra_channels or []
        if not (isinstance(entry, dict) and entry.get("type") == channel)
    ]
    contact.extra_channels = [*kept, {"type": channel, "value": chat_id}]
    contact.save(update_fields=["extra_channels", "updated_at"])


def telegram_chat_subscribe(*, contact: Contact, chat_id: str) -> None:
    """Make `chat_id` the contact's telegram channel (messenger_chat_subscribe)."""
    messenger_chat_subscribe(channel=TELEGRAM, contact=contact, chat_id=chat_id)


# --- subscribe links -----------------------------------------------------------------------

_SALT = "herald.integrations.telegram.subscribe"
_SIG_CHARS = 22  # 16 bytes of HMAC-SHA256, url-safe base64 without padding
_PAYLOAD_RE = re.compile(rf"([0-9a-z]{{1,13}})_([A-Za-z0-9_-]{{{_SIG_CHARS}}})")


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def _signature(integration_id: int, contact_id: int, secret: str | bytes | None) -> str:
    mac = salted_hmac(_SALT, f"{integration_id}:{contact_id}", secret=secret, algorithm="sha256")
    return base64.urlsafe_b64encode(mac.digest()[:16]).decode().rstrip("=")


def subscribe_payload_make(integration: Integration, contact_id: int) -> str:
    """The /start payload naming a contact: `<id in base36>_<signature>`, at most 36 of the
    characters Telegram allows there (A-Z a-z 0-9 _ -; 64 at most)."""
    return f"{_base36(contact_id)}_{_signature(integration.pk, contact_id, settings.SECRET_KEY)}"


def subscribe_payload_check(integration: Integration, payload: str) -> int | None:
    """The contact id a payload was made for, or None when it is garbled or forged."""
    match = _PAYLOAD_RE.fullmatch(payload or "")
    if match is None:
        return None
    contact_id = int(match.group(1), 36)
    for secret in (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())):
        if constant_time_compare(match.group(2), _signature(integration.pk, contact_id, secret)):
            return contact_id
    return None


def subscribe_payload_contact(integration: Integration, payload: str) -> Contact | None:
    """The live contact a subscribe payload names, or None (garbled, forged, gone)."""
    contact_id = subscribe_payload_check(integration, payload)
    if contact_id is None:
        return None
    return Contact.objects.alive().filter(pk=contact_id).first()


def telegram_subscribe_link(integration: Integration, contact: Contact) -> str:
    """https://t.me/<bot>?start=<payload>: opening it and pressing Start subscribes the
    contact's Telegram chat. Raises ProviderError when the bot's username is unknown and the
    Bot API cannot tell it."""
    username = TelegramProvider(integration).bot_username()
    return f"https://t.me/{username}?start={subscribe_payload_make(integration, contact.pk)}"


# --- the sender ----------------------------------------------------------------------------


class TelegramSender(Sender):
    """sendMessage per delivery. Throttled (429): this and the rest of the batch wait for a
    retry. A chat the bot cannot write to any more (403: blocked, deactivated, kicked) fails
    and leaves its contact; a chat Telegram does not know (400) fails."""

    channels = frozenset({TELEGRAM})

    def __init__(
        self, provider: TelegramProvider, content: SendContent, custom_fields: list[CustomField]
    ) -> None:
        super().__init__(content, custom_fields)
        self.api = provider.api()
        self.name = provider.name
        self.parse_mode = provider.setting("parse_mode", "") or ""

    def send(self, batch: list[Message]) -> dict[int, Outcome]:
        outcomes: dict[int, Outcome] = {}
        gone: dict[str, int | None] = {}
        for position, message in enumerate(batch):
            delivery = message.delivery
            text = message.rendered.text
            if not text.strip():
                outcomes[delivery.pk] = permanent("the message text is empty for this recipient")
                continue
            params: dict[str, Any] = {"chat_id": delivery.locator, "text": text[:TEXT_MAX]}
            if self.parse_mode:
                params["parse_mode"] = self.parse_mode
            try:
                sent = self.api.call("sendMessage", params)
            except BotAPIError as exc:
                reason = f"Telegram {exc.code}: {exc.description}" if exc.code else exc.description
                if exc.throttled:
                    # Telegram asks for a pause: sending the rest now would only be refused.
                    for rest in batch[position:]:
                        outcomes[rest.delivery.pk] = transient(reason, throttled=True)
                    break
                if exc.code == 403:
                    gone[delivery.locator] = delivery.contact_id
                outcomes[delivery.pk] = permanent(reason) if exc.permanent else transient(reason)
                continue
            message_id = sent.get("message_id", "") if isinstance(sent, dict) else ""
            outcomes[delivery.pk] = accepted(f"{delivery.locator}:{message_id}")
        messenger_recipients_gone(channel=TELEGRAM, gone=gone)
        return outcomes


# --- the provider --------------------------------------------------------------------------


def _answer(chat_id: Any, text: str) -> WebhookResponse:
    """A webhook answer that is itself a Bot API call: Telegram sends the message."""
    body = {"method": "sendMessage", "chat_id": chat_id, "text": text}
    return WebhookResponse(
        status=200, body=json.dumps(body).encode(), content_type="application/json"
    )


@provider_register
class TelegramProvider(Provider):
    """A Telegram bot: sends to subscribed chats row by row (it takes no whole campaigns),
    keeps contacts' chats current from its webhook, and lists itself as the messenger
    contract's one bot."""

    kind = "telegram"
    label = "Telegram bot"
    channels = frozenset({TELEGRAM})
    fields = (
        SettingField(
            "bot_token",
            "Bot token",
            secret=True,
            help="From @BotFather: 123456:ABC-DEF…",
        ),
        SettingField(
            "api_url",
            "Bot API URL",
            kind="url",
            required=False,
            default=DEFAULT_API_URL,
            help="Telegram's, or your own Bot API server's.",
        ),
        SettingField(
            "webhook_secret",
            "Webhook secret token",
            secret=True,
            required=False,
            help="Telegram repeats it in every update; generated when left empty.",
        ),
        SettingField(
            "parse_mode",
            "Message formatting",
            kind="choice",
            required=False,
            choices=(("", "Plain text"), ("HTML", "Telegram HTML")),
            default="",
        ),
    )

    def api(self) -> BotAPI:
        return BotAPI(self.setting("api_url", DEFAULT_API_URL), self.setting("bot_token", ""))

    # Connecting ---------------------------------------------------------------------------

    def webhook_url(self) -> str:
        return f"{settings.HERALD_BASE_URL}/webhooks/{self.integration.webhook_key}/"

    def webhook_secret_ensure(self) -> str:
        """The webhook secret token, generated and sealed with the other secrets when empty
        (Telegram allows 1-256 of A-Z a-z 0-9 _ -, as token_urlsafe writes)."""
        secret = self.setting("webhook_secret", "")
        if secret:
            return secret
        secret = secrets.token_urlsafe(32)
        stored = secrets_stored(self.integration.secrets_sealed)
        stored["webhook_secret"] = secret
        self.integration.secrets_sealed = secrets_seal(stored)
        self.integration.save(update_fields=["secrets_sealed", "updated_at"])
        self._secrets = None
        return secret

    def bot_remember(self, me: dict[str, Any]) -> None:
        """Keep the bot's id and username in the integration's settings (subscribe links)."""
        settings_now = dict(self.integration.settings or {})
        settings_now.update(
            bot_id=me.get("id"),
            bot_username=me.get("username", ""),
            bot_name=me.get("first_name", ""),
        )
        self.integration.settings = settings_now
        self.settings = dict(settings_now)
        self.integration.save(update_fields=["settings", "updated_at"])

    def bot_me(self) -> dict[str, Any]:
        me = self.api().call("getMe")
        if not isinstance(me, dict) or not me.get("username"):
            raise ProviderError("getMe answered without the bot's username", permanent=True)
        return me

    def bot_username(self) -> str:
        """The bot's @username: as stored by the last connection test, else asked now."""
        username = self.settings.get("bot_username")
        if username:
            return str(username)
        me = self.bot_me()
        self.bot_remember(me)
        return str(me["username"])

    def connection_test(self) -> str:
        api = self.api()
        me = self.bot_me()
        self.bot_remember(me)
        url = self.webhook_url()
        api.call(
            "setWebhook",
            {
                "url": url,
                "secret_token": self.webhook_secret_ensure(),
                "allowed_updates": ALLOWED_UPDATES,
            },
        )
        return f"Connected as @{me['username']}; Telegram sends updates to {url}"

    # Sending ------------------------------------------------------------------------------

    def sender(self, content: SendContent, custom_fields: list[CustomField]) -> Sender:
        if not self.setting("bot_token", ""):
            raise ProviderError("the Telegram integration has no bot token", permanent=True)
        return TelegramSender(self, content, custom_fields)

    # The messenger contract ---------------------------------------------------------------

    def messenger_types(self) -> list[str]:
        return [TELEGRAM]

    def messenger_bots(self) -> list[MessengerBot]:
        me = self.bot_me()
        return [
            MessengerBot(
                id=str(me["id"]),
                name=str(me.get("first_name") or me["username"]),
                messenger_type=TELEGRAM,
                link=f"https://t.me/{me['username']}",
            )
        ]

    # Webhook ------------------------------------------------------------------------------

    def webhook_authenticate(self, call: WebhookCall) -> None:
        if not secret_equal(call.header(SECRET_HEADER), self.setting("webhook_secret", "")):
            raise WebhookRefused(f"wrong or missing {SECRET_HEADER}")

    def webhook_parse(self, call: WebhookCall) -> WebhookResult:
        try:
            update = call.json()
        except ValueError:
            raise WebhookMalformed("the update is not JSON", WebhookResponse(status=200)) from None
        update_id = update.get("update_id") if isinstance(update, dict) else None
        if not isinstance(update_id, int):
            raise WebhookMalformed("the update has no update_id", WebhookResponse(status=200))
        with transaction.atomic():
            if not self._update_first(update_id):
                return WebhookResult()
            return WebhookResult(response=self._update_apply(update))

    def _update_first(self, update_id: int) -> bool:
        """Record the update as applied; False when it was before."""
        try:
            with transaction.atomic():
                WebhookNonce.objects.create(
                    integration=self.integration, nonce=f"telegram-update:{update_id}"
                )
        except IntegrityError:
            return False
        return True

    def _update_apply(self, update: dict[str, Any]) -> WebhookResponse | None:
        message = update.get("message")
        if isinstance(message, dict):
            chat = (message.get("chat") or {}).get("id")
            text = message.get("text")
            if chat is None or not isinstance(text, str):
                return None
            command, _, argument = text.strip().partition(" ")
            command, _, addressee = command.lower().partition("@")
            if addressee and addressee != str(self.settings.get("bot_username", "")).lower():
                return None  # "/start@other_bot" in a group is another bot's
            if command == "/start":
                return self._start(str(chat), argument.strip(), chat)
            if command == "/stop":
                telegram_chats_forget(chat_ids=[str(chat)])
                return _answer(chat, UNSUBSCRIBED_TEXT.format(organisation=_organisation()))
            return None
        member = update.get("my_chat_member")
        if isinstance(member, dict):
            chat = (member.get("chat") or {}).get("id")
            status = (member.get("new_chat_member") or {}).get("status")
            if chat is not None and status in GONE_STATUSES:
                telegram_chats_forget(chat_ids=[str(chat)])
        return None

    def _start(self, chat_id: str, payload: str, chat: Any) -> WebhookResponse:
        if not payload:
            return _answer(chat, START_HINT_TEXT)
        contact = subscribe_payload_contact(self.integration, payload)
        if contact is None:
            return _answer(chat, INVALID_LINK_TEXT)
        telegram_chat_subscribe(contact=contact, chat_id=chat_id)
        return _answer(chat, SUBSCRIBED_TEXT.format(organisation=_organisation()))


def _organisation() -> str:
    return Organisation.load().name

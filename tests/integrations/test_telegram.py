"""The Telegram provider against a local Bot API server (tests/support/fake_telegram.py):
connecting a bot, subscribing a contact's chat with the deep link, campaigns to the
subscribed chats, chats that block the bot, throttling, /stop, the webhook's secret token,
the messenger contract, and the subscribe-link endpoint of Herald's own API."""

import datetime as dt
import json
import re
from collections import Counter

import pytest
from django.utils import timezone

from campaigns import lifecycle, pipeline
from campaigns.delivery import engine
from campaigns.delivery.content import SendContent
from campaigns.delivery.providers import ProviderError, provider_of
from campaigns.delivery.senders import Message
from campaigns.models import CampaignRun, Delivery, DeliveryStatus, ProviderRate, RunStatus
from config.core.models import Integration
from config.core.secrets import secrets_seal
from contacts.models import ChannelType, Contact, Suppression
from integrations.models import WebhookRequest
from integrations.providers.telegram import (
    TEXT_MAX,
    subscribe_payload_check,
    subscribe_payload_make,
    telegram_subscribe_link,
)
from templates.services import RenderedMessage, template_create, template_publish
from tests.campaigns.test_pipeline import make_campaign, make_run, send_all
from tests.conftest import wait_for
from tests.contacts.factories import ContactFactory
from tests.support.fake_telegram import FakeTelegram, update_member, update_message
from tests.support.webhooks import post_applied
from tests.support.worker import CeleryWorker

pytestmark = pytest.mark.django_db

WEBHOOK_SECRET = "webhook-Secret_42"
PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")


@pytest.fixture
def bot():
    with FakeTelegram() as fake:
        yield fake


def connect(
    bot: FakeTelegram, *, token: str | None = None, name: str = "Shop bot", **secrets
) -> Integration:
    return Integration.objects.create(
        kind="telegram",
        name=name,
        channels=[ChannelType.TELEGRAM],
        settings={"api_url": bot.url},
        secrets_sealed=secrets_seal({"bot_token": token or bot.token, **secrets}),
    )


@pytest.fixture
def integration(bot):
    return connect(bot, webhook_secret=WEBHOOK_SECRET)


def subscribed(chat: str, **kwargs) -> Contact:
    kwargs.setdefault("tags", ["tg"])
    return ContactFactory(extra_channels=[{"type": "telegram", "value": chat}], **kwargs)


def post_update(client, integration: Integration, update: dict, secret: str | None = None):
    headers = {} if secret == "" else {"X-Telegram-Bot-Api-Secret-Token": secret or WEBHOOK_SECRET}
    return post_applied(
        client,
        f"/webhooks/{integration.webhook_key}/",
        data=json.dumps(update),
        content_type="application/json",
        headers=headers,
    )


def telegram_chats(contact: Contact) -> list[str]:
    contact.refresh_from_db()
    return [e["value"] for e in contact.extra_channels if e["type"] == "telegram"]


def telegram_campaign(tag: str = "tg", **kwargs):
    template = template_create(
        name="Telegram sale", channel=ChannelType.TELEGRAM, sms_text="Hi $!contact.firstName!"
    )
    template_publish(template=template)
    return make_campaign(
        channels=[ChannelType.TELEGRAM],
        template=template,
        audience_filter={"tags": {"$in": [tag]}},
        **kwargs,
    )


# --- connecting ----------------------------------------------------------------------------


def test_connection_test_names_the_bot_and_points_the_webhook_at_herald(bot, settings):
    settings.HERALD_BASE_URL = "https://herald.example.com"
    integration = connect(bot)

    said = provider_of(integration).connection_test()

    assert "@herald_shop_bot" in said
    assert bot.methods() == ["getMe", "setWebhook"]
    assert bot.webhook["url"] == f"https://herald.example.com/webhooks/{integration.webhook_key}/"
    assert bot.webhook["allowed_updates"] == ["message", "my_chat_member"]
    integration.refresh_from_db()
    secret = integration.secrets()["webhook_secret"]
    assert bot.webhook["secret_token"] == secret
    assert re.fullmatch(r"[A-Za-z0-9_-]{32,256}", secret)
    assert integration.settings["bot_username"] == "herald_shop_bot"
    assert integration.settings["bot_id"] == bot.bot_id
    assert secret not in json.dumps(integration.settings)
    # A second test keeps the generated secret (updates in flight still carry it).
    provider_of(integration).connection_test()
    assert bot.webhook["secret_token"] == secret
    integration.refresh_from_db()
    assert integration.secrets()["webhook_secret"] == secret


def test_a_wrong_token_fails_the_connection_test_with_telegrams_message(bot, settings):
    settings.HERALD_BASE_URL = "https://herald.example.com"
    integration = connect(bot, token="999:not-the-token")

    with pytest.raises(ProviderError) as refused:
        provider_of(integration).connection_test()

    assert "Unauthorized" in refused.value.message
    assert refused.value.permanent
    assert "999:not-the-token" not in str(refused.value)
    assert bot.webhook == {}
    integration.refresh_from_db()
    assert "bot_username" not in integration.settings


def test_telegram_refusing_the_webhook_url_fails_the_connection_test_with_its_message(
    bot, settings
):
    settings.HERALD_BASE_URL = "http://127.0.0.1:8000"
    integration = connect(bot)

    with pytest.raises(ProviderError) as refused:
        provider_of(integration).connection_test()

    assert "An HTTPS URL must be provided for webhook" in refused.value.message
    assert bot.webhook == {}


def test_an_unreachable_bot_api_fails_the_connection_test_as_transient(bot):
    integration = connect(bot)
    integration.settings = {"api_url": "http://127.0.0.1:9"}  # nothing listens there
    integration.save()

    with pytest.raises(ProviderError) as refused:
        provider_of(integration).connection_test()

    assert "unreachable" in refused.value.message
    assert not refused.value.permanent
    assert bot.token not in refused.value.message


def test_the_messenger_contract_lists_telegram_and_the_bot_with_its_link(integration):
    provider = provider_of(integration)

    assert provider.messenger_types() == ["telegram"]
    (found,) = provider.messenger_bots()
    assert (found.id, found.name, found.messenger_type, found.link) == (
        "123456",
        "Herald Shop",
        "telegram",
        "https://t.me/herald_shop_bot",
    )


# --- subscribing with the deep link --------------------------------------------------------


def test_the_deep_link_subscribes_the_contact_and_the_bot_answers(client, bot, integration):
    contact = ContactFactory(
        extra_channels=[{"type": "viber", "value": "v-1"}, {"type": "telegram", "value": "old"}]
    )
    link = telegram_subscribe_link(integration, contact)
    assert link.startswith("https://t.me/herald_shop_bot?start=")
    payload = link.partition("?start=")[2]
    assert PAYLOAD.fullmatch(payload)

    response = post_update(client, integration, update_message(700, 5551, f"/start {payload}"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    answer = response.json()
    assert answer["method"] == "sendMessage" and answer["chat_id"] == 5551
    assert answer["text"].startswith("You are subscribed")
    contact.refresh_from_db()
    assert contact.extra_channels == [
        {"type": "viber", "value": "v-1"},
        {"type": "telegram", "value": "5551"},
    ]
    assert WebhookRequest.objects.get().outcome == "applied"


def test_a_chat_subscribed_again_moves_to_the_newer_contact(client, integration):
    before = subscribed("5552")
    after = ContactFactory()

    payload = subscribe_payload_make(integration, after.pk)
    post_update(client, integration, update_message(701, 5552, f"/start {payload}"))

    assert telegram_chats(after) == ["5552"]
    assert telegram_chats(before) == []


def test_forged_garbled_or_foreign_payloads_answer_politely_and_change_nothing(
    client, bot, integration
):
    contact = ContactFactory()
    gone = ContactFactory(deleted_at=timezone.now())
    other_bot = connect(bot, name="Other bot")
    good = subscribe_payload_make(integration, contact.pk)
    forged = good[:-1] + ("A" if good[-1] != "A" else "B")
    payloads = [
        forged,
        "garbage",
        "x" * 64,
        subscribe_payload_make(other_bot, contact.pk),  # a link of another bot
        subscribe_payload_make(integration, gone.pk),
    ]

    for update_id, payload in enumerate(payloads, start=800):
        response = post_update(
            client, integration, update_message(update_id, 5553, f"/start {payload}")
        )
        assert response.status_code == 200
        assert "not valid" in response.json()["text"]

    assert subscribe_payload_check(integration, good) == contact.pk
    assert telegram_chats(contact) == []
    assert not Contact.objects.filter(extra_channels__contains=[{"type": "telegram"}]).exists()


def test_a_start_addressed_to_this_bot_in_a_group_subscribes_the_group(client, integration):
    integration.settings["bot_username"] = "herald_shop_bot"
    integration.save()
    contact = ContactFactory()
    payload = subscribe_payload_make(integration, contact.pk)

    ignored = post_update(
        client, integration, update_message(805, -100, f"/start@other_bot {payload}")
    )
    taken = post_update(
        client, integration, update_message(806, -100, f"/start@Herald_Shop_Bot {payload}")
    )

    assert ignored.status_code == taken.status_code == 200
    assert ignored.content == b""
    assert taken.json()["text"].startswith("You are subscribed")
    assert telegram_chats(contact) == ["-100"]


def test_start_without_a_payload_explains_how_to_subscribe(client, integration):
    response = post_update(client, integration, update_message(810, 5554, "/start"))

    assert response.status_code == 200
    assert "subscribe link" in response.json()["text"]
    assert not Contact.objects.filter(extra_channels__contains=[{"type": "telegram"}]).exists()


# --- leaving -------------------------------------------------------------------------------


def test_stop_unsubscribes_the_chat_and_says_so(client, integration):
    contact = subscribed("5560")

    response = post_update(client, integration, update_message(900, 5560, "/stop"))

    assert response.status_code == 200
    assert "unsubscribed" in response.json()["text"]
    assert telegram_chats(contact) == []


def test_blocking_the_bot_unsubscribes_the_chat(client, integration):
    contact = subscribed("5561")
    kept = subscribed("5562")

    response = post_update(client, integration, update_member(901, 5561, "kicked"))

    assert response.status_code == 200
    assert response.content == b""
    assert telegram_chats(contact) == []
    assert telegram_chats(kept) == ["5562"]


def test_the_same_update_delivered_twice_is_applied_once(client, integration):
    contact = ContactFactory()
    start = update_message(902, 5563, f"/start {subscribe_payload_make(integration, contact.pk)}")
    post_update(client, integration, start)
    post_update(client, integration, update_message(903, 5563, "/stop"))
    assert telegram_chats(contact) == []

    again = post_update(client, integration, start)

    assert again.status_code == 200
    assert again.content == b""  # no second "You are subscribed"
    assert telegram_chats(contact) == []
    assert WebhookRequest.objects.filter(outcome="applied").count() == 3


def test_a_wrong_or_missing_secret_token_is_401_and_changes_nothing(client, integration):
    contact = subscribed("5564")

    wrong = post_update(client, integration, update_message(904, 5564, "/stop"), secret="nope")
    missing = post_update(client, integration, update_message(905, 5564, "/stop"), secret="")

    assert wrong.status_code == missing.status_code == 401
    assert telegram_chats(contact) == ["5564"]
    assert set(WebhookRequest.objects.values_list("outcome", flat=True)) == {"refused"}


def test_an_update_that_is_not_json_is_kept_and_answered_200(client, integration):
    response = client.post(
        f"/webhooks/{integration.webhook_key}/",
        data=b"{not json",
        content_type="application/json",
        headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET},
    )

    assert response.status_code == 200  # Telegram would send it again and again otherwise
    stored = WebhookRequest.objects.get()
    assert stored.outcome == "failed" and "not JSON" in stored.error


# --- campaigns -----------------------------------------------------------------------------


def test_a_campaign_reaches_exactly_the_subscribed_chats(bot, integration):
    ann = subscribed("101", first_name="Ann")
    bob = subscribed("102", first_name="Bob")
    ContactFactory(tags=["tg"], first_name="Cyd")  # email only
    subscribed("104", confirmed=False)
    subscribed("105", deleted_at=timezone.now())
    subscribed("106")
    Suppression.objects.create(channel="telegram", address="106", reason="manual")
    subscribed("107", tags=["other"])
    run = make_run(telegram_campaign())

    assert pipeline.run_materialise(run=run) == 2
    send_all(run)

    assert Counter(m["chat_id"] for m in bot.messages) == {"101": 1, "102": 1}
    assert bot.sent("101") == ["Hi Ann!"] and bot.sent("102") == ["Hi Bob!"]
    rows = {row.contact_id: row for row in Delivery.objects.filter(run=run)}
    assert set(rows) == {ann.pk, bob.pk}
    for row in rows.values():
        assert row.channel == "telegram"
        assert row.status == DeliveryStatus.SENT
        assert row.provider == f"telegram#{integration.pk}"
        assert row.provider_message_id == f"{row.locator}:1"


def test_email_and_sms_audiences_are_unchanged_by_telegram_chats(integration):
    person = subscribed("110", phone="+380501234567")
    run = make_run(
        make_campaign(channels=[ChannelType.EMAIL], audience_filter={"tags": {"$in": ["tg"]}})
    )

    pipeline.run_materialise(run=run)

    assert list(Delivery.objects.filter(run=run).values_list("channel", "locator")) == [
        ("email", person.email)
    ]


def test_a_chat_that_blocked_the_bot_fails_and_leaves_the_contact(bot, integration):
    bot.blocked = {"202"}
    bot.deactivated = {"203"}
    bot.unknown = {"204"}
    fine = subscribed("201")
    blocked = subscribed("202")
    deactivated = subscribed("203")
    unknown = subscribed("204")
    run = make_run(telegram_campaign())
    pipeline.run_materialise(run=run)

    send_all(run)

    rows = {row.locator: row for row in Delivery.objects.filter(run=run)}
    assert rows["201"].status == DeliveryStatus.SENT
    assert rows["202"].status == rows["203"].status == rows["204"].status == DeliveryStatus.FAILED
    assert "bot was blocked by the user" in rows["202"].error
    assert "user is deactivated" in rows["203"].error
    assert "chat not found" in rows["204"].error
    assert telegram_chats(blocked) == telegram_chats(deactivated) == []
    assert telegram_chats(fine) == ["201"] and telegram_chats(unknown) == ["204"]
    # The next campaign does not try them again.
    second = CampaignRun.objects.create(
        campaign=run.campaign, number=2, template_version=run.template_version
    )
    pipeline.run_materialise(run=second)
    assert sorted(Delivery.objects.filter(run=second).values_list("locator", flat=True)) == [
        "201",
        "204",
    ]


def test_a_throttled_send_is_retried_after_a_backoff_and_sent_once(bot, integration, settings):
    settings.HERALD_RETRY_BASE = 1
    bot.throttle = {"301": 1}
    subscribed("301")
    run = make_run(telegram_campaign())
    pipeline.run_materialise(run=run)

    engine_wait = engine.run_send(run_id=run.pk)

    row = Delivery.objects.get(run=run)
    assert row.status == DeliveryStatus.QUEUED and row.next_attempt_at > timezone.now()
    assert "429" in row.error and "retry after" in row.error
    assert engine_wait is not None
    # The bot's answer slowed the integration's shared rate down.
    assert ProviderRate.objects.get(key=f"telegram#{integration.pk}").throttles == 1
    # (The test runs in one transaction, where now() stands still: move the retry back.)
    Delivery.objects.filter(pk=row.pk).update(
        next_attempt_at=timezone.now() - dt.timedelta(minutes=1)
    )
    send_all(run)
    row.refresh_from_db()
    assert row.status == DeliveryStatus.SENT and row.attempts == 2
    assert bot.sent("301") == ["Hi " + row.contact.first_name + "!"]


def test_long_texts_are_cut_to_telegrams_limit_and_an_api_down_or_away_is_transient(
    bot, integration
):
    contact = subscribed("401")
    delivery = Delivery.objects.create(channel="telegram", locator="401", contact=contact)
    provider = provider_of(integration)
    sender = provider.sender(SendContent(), [])

    outcomes = sender.send([Message(delivery, RenderedMessage("", "", "é" * 5000))])

    assert outcomes[delivery.pk].status == "accepted"
    assert bot.sent("401") == ["é" * TEXT_MAX]
    bot.bad_gateway = True
    (outcome,) = sender.send([Message(delivery, RenderedMessage("", "", "hello"))]).values()
    assert outcome.status == "transient" and "502" in outcome.detail
    integration.settings = {"api_url": "http://127.0.0.1:9"}
    down = provider_of(integration).sender(SendContent(), [])
    (outcome,) = down.send([Message(delivery, RenderedMessage("", "", "hello"))]).values()
    assert outcome.status == "transient" and "unreachable" in outcome.detail


# --- the subscribe-link endpoint -----------------------------------------------------------


def link_path(integration_id, contact_id=None) -> str:
    path = f"/api/herald/integrations/{integration_id}/telegram/subscribe-link"
    return path if contact_id is None else f"{path}?contactId={contact_id}"


def test_the_subscribe_link_endpoint_answers_the_link_to_a_full_key_only(
    api, full_key, limited_key, integration, client
):
    contact = ContactFactory()
    path = link_path(integration.pk, contact.pk)

    assert api.get(path).status_code == 401
    refused = api.get(path, key=limited_key)
    assert refused.status_code == 403 and refused.json()["missingRight"] == "manage"
    response = api.get(path, key=full_key)

    assert response.status_code == 200
    body = response.json()
    assert body["link"] == telegram_subscribe_link(integration, contact)
    assert (body["bot"], body["contactId"], body["integrationId"]) == (
        "herald_shop_bot",
        contact.pk,
        integration.pk,
    )
    # The link works: its /start subscribes the contact.
    payload = body["link"].partition("?start=")[2]
    post_update(client, integration, update_message(950, 6001, f"/start {payload}"))
    assert telegram_chats(contact) == ["6001"]


@pytest.mark.parametrize(
    ("contact_id", "status", "field"),
    [(None, 400, "contactId"), ("abc", 400, "contactId"), ("999999", 404, "contactId")],
)
def test_the_subscribe_link_endpoint_names_a_bad_contact_id(
    api, full_key, integration, contact_id, status, field
):
    response = api.get(link_path(integration.pk, contact_id), key=full_key)

    assert response.status_code == status
    assert response.json()["field"] == field


def test_the_subscribe_link_endpoint_refuses_unknown_and_non_telegram_integrations(api, full_key):
    contact = ContactFactory()
    smtp = Integration.objects.create(kind="smtp", name="Mail", channels=["email"])

    unknown = api.get(link_path(987654, contact.pk), key=full_key)
    not_telegram = api.get(link_path(smtp.pk, contact.pk), key=full_key)

    assert unknown.status_code == 404 and unknown.json()["field"] == "id"
    assert not_telegram.status_code == 400 and not_telegram.json()["field"] == "id"
    assert "not Telegram" in not_telegram.json()["detail"]


def test_the_subscribe_link_of_a_bot_never_connected_and_unreachable_is_409(api, full_key, bot):
    integration = connect(bot)
    integration.settings = {"api_url": "http://127.0.0.1:9"}
    integration.save()

    response = api.get(link_path(integration.pk, ContactFactory().pk), key=full_key)

    assert response.status_code == 409
    assert "test the connection first" in response.json()["detail"]
    assert bot.token not in response.content.decode()


# --- with a real worker --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_launched_campaign_is_sent_by_the_worker_to_the_subscribed_chats(bot):
    integration = connect(bot, webhook_secret=WEBHOOK_SECRET)
    people = [subscribed(str(7000 + n)) for n in range(12)]
    ContactFactory(tags=["tg"])
    bot.blocked = {"7003"}

    with CeleryWorker(env={"HERALD_RETRY_BASE": "1"}):
        run = lifecycle.campaign_launch_now(campaign=telegram_campaign(status="draft"))
        run = wait_for(
            lambda: CampaignRun.objects.filter(pk=run.pk, status=RunStatus.COMPLETED).first(),
            timeout=60,
        )

    assert Counter(m["chat_id"] for m in bot.messages) == {
        p.extra_channels[0]["value"]: 1 for p in people if p.extra_channels[0]["value"] != "7003"
    }
    statuses = Counter(Delivery.objects.filter(run=run).values_list("status", flat=True))
    assert statuses == {"sent": 11, "failed": 1}
    assert set(
        Delivery.objects.filter(run=run, status="sent").values_list("provider", flat=True)
    ) == {f"telegram#{integration.pk}"}
    assert telegram_chats(people[3]) == []

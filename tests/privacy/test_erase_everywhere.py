"""Erase means erase: one person goes through every flow that copies their address, phone,
name, external id and chat id (subscribe and confirm, an import with a failing row, edits, a
campaign through a real worker and SMTP server, a Telegram bot subscription and a Telegram
campaign, single messages, SMS, events that start a
workflow issuing a promo code, an order, a provider's bounce webhook, the unsubscribed list),
is erased through the API, and then no column of any table of the database holds any of those
values. The search reads information_schema, so a table added later that copies the address
without an eraser fails this test."""

import json
import re
from urllib.parse import urlsplit

import pytest

from campaigns import lifecycle
from campaigns.models import Campaign, Delivery
from campaigns.promo.models import PromoCode
from campaigns.promo.services import promo_codes_add, promo_pool_create
from config.core.privacy import address_digest
from contacts.models import (
    ChannelType,
    Contact,
    ImportFailure,
    Segment,
    SegmentKind,
    Suppression,
    Unsubscribed,
)
from integrations.providers.telegram import telegram_subscribe_link
from marketing.workflows.models import WorkflowRun
from templates.services import template_create, template_publish
from tests.conftest import wait_for
from tests.integrations.test_esp_webhooks import make_integration, post
from tests.integrations.test_telegram import WEBHOOK_SECRET, connect, post_update
from tests.privacy.support import database_hits
from tests.support.esp_webhook_payloads import basic_header, postmark_bounce
from tests.support.fake_telegram import FakeTelegram, update_message
from tests.support.smtp import SMTPSink
from tests.support.worker import CeleryWorker
from tests.workflows.conftest import chain, make_workflow

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

EMAIL = "zebulonia.qx-7731@erase-me.example"
PHONE = "+380639417265"
FIRST = "Zebulonia"
LAST = "Quixhartley"
EXTERNAL = "crm-ZQX-48213"
CHAT_ID = "7718829461"
# Every value, and the forms a copy may take: the phone without its "+" (a provider's
# payload), the address URL-encoded (a query string).
VALUES = [EMAIL, PHONE, PHONE[1:], FIRST, LAST, EXTERNAL, CHAT_ID, EMAIL.replace("@", "%40")]


@pytest.fixture
def bot():
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def sink_and_worker(transactional_db):
    with SMTPSink() as sink, CeleryWorker(env={"EMAIL_URL": sink.url}) as worker:
        yield sink, worker


def published(name: str, html: str):
    template = template_create(
        name=name, subject=f"{name} for you", from_email="shop@shop.example", html=html
    )
    template_publish(template=template)
    return template


def subscribe_and_confirm(api, key, sink) -> Contact:
    """The double opt-in journey: subscribe through the API, follow the emailed link."""
    body = {
        "contact": {
            "firstName": FIRST,
            "channels": [{"type": "email", "value": EMAIL.upper()}],
        },
        "groups": ["Erasure readers"],
    }
    assert api.post("/api/v1/contact/subscribe", key=key, body=body).status_code == 200
    wait_for(lambda: any(EMAIL in str(m["To"]).lower() for m in sink.messages), timeout=60)
    text = next(m for m in sink.messages if EMAIL in str(m["To"]).lower()).as_string()
    link = re.search(r"https?://[^\s\"<>]*/confirm/[^\s\"<>]+", text.replace("=\n", ""))
    assert link, text
    assert api.client.get(urlsplit(link.group(0)).path).status_code == 200
    contact = Contact.objects.get(email=EMAIL)
    assert contact.confirmed
    return Contact.objects.get(pk=contact.pk)


def import_with_a_failing_row(api, key) -> None:
    """The import (deduplicating on the address) fills in the phone, last name and chat id;
    its second row, naming the person, fails on its phone and is kept as a failure."""
    body = {
        "dedupeOn": "email",
        "contacts": [
            {
                "firstName": FIRST,
                "lastName": LAST,
                "channels": [
                    {"type": "email", "value": EMAIL},
                    {"type": "sms", "value": PHONE},
                    {"type": "telegram", "value": CHAT_ID},
                ],
            },
            {
                "firstName": FIRST,
                "lastName": LAST,
                "channels": [
                    {"type": "email", "value": f"second.{EMAIL}"},
                    {"type": "sms", "value": f"not a phone {PHONE}"},
                ],
            },
        ],
    }
    response = api.post("/api/v1/contacts", key=key, body=body)
    assert response.status_code == 200, response.content
    wait_for(lambda: Contact.objects.filter(email=EMAIL, phone=PHONE).exists())
    assert Contact.objects.count() == 1


def campaign_send(contact: Contact) -> None:
    segment = Segment.objects.create(name="Erasure campaign", kind=SegmentKind.STATIC)
    segment.contacts.add(contact)
    pool = promo_pool_create(name="Spring", key="SPRING")
    promo_codes_add(pool=pool, lines=[(1, "SPRING-1"), (2, "SPRING-2"), (3, "SPRING-3")])
    template = published(
        "Spring", "<p>Hi $!contact.firstName $!contact.lastName, code $!promo.SPRING</p>"
    )
    campaign = Campaign.objects.create(
        name="Spring sale",
        channels=[ChannelType.EMAIL],
        template=template,
        segment=segment,
        status="draft",
    )
    run = lifecycle.campaign_launch_now(campaign=campaign)
    wait_for(
        lambda: Delivery.objects.filter(run=run, contact=contact, status="sent").exists(),
        timeout=60,
    )


def single_messages(api, key, template) -> None:
    email = {"subject": f"For {FIRST}", "htmlText": f"<p>{FIRST} {LAST}</p>", "emails": [EMAIL]}
    assert api.post("/api/v1/message/email", key=key, body=email).status_code == 200
    smart = {"recipients": [{"locator": EMAIL, "jsonParam": json.dumps({"who": LAST})}]}
    response = api.post(f"/api/v1/message/{template.pk}/smartsend", key=key, body=smart)
    assert response.status_code == 200, response.content
    sms = {"from": "Shop", "text": f"Hi {FIRST}", "phoneNumbers": [PHONE[1:]]}
    assert api.post("/api/v1/message/sms", key=key, body=sms).status_code == 200


def telegram_subscribe_and_send(client, contact: Contact, bot) -> None:
    """The person follows the bot's deep link (Telegram posts the update with the chat id to
    the webhook), then a Telegram campaign reaches the chat through the worker."""
    integration = connect(bot, webhook_secret=WEBHOOK_SECRET)
    payload = telegram_subscribe_link(integration, contact).partition("?start=")[2]
    update = update_message(700, int(CHAT_ID), f"/start {payload}")
    assert post_update(client, integration, update).status_code == 200
    template = template_create(
        name="Telegram sale", channel=ChannelType.TELEGRAM, sms_text="Hi $!contact.firstName!"
    )
    template_publish(template=template)
    segment = Segment.objects.create(name="Telegram readers", kind=SegmentKind.STATIC)
    segment.contacts.add(contact)
    campaign = Campaign.objects.create(
        name="Telegram sale",
        channels=[ChannelType.TELEGRAM],
        template=template,
        segment=segment,
        status="draft",
    )
    run = lifecycle.campaign_launch_now(campaign=campaign)
    wait_for(
        lambda: Delivery.objects.filter(run=run, locator=CHAT_ID, status="sent").exists(),
        timeout=60,
    )


def events_and_workflow(api, key) -> None:
    pool = promo_pool_create(name="Welcome", key="WELCOME")
    promo_codes_add(pool=pool, lines=[(1, "WEL-1")])
    template = published("Welcome", "<p>$!data.get('greeting') — $!promo.WELCOME</p>")
    make_workflow(
        chain(
            {"kind": "promo_issue", "pool_id": pool.pk},
            {"kind": "send", "template_id": template.pk, "channel": "email"},
        ),
        event_key="erasureCheck",
    )
    params = [
        {"name": "greeting", "value": f"Hello {FIRST} {LAST}"},
        {"name": "phone", "value": PHONE},
        {"name": "customer", "value": EXTERNAL},
    ]
    for key_value in (EMAIL, EXTERNAL):
        body = {"eventTypeKey": "erasureCheck", "keyValue": key_value, "params": params}
        assert api.post("/api/v1/event", key=key, body=body).status_code in (200, 201)
    wait_for(lambda: WorkflowRun.objects.filter(status="completed").exists(), timeout=60)


def order(api, key) -> None:
    body = {
        "orders": [
            {
                "externalOrderId": "erase-order-1",
                "externalCustomerId": EXTERNAL,
                "totalCost": 120,
                "status": "DELIVERED",
                "date": "2026-11-08T09:30:00+02:00",
                "email": EMAIL,
                "phone": PHONE[1:],
                "firstName": FIRST,
                "lastName": LAST,
                "currency": "EUR",
                "deliveryAddress": f"{LAST} house, 7 Erasure lane",
                "additionalInfo": {"giftFor": f"{FIRST} {LAST}"},
                "items": [{"externalItemId": "sku-1", "name": "Kettle", "quantity": 1}],
            }
        ]
    }
    response = api.post("/api/v1/orders", key=key, body=body)
    assert response.json()["failedOrders"] == [], response.content


def bounce_webhook(client) -> None:
    """Postmark reports a hard bounce of one of the person's messages (as if sent through
    Postmark): stored as received, applied to the ledger, the address suppressed."""
    sent = Delivery.objects.filter(locator=EMAIL, status="sent").order_by("pk").first()
    Delivery.objects.filter(pk=sent.pk).update(provider_message_id="pm-erase-1")
    postmark = make_integration("postmark")
    body = postmark_bounce("HardBounce", 4323372036854775807, "pm-erase-1", EMAIL)
    assert post(client, postmark, body, **basic_header()).status_code == 200


def test_erased_person_is_found_in_no_column_of_any_table(
    api, full_key, client, sink_and_worker, bot
):
    sink, worker = sink_and_worker
    # An event keyed by the address before any contact carries it.
    early = {"eventTypeKey": "browsing", "keyValue": EMAIL, "params": [{"name": "p", "value": 1}]}
    assert api.post("/api/v1/event", key=full_key, body=early).status_code in (200, 201)
    contact = subscribe_and_confirm(api, full_key, sink)
    import_with_a_failing_row(api, full_key)
    edit = {"externalCustomerId": EXTERNAL, "address": {"town": f"{LAST}ville"}}
    assert api.put(f"/api/v1/contact/{contact.pk}", key=full_key, body=edit).status_code == 200
    campaign_send(contact)
    telegram_subscribe_and_send(client, contact, bot)
    single_messages(api, full_key, published("Receipt", "<p>$!data.get('who')</p>"))
    events_and_workflow(api, full_key)
    wait_for(lambda: Delivery.objects.filter(locator=EMAIL, status="sent").count() >= 4)
    order(api, full_key)
    bounce_webhook(client)
    suppress = {"channel": "sms", "address": PHONE, "detail": f"{FIRST} asked by phone"}
    response = api.post("/api/herald/suppressions", key=full_key, body=suppress)
    assert response.status_code in (200, 201), response.content
    unsubscribe = {"emails": [EMAIL]}
    assert api.post("/api/v1/emails/unsubscribed/add", key=full_key, body=unsubscribe)

    before = database_hits(VALUES)
    copies = {column.split(".")[0] for column in before}
    # The flows copied the person where this test says they did.
    for table in (
        "contacts_contact",
        "contacts_importjob",
        "contacts_importfailure",
        "contacts_unsubscribed",
        "contacts_suppression",
        "campaigns_delivery",
        "campaigns_sendrequest",
        "marketing_event",
        "marketing_order",
        "marketing_workflowrun",
        "integrations_webhookrequest",
        "auditlog_logentry",
    ):
        assert table in copies, (table, sorted(before), worker.output())
    assert ImportFailure.objects.exists()
    assert PromoCode.objects.filter(contact=contact).exists()

    assert Contact.objects.get().external_customer_id == EXTERNAL  # one person, one contact
    response = api.delete(f"/api/v1/contact/{contact.pk}?erase=true", key=full_key)
    assert response.status_code == 200, response.content

    assert database_hits(VALUES) == {}
    # The allowed exceptions: the unsubscribed and suppression lists keep a digest of the
    # address (never the address), so the person stays unsubscribed and suppressed.
    digest = address_digest(EMAIL)
    assert digest not in VALUES and EMAIL not in digest
    assert Unsubscribed.objects.filter(email=digest).exists()
    assert Suppression.objects.filter(address=digest, lifted_at__isnull=True).exists()
    assert Suppression.objects.filter(address=address_digest(PHONE)).exists()
    # What stays: the rows (for the figures), the promo codes assigned.
    assert Delivery.objects.filter(contact=contact, status="sent").count() >= 2
    assert PromoCode.objects.filter(contact=contact).exists()

"""Tracking webhooks of the email services reached through django-anymail (Amazon SES,
SendGrid, Mailgun, Postmark, Brevo, SparkPost, Resend): each service's documented payloads,
posted to an integration's /webhooks/<key>/ with that service's authentication, move the
right deliveries once, suppress on hard bounces and complaints, and are refused when the
signature, credentials or timestamp are wrong; the admin shows stored requests (secrets
masked) and replays them."""

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from campaigns.delivery.feedback import WebhookResult
from campaigns.delivery.providers import Provider, SettingField, WebhookCall, provider_register
from campaigns.models import Delivery, DeliveryEvent
from config.celery import app as celery_app
from config.core.models import Integration
from config.core.secrets import secrets_seal
from contacts.models import Suppression, Unsubscribed
from integrations.models import WebhookNonce, WebhookRequest
from integrations.providers.esp_webhooks import esp_webhook_authenticate, esp_webhook_parse
from integrations.tasks import webhook_nonces_forget_task
from tests.support.esp_webhook_payloads import (
    BASIC,
    MAILGUN_KEY,
    SVIX_SECRET,
    basic_header,
    mailgun_failed,
    mailgun_signed,
    postmark_bounce,
    resend_event,
    ses_bounce,
    ses_notification,
    sparkpost,
    svix_headers,
)
from tests.support.sns import SNSServer
from tests.support.webhooks import post_applied

pytestmark = pytest.mark.django_db


def _provider_for(esp: str) -> type[Provider]:
    class ESPTestProvider(Provider):
        kind = f"test-{esp}"
        channels = frozenset({"email"})
        fields = (
            SettingField("webhook_secret", "Webhook secret", secret=True),
            SettingField("sns_endpoint_url", "SNS endpoint", kind="url", required=False),
        )

        def webhook_authenticate(self, call: WebhookCall) -> None:
            esp_webhook_authenticate(esp, self, call)

        def webhook_parse(self, call: WebhookCall) -> WebhookResult:
            return esp_webhook_parse(esp, self, call)

    ESPTestProvider.__name__ = f"{esp.title().replace('_', '')}TestProvider"
    return provider_register(ESPTestProvider)


for _esp in ("amazon_ses", "sendgrid", "mailgun", "postmark", "brevo", "sparkpost", "resend"):
    _provider_for(_esp)


def make_integration(esp: str, secret: str = BASIC, **settings) -> Integration:
    return Integration.objects.create(
        kind=f"test-{esp}",
        name=f"{esp} hooks",
        channels=["email"],
        settings=settings,
        secrets_sealed=secrets_seal({"webhook_secret": secret}),
    )


def sent(email: str, provider_id: str = "") -> Delivery:
    return Delivery.objects.create(
        channel="email", locator=email, status="sent", provider_message_id=provider_id
    )


def status_of(delivery: Delivery) -> str:
    delivery.refresh_from_db()
    return delivery.status


def post(client, integration, body, *, content_type="application/json", **headers):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return post_applied(
        client,
        f"/webhooks/{integration.webhook_key}/",
        data=data,
        content_type=content_type,
        **headers,
    )


def last_request() -> WebhookRequest:
    return WebhookRequest.objects.order_by("-id").first()


# --- SendGrid (Event Webhook: a JSON array of events; basic auth) -----------------------------


def sendgrid_events(ids: dict[str, Delivery]) -> list[dict]:
    """SendGrid's Event Webhook sample events; Anymail sends with an `anymail_id` custom arg
    (its message id), Herald adds `herald_id`."""
    stamp = int(time.time())
    return [
        {
            "email": "ann@example.com",
            "timestamp": stamp,
            "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
            "event": "delivered",
            "category": ["cat facts"],
            "sg_event_id": "rbtnWrG1DVDGGGFHFyun0A==",
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
            "response": "250 OK",
            "anymail_id": "a0c4a1b5-0a4e-4c8b-9a57-ann",
        },
        {
            "email": "ann@example.com",
            "timestamp": stamp + 60,
            "event": "click",
            "sg_event_id": "FOTFFO0ecsBE-zxFXfs6WA==",
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
            "useragent": "Mozilla/5.0 (Windows NT 6.1; WOW64)",
            "ip": "255.255.255.255",
            "url": "http://www.sendgrid.com/",
            "anymail_id": "a0c4a1b5-0a4e-4c8b-9a57-ann",
        },
        {
            "email": "bob@example.com",
            "timestamp": stamp,
            "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
            "event": "bounce",
            "category": ["cat facts"],
            "sg_event_id": "6g4ZI7SA-xmRDv57GoPIPw==",
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
            "reason": "500 unknown recipient",
            "status": "5.0.0",
            "type": "bounce",
            "herald_id": ids["bob"].message_id,
        },
        {
            "email": "cat@example.com",
            "timestamp": stamp,
            "event": "spamreport",
            "sg_event_id": "37nvH5QBz858KGVYCM4uOA==",
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
            "herald_id": str(ids["cat"].request_id),
        },
        {
            "email": "dan@example.com",
            "timestamp": stamp,
            "event": "bounce",
            "sg_event_id": "Dz5Ji4cYj9kn-qe5Jrl8ug==",
            "reason": "450 mailbox temporarily blocked",
            "status": "4.0.0",
            "type": "blocked",
            "anymail_id": "a0c4a1b5-0a4e-4c8b-9a57-dan",
        },
        {
            "email": "eve@example.com",
            "timestamp": stamp,
            "event": "deferred",
            "sg_event_id": "t7LEShmowp86DTdUW8M-GQ==",
            "response": "400 try again later",
            "attempt": "5",
            "anymail_id": "a0c4a1b5-0a4e-4c8b-9a57-eve",
        },
    ]


@pytest.fixture
def sendgrid():
    return make_integration("sendgrid")


@pytest.fixture
def sendgrid_deliveries():
    ids = {
        "ann": sent("ann@example.com", "a0c4a1b5-0a4e-4c8b-9a57-ann"),
        "bob": sent("bob@example.com", "bob-provider-id"),
        "cat": sent("cat@example.com"),
        "dan": sent("dan@example.com", "a0c4a1b5-0a4e-4c8b-9a57-dan"),
        "eve": sent("eve@example.com", "a0c4a1b5-0a4e-4c8b-9a57-eve"),
    }
    Delivery.objects.filter(pk=ids["bob"].pk).update(
        message_id=f"<{ids['bob'].request_id.hex}@mail.example.com>"
    )
    ids["bob"].refresh_from_db()
    return ids


def test_sendgrid_events_move_deliveries_suppress_and_apply_once(
    client, sendgrid, sendgrid_deliveries
):
    d = sendgrid_deliveries
    body = sendgrid_events(d)
    response = post(client, sendgrid, body, **basic_header())
    assert response.status_code == 200
    assert status_of(d["ann"]) == "clicked"
    assert DeliveryEvent.objects.get(delivery=d["ann"], status="clicked").url == (
        "http://www.sendgrid.com/"
    )
    assert status_of(d["bob"]) == "bounced"
    assert "500 unknown recipient" in d["bob"].error
    assert status_of(d["cat"]) == "complained"
    # "blocked" is a soft bounce: the delivery bounced, the address is not suppressed yet.
    assert status_of(d["dan"]) == "bounced"
    assert d["dan"].error.startswith("soft bounce")
    # "deferred": SendGrid keeps trying; nothing changes.
    assert status_of(d["eve"]) == "sent"
    assert dict(Suppression.objects.values_list("address", "reason")) == {
        "bob@example.com": "hard_bounce",
        "cat@example.com": "complaint",
    }
    first = last_request()
    assert (first.outcome, first.actions) == ("applied", 5)
    events = DeliveryEvent.objects.count()

    again = post(client, sendgrid, body, **basic_header())
    assert again.status_code == 200
    assert DeliveryEvent.objects.count() == events
    assert Suppression.objects.count() == 2
    assert (last_request().outcome, last_request().applied) == ("applied", 0)


def test_sendgrid_unsubscribe_puts_the_address_on_the_unsubscribed_list(client, sendgrid):
    delivery = sent("leaving@example.com", "sg-unsub-1")
    body = [
        {
            "email": "leaving@example.com",
            "timestamp": int(time.time()),
            "event": "group_unsubscribe",
            "sg_event_id": "Z1a3zFUgPu7Wzc3RcO3lRg==",
            "asm_group_id": 42,
            "anymail_id": "sg-unsub-1",
        }
    ]
    assert post(client, sendgrid, body, **basic_header()).status_code == 200
    assert status_of(delivery) == "unsubscribed"
    assert Unsubscribed.objects.filter(email="leaving@example.com").exists()


def test_sendgrid_with_wrong_credentials_is_refused_and_changes_nothing(
    client, sendgrid, sendgrid_deliveries
):
    body = sendgrid_events(sendgrid_deliveries)
    response = post(client, sendgrid, body, **basic_header("herald-hooks:guess"))
    assert response.status_code == 401
    missing = post(client, sendgrid, body)
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Basic realm=")
    assert not DeliveryEvent.objects.exists()
    assert status_of(sendgrid_deliveries["bob"]) == "sent"
    assert not Suppression.objects.exists()
    assert list(WebhookRequest.objects.values_list("outcome", flat=True)) == ["refused"] * 2


@pytest.mark.parametrize(
    "body",
    [b"this is not JSON", {"event": "delivered"}, [{"email": "x@example.com"}]],
    ids=["not-json", "object-not-array", "event-missing"],
)
def test_a_malformed_sendgrid_body_is_stored_answered_400_and_applies_nothing(
    client, sendgrid, body
):
    delivery = sent("x@example.com", "sg-x")
    response = post(client, sendgrid, body, **basic_header())
    assert response.status_code == 400
    assert "SendGrid" in response.json()["detail"]
    stored = last_request()
    assert stored.outcome == "failed"
    assert stored.response_status == 400
    assert bytes(stored.body) == (body if isinstance(body, bytes) else json.dumps(body).encode())
    assert status_of(delivery) == "sent"


# --- Mailgun (JSON webhooks signed with the webhook signing key) ------------------------------


@pytest.fixture
def mailgun():
    return make_integration("mailgun", MAILGUN_KEY)


def test_mailgun_signed_events_move_deliveries_and_a_permanent_failure_suppresses(client, mailgun):
    gone = sent("gone@example.com", "<20130503182626.18666.16540@sandbox.mailgun.org>")
    full = sent("full@example.com", "<20130503192659.13651.20287@sandbox.mailgun.org>")
    retried = sent("busy@example.com", "<20130503200000.11111.22222@sandbox.mailgun.org>")
    delivered = mailgun_signed(
        {
            "event": "delivered",
            "id": "W3X4JOhFT-OZidZGKKr9iA",
            "timestamp": time.time(),
            "recipient": "full@example.com",
            "delivery-status": {"code": 250, "message": "OK", "description": ""},
            "message": {
                "headers": {"message-id": "20130503192659.13651.20287@sandbox.mailgun.org"}
            },
        }
    )
    permanent = mailgun_signed(
        mailgun_failed(
            "permanent", "bounce", "20130503182626.18666.16540@sandbox.mailgun.org", gone.locator
        )
    )
    temporary = mailgun_signed(
        mailgun_failed(
            "temporary", "generic", "20130503200000.11111.22222@sandbox.mailgun.org", "b@x.com"
        )
    )
    for body in (delivered, permanent, temporary):
        assert post(client, mailgun, body).status_code == 200
    assert status_of(full) == "delivered"
    assert status_of(gone) == "bounced"
    assert "No such mailbox" in gone.error
    assert Suppression.objects.get().address == "gone@example.com"
    # A temporary failure is retried by Mailgun: nothing changes yet.
    assert status_of(retried) == "sent"


def test_mailgun_gave_up_retrying_is_a_soft_bounce(client, mailgun):
    delivery = sent("slow@example.com", "<old.1@sandbox.mailgun.org>")
    body = mailgun_signed(
        mailgun_failed("permanent", "old", "old.1@sandbox.mailgun.org", "slow@example.com")
    )
    assert post(client, mailgun, body).status_code == 200
    assert status_of(delivery) == "bounced"
    assert delivery.error.startswith("soft bounce")
    assert not Suppression.objects.exists()


def test_mailgun_bad_signature_stale_timestamp_and_replayed_token_are_refused(client, mailgun):
    delivery = sent("ann@example.com", "<m.1@sandbox.mailgun.org>")
    event = {
        "event": "delivered",
        "timestamp": time.time(),
        "recipient": "ann@example.com",
        "message": {"headers": {"message-id": "m.1@sandbox.mailgun.org"}},
    }
    forged = mailgun_signed(event, key="key-not-the-signing-key")
    assert post(client, mailgun, forged).status_code == 401
    stale = mailgun_signed(event, at=time.time() - 600)
    assert post(client, mailgun, stale).status_code == 401
    assert status_of(delivery) == "sent"
    good = mailgun_signed(event)
    assert post(client, mailgun, good).status_code == 200
    assert status_of(delivery) == "delivered"
    replayed = post(client, mailgun, good)
    assert replayed.status_code == 401
    assert "already received" in replayed.json()["detail"]
    outcomes = list(WebhookRequest.objects.order_by("id").values_list("outcome", flat=True))
    assert outcomes == ["refused", "refused", "applied", "refused"]


def test_mailgun_legacy_form_webhook_is_authenticated_and_applied(client, mailgun):
    delivery = sent("legacy@example.com", "<legacy.1@sandbox.mailgun.org>")
    timestamp, token = str(int(time.time())), uuid.uuid4().hex
    signature = hmac.new(MAILGUN_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256)
    form = {
        "event": "bounced",
        "recipient": "legacy@example.com",
        "domain": "sandbox.mailgun.org",
        "message-headers": "[]",
        "Message-Id": "<legacy.1@sandbox.mailgun.org>",
        "code": "550",
        "error": "5.1.1 The email account that you tried to reach does not exist.",
        "timestamp": timestamp,
        "token": token,
        "signature": signature.hexdigest(),
    }
    response = post_applied(client, f"/webhooks/{mailgun.webhook_key}/", data=form)
    assert response.status_code == 200
    assert status_of(delivery) == "bounced"
    assert Suppression.objects.get().address == "legacy@example.com"


# --- Postmark (one JSON event per request; basic auth) ----------------------------------------


@pytest.fixture
def postmark():
    return make_integration("postmark")


def test_postmark_delivery_bounces_and_complaint(client, postmark):
    ok = sent("john@example.com", "00000000-0000-0000-0000-000000000001")
    hard = sent("hard@example.com", "00000000-0000-0000-0000-000000000002")
    soft = sent("soft@example.com", "00000000-0000-0000-0000-000000000003")
    spam = sent("spam@example.com", "00000000-0000-0000-0000-000000000004")
    bodies = [
        {
            "RecordType": "Delivery",
            "ServerID": 23,
            "MessageStream": "outbound",
            "MessageID": ok.provider_message_id,
            "Recipient": "john@example.com",
            "Tag": "welcome-email",
            "DeliveredAt": "2019-11-05T16:33:54.9070259Z",
            "Details": "Test delivery webhook details",
            "Metadata": {"example": "value"},
        },
        postmark_bounce("HardBounce", 4323372036854775807, hard.provider_message_id, hard.locator),
        postmark_bounce("SoftBounce", 4323372036854775808, soft.provider_message_id, soft.locator),
        {
            "RecordType": "SpamComplaint",
            "MessageStream": "outbound",
            "ID": 42,
            "Type": "SpamComplaint",
            "TypeCode": 512,
            "Name": "Spam complaint",
            "MessageID": spam.provider_message_id,
            "Description": "The subscriber explicitly marked this message as spam.",
            "Details": "Test spam complaint details",
            "Email": "spam@example.com",
            "BouncedAt": "2019-11-05T16:33:54.9070259Z",
        },
    ]
    for body in bodies:
        assert post(client, postmark, body, **basic_header()).status_code == 200
    assert [status_of(d) for d in (ok, hard, soft, spam)] == [
        "delivered",
        "bounced",
        "bounced",
        "complained",
    ]
    assert soft.error.startswith("soft bounce")
    assert dict(Suppression.objects.values_list("address", "reason")) == {
        "hard@example.com": "hard_bounce",
        "spam@example.com": "complaint",
    }
    for body in bodies:
        post(client, postmark, body, **basic_header())
    assert DeliveryEvent.objects.count() == 4
    assert post(client, postmark, {"Hello": "world"}, **basic_header()).status_code == 400


# --- Brevo (transactional webhooks; basic auth; no event ids) ---------------------------------


def test_brevo_events_apply_once_although_brevo_sends_no_event_id(client):
    brevo = make_integration("brevo")
    delivered = sent("example@domain.com", "<201798300811.5787683@relay.domain.com>")
    bounced = sent("gone@domain.com", "<201798300811.5787684@relay.domain.com>")
    soft = sent("full@domain.com", "<201798300811.5787685@relay.domain.com>")

    def event(kind: str, delivery: Delivery, **extra) -> dict:
        return {
            "event": kind,
            "email": delivery.locator,
            "id": 26224,
            "date": "YYYY-MM-DD HH:mm:ss",
            "ts": 1598634509,
            "message-id": delivery.provider_message_id,
            "ts_event": 1598034509,
            "subject": "Subject Line",
            "tag": '["transactionalTag"]',
            "sending_ip": "185.41.28.109",
            "ts_epoch": 1598634509223,
            "tags": ["myFirstTransactional"],
            **extra,
        }

    bodies = [
        event("delivered", delivered),
        event("hard_bounce", bounced, reason="550 5.1.1 user unknown"),
        event("soft_bounce", soft, reason="452 mailbox full"),
    ]
    for _ in range(2):
        for body in bodies:
            assert post(client, brevo, body, **basic_header()).status_code == 200
    assert [status_of(d) for d in (delivered, bounced, soft)] == ["delivered", "bounced", "bounced"]
    assert soft.error.startswith("soft bounce")
    assert DeliveryEvent.objects.count() == 3
    assert list(Suppression.objects.values_list("address", flat=True)) == ["gone@domain.com"]
    # Brevo's batched webhooks post an array of the same events.
    opened = sent("reader@domain.com", "<201798300811.5787686@relay.domain.com>")
    batch = [event("unique_opened", opened), event("click", opened, link="https://a.example/")]
    assert post(client, brevo, batch, **basic_header()).status_code == 200
    assert status_of(opened) == "clicked"


# --- SparkPost (a JSON array of {"msys": {class: event}}; basic auth) -------------------------


def test_sparkpost_batch_with_hard_and_soft_bounce_classes(client):
    integration = make_integration("sparkpost")
    ok = sent("ok@example.com", "65832150921904138")
    invalid = sent("invalid@example.com", "65832150921904139")
    full = sent("full@example.com", "65832150921904140")
    spam = sent("spam@example.com", "65832150921904141")
    bounce = {"error_code": "554", "bounce_class": "10"}
    body = [
        sparkpost("message_event", "delivery", ok.locator, ok.provider_message_id),
        sparkpost(
            "message_event",
            "bounce",
            invalid.locator,
            invalid.provider_message_id,
            raw_reason="554 5.5.0 No such user",
            **bounce,
        ),
        sparkpost(
            "message_event",
            "bounce",
            full.locator,
            full.provider_message_id,
            raw_reason="452 4.2.2 Mailbox full",
            error_code="452",
            bounce_class="22",
        ),
        sparkpost(
            "message_event",
            "spam_complaint",
            spam.locator,
            spam.provider_message_id,
            fbtype="abuse",
        ),
        {"msys": {}},  # SparkPost's "ping"
    ]
    assert post(client, integration, body, **basic_header()).status_code == 200
    assert [status_of(d) for d in (ok, invalid, full, spam)] == [
        "delivered",
        "bounced",
        "bounced",
        "complained",
    ]
    assert full.error.startswith("soft bounce")
    assert invalid.error.startswith("hard bounce")
    assert set(Suppression.objects.values_list("address", flat=True)) == {
        "invalid@example.com",
        "spam@example.com",
    }


# --- Resend (Svix-signed) ---------------------------------------------------------------------


def test_resend_signed_events_apply_and_bad_or_stale_signatures_are_refused(client):
    resend = make_integration("resend", SVIX_SECRET)
    ok = sent("delivered@resend.dev", "56761188-7520-42d8-8898-ff6fc54ce618")
    gone = sent("bounced@resend.dev", "56761188-7520-42d8-8898-ff6fc54ce619")
    delivered = resend_event("email.delivered", ok.locator, ok.provider_message_id)
    bounced = resend_event(
        "email.bounced",
        gone.locator,
        gone.provider_message_id,
        bounce={
            "message": "The recipient's email provider sent a hard bounce message.",
            "subType": "Suppressed",
            "type": "Permanent",
        },
    )
    forged = svix_headers(delivered, key=b"another-key-entirely-32-bytes!!!")
    assert post(client, resend, delivered, **forged).status_code == 401
    stale = svix_headers(delivered, at=time.time() - 3600)
    assert post(client, resend, delivered, **stale).status_code == 401
    assert status_of(ok) == "sent"

    signed = svix_headers(delivered, msg_id="msg_2pAqY3Xy8nbkq3uyPUeUfMcYTh1")
    assert post(client, resend, delivered, **signed).status_code == 200
    assert status_of(ok) == "delivered"
    # The same signed request again is a replay; Svix's retry (new timestamp) gets through
    # and changes nothing (the svix-id is the event id).
    assert post(client, resend, delivered, **signed).status_code == 401
    retry = svix_headers(delivered, msg_id="msg_2pAqY3Xy8nbkq3uyPUeUfMcYTh1", at=time.time() + 1)
    assert post(client, resend, delivered, **retry).status_code == 200
    assert DeliveryEvent.objects.filter(delivery=ok).count() == 1

    assert post(client, resend, bounced, **svix_headers(bounced)).status_code == 200
    assert status_of(gone) == "bounced"
    assert Suppression.objects.get().address == "bounced@resend.dev"


# --- Amazon SES (through Amazon SNS; basic auth) ----------------------------------------------


def sns_post(client, integration, message: dict, *, auth=True):
    headers = {
        "HTTP_X_AMZ_SNS_MESSAGE_TYPE": message["Type"],
        "HTTP_X_AMZ_SNS_MESSAGE_ID": message["MessageId"],
        **(basic_header() if auth else {}),
    }
    # SNS posts its JSON as text/plain.
    return post(client, integration, message, content_type="text/plain; charset=UTF-8", **headers)


def _ses_ids(delivery: Delivery) -> tuple[str, str, dict[str, str]]:
    return delivery.locator, delivery.provider_message_id, {"herald_id": delivery.message_id}


def test_ses_subscription_is_confirmed_and_notifications_apply(client):
    with SNSServer(tokens={"2336412f37fb687f5d51e6e2425c464de"}) as sns:
        ses = make_integration("amazon_ses", sns_endpoint_url=sns.url)
        confirmation = {
            "Type": "SubscriptionConfirmation",
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37fb687f5d51e6e2425c464de",
            "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
            "Message": "You have chosen to subscribe to the topic ...",
            "SubscribeURL": f"{sns.url}/?Action=ConfirmSubscription&TopicArn="
            "arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37fb687f5d51e6e2425c464de",
            "Timestamp": "2012-04-26T20:45:04.751Z",
        }
        # SNS first calls without credentials and expects a challenge.
        challenged = sns_post(client, ses, confirmation, auth=False)
        assert challenged.status_code == 401
        assert challenged["WWW-Authenticate"].startswith("Basic")
        assert sns_post(client, ses, confirmation).status_code == 200
        assert sns.confirmed == [
            ("arn:aws:sns:us-west-2:123456789012:MyTopic", "2336412f37fb687f5d51e6e2425c464de")
        ]
        unknown = {
            **confirmation,
            "MessageId": "m-2",
            "SubscribeURL": confirmation["SubscribeURL"].replace("Token=2336", "Token=9999"),
        }
        assert sns_post(client, ses, unknown).status_code == 500  # kept; SNS asks again
        assert last_request().outcome == "failed"

    hard = sent("jane@example.com", "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000")
    Delivery.objects.filter(pk=hard.pk).update(message_id=f"<{hard.request_id.hex}@example.com>")
    hard.refresh_from_db()
    soft = sent("mary@example.com", "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0681-000000")
    spam = sent("richard@example.com", "000001378603177f-7a5433e7-8edb-42ae-af10-f0181f34d6ee-0")
    ok = sent("ok@example.com", "0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdf415321-000000")
    hard_bounce = ses_notification(ses_bounce("Permanent", "General", *_ses_ids(hard)))
    messages = [
        hard_bounce,
        ses_notification(ses_bounce("Transient", "MailboxFull", *_ses_ids(soft))),
        ses_notification(
            {
                "notificationType": "Complaint",
                "complaint": {
                    "userAgent": "AnyCompany Feedback Loop (V0.01)",
                    "complainedRecipients": [{"emailAddress": "richard@example.com"}],
                    "complaintFeedbackType": "abuse",
                    "timestamp": "2016-01-27T14:59:38.237Z",
                    "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000",
                },
                "mail": {"messageId": spam.provider_message_id, "destination": [spam.locator]},
            }
        ),
        ses_notification(
            {
                "notificationType": "Delivery",
                "mail": {"messageId": ok.provider_message_id, "destination": [ok.locator]},
                "delivery": {
                    "timestamp": "2016-01-27T14:59:38.237Z",
                    "recipients": ["ok@example.com"],
                    "processingTimeMillis": 546,
                    "reportingMTA": "a8-70.smtp-out.amazonses.com",
                    "smtpResponse": "250 ok:  Message 64111812 accepted",
                },
            }
        ),
    ]
    for message in messages:
        assert sns_post(client, ses, message).status_code == 200
    assert [status_of(d) for d in (hard, soft, spam, ok)] == [
        "bounced",
        "bounced",
        "complained",
        "delivered",
    ]
    assert "User unknown" in hard.error
    assert soft.error.startswith("soft bounce")
    assert dict(Suppression.objects.values_list("address", "reason")) == {
        "jane@example.com": "hard_bounce",
        "richard@example.com": "complaint",
    }
    assert sns_post(client, ses, hard_bounce).status_code == 200
    assert DeliveryEvent.objects.filter(delivery=hard).count() == 1


def test_ses_refuses_a_subscribe_url_that_is_not_amazon_sns(client):
    ses = make_integration("amazon_ses")
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e2425c464de",
        "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
        "SubscribeURL": "http://169.254.169.254/latest/meta-data/?Action=ConfirmSubscription",
    }
    response = sns_post(client, ses, confirmation)
    assert response.status_code == 400
    assert "not an Amazon SNS address" in response.json()["detail"]


def test_ses_header_that_does_not_match_the_body_is_malformed(client):
    ses = make_integration("amazon_ses")
    message = ses_notification({"notificationType": "Delivery"})
    headers = {
        "HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification",
        "HTTP_X_AMZ_SNS_MESSAGE_ID": "something-else",
        **basic_header(),
    }
    assert post(client, ses, message, content_type="text/plain", **headers).status_code == 400
    assert last_request().outcome == "failed"


# --- admin: stored requests, masked secrets, replay -------------------------------------------


@pytest.fixture
def as_admin(client, admin_user):
    client.force_login(admin_user)
    return client


def test_admin_lists_requests_and_masks_credentials_in_the_detail(client, as_admin, sendgrid):
    response = post(client, sendgrid, [], **basic_header())
    assert response.status_code == 200
    post(client, sendgrid, b"garbage", **basic_header())
    stored = last_request()
    listing = as_admin.get("/admin/integrations/webhookrequest/?outcome__exact=failed")
    assert listing.status_code == 200
    assert "not a SendGrid tracking webhook payload" in listing.content.decode()
    detail = as_admin.get(f"/admin/integrations/webhookrequest/{stored.pk}/change/")
    page = detail.content.decode()
    assert detail.status_code == 200
    assert "garbage" in page
    assert "(hidden)" in page
    encoded = base64.b64encode(BASIC.encode()).decode()
    assert encoded not in page
    assert "pa55-w0rd" not in page


def test_admin_replay_applies_a_request_that_failed_and_reports_each(as_admin, client):
    brevo = make_integration("brevo")
    delivery = sent("late@example.com", "<replay.1@relay.example.com>")
    # Brevo's delivered event, but posted while the parser could not read it: simulated by
    # storing a body with a missing event name first.
    body = {
        "email": "late@example.com",
        "message-id": "<replay.1@relay.example.com>",
        "ts_epoch": 1598634509223,
    }
    assert post(client, brevo, body, **basic_header()).status_code == 400
    stored = last_request()
    refused = post(client, brevo, body).status_code
    assert refused == 401
    unauthenticated = last_request()
    stored.body = json.dumps({**body, "event": "delivered"}).encode()
    stored.save(update_fields=["body"])
    response = as_admin.post(
        "/admin/integrations/webhookrequest/",
        {"action": "replay", "_selected_action": [stored.pk, unauthenticated.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert f"Request {stored.pk}: 200, applied, 1 changes." in page
    assert f"Request {unauthenticated.pk}: 401, refused" in page
    assert status_of(delivery) == "delivered"
    stored.refresh_from_db()
    assert (stored.outcome, stored.replays) == ("applied", 1)


# --- forgetting nonces ------------------------------------------------------------------------


def test_nonces_are_forgotten_by_a_beat_task_after_the_replay_window():
    integration = make_integration("mailgun", MAILGUN_KEY)
    old = WebhookNonce.objects.create(integration=integration, nonce="old")
    WebhookNonce.objects.filter(pk=old.pk).update(seen_at=timezone.now() - timedelta(hours=1))
    WebhookNonce.objects.create(integration=integration, nonce="fresh")
    entry = django_settings.CELERY_BEAT_SCHEDULE["integrations-webhook-nonces-forget"]
    assert entry["task"] == webhook_nonces_forget_task.name
    assert entry["task"] in celery_app.tasks
    assert webhook_nonces_forget_task() == 1
    assert list(WebhookNonce.objects.values_list("nonce", flat=True)) == ["fresh"]

"""Each email service end to end, and a messenger campaign handed to a service that takes
whole campaigns.

Email services (Amazon SES, SendGrid, Mailgun, Postmark, Brevo, SparkPost, Resend): an
Integration of the service's own kind sends a campaign of three through a local server that
speaks the service's sending API (tests/support/fake_esp.py); then the service's tracking
webhooks, built from what that server recorded (the service's message id, the herald_id the
message carried) and authenticated as the service does (tests/support/esp_webhook_payloads
.py), are posted to the integration's webhook URL and drained: one delivered, one hard
bounce, one complaint. The ledger, the suppression list (with the service's words), the
run's stats after the analytics refresh, and the same webhooks again (changing nothing).

Messenger: a Telegram campaign through an external-campaign service (kind "external", a
local service speaking the provider contract, tests/support/fake_contract_service.py):
prepared with contact ids, created as a messenger campaign, and the service's webhook,
which names each recipient by its Herald contact id, moves the Telegram rows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from campaigns import pipeline
from campaigns.analytics import stats_refresh
from campaigns.delivery import engine
from campaigns.models import CampaignRun, Delivery, DeliveryEvent, RunStats
from config.core.models import Integration
from config.core.secrets import secrets_seal
from contacts.models import ChannelType, Suppression
from integrations.models import WebhookRequest
from templates.services import template_create, template_publish
from tests.campaigns.test_pipeline import make_campaign, make_run, send_all, vip
from tests.contacts.factories import ContactFactory
from tests.support.esp_webhook_payloads import (
    BASIC,
    MAILGUN_KEY,
    SVIX_SECRET,
    basic_header,
    brevo_event,
    mailgun_event,
    mailgun_failed,
    mailgun_signed,
    postmark_bounce,
    postmark_complaint,
    postmark_delivery,
    resend_event,
    sendgrid_event,
    ses_bounce,
    ses_complaint,
    ses_delivery,
    ses_notification,
    sns_headers,
    sparkpost,
    svix_headers,
)
from tests.support.fake_contract_service import ContractService, webhook_headers
from tests.support.fake_esp import FAKES, FakeESP, Sent
from tests.support.webhooks import post_applied

pytestmark = pytest.mark.django_db

SERVICES = sorted(FAKES)
# The webhook secret each service's integration is configured with.
WEBHOOK_SECRETS = {
    "mailgun": MAILGUN_KEY,
    "resend": SVIX_SECRET,
}
# What each service says about the hard bounce, as the suppression list keeps it.
BOUNCE_WORDS = {
    "amazon_ses": "550 5.1.1 <jane@example.com>... User unknown",
    "sendgrid": "550 5.1.1 The email account that you tried to reach does not exist.",
    "mailgun": "No such mailbox",
    "postmark": "The server was unable to deliver your message (ex: unknown user).",
    "brevo": "550 5.1.1 user unknown",
    "sparkpost": "554 5.5.0 No such user",
    "resend": "The recipient's email provider sent a hard bounce message.",
}


@dataclass
class Hook:
    """One webhook request as the service makes it; `again()` is the service's retry of
    it (a new signature where the service signs each attempt anew)."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    again: Callable[[], Hook] | None = None


def _json(data) -> bytes:
    return json.dumps(data).encode()


def _basic(body, *, content_type: str = "application/json", extra=None) -> Hook:
    """A request of a service that authenticates with HTTP basic auth and retries a request
    as it was."""
    hook = Hook(_json(body), {**basic_header(BASIC), **(extra or {})}, content_type)
    hook.again = lambda: hook
    return hook


def _mailgun(event_data: dict) -> Hook:
    """Mailgun signs each attempt afresh (a new token and timestamp)."""
    return Hook(_json(mailgun_signed(event_data)), again=lambda: _mailgun(event_data))


def _resend(body: bytes, msg_id: str, attempt: int = 0) -> Hook:
    """Svix signs a retry anew under the same svix-id, with the attempt's timestamp."""
    headers = svix_headers(body, msg_id=msg_id, at=time.time() + attempt)
    return Hook(body, headers, again=lambda: _resend(body, msg_id, attempt + 1))


def _ses(ses_event: dict) -> Hook:
    # SNS posts its JSON as text/plain and retries a notification as it was.
    message = ses_notification(ses_event)
    return _basic(message, content_type="text/plain; charset=UTF-8", extra=sns_headers(message))


def service_hooks(esp: str, ok: Sent, gone: Sent, spam: Sent) -> list[Hook]:
    """The service's webhook requests reporting `ok` delivered, `gone` hard-bounced and
    `spam` complained about, built from what the service recorded of each message."""

    def ids(sent: Sent) -> tuple[str, str, dict[str, str]]:
        return sent.to[0], sent.message_id, sent.metadata

    if esp == "sendgrid":  # one batch of events
        return [
            _basic(
                [
                    sendgrid_event("delivered", *ids(ok), response="250 OK"),
                    sendgrid_event(
                        "bounce",
                        *ids(gone),
                        reason=BOUNCE_WORDS[esp],
                        status="5.1.1",
                        type="bounce",
                    ),
                    sendgrid_event("spamreport", *ids(spam)),
                ]
            )
        ]
    if esp == "mailgun":  # one signed event per request
        return [
            _mailgun(mailgun_event("delivered", ok.message_id, ok.to[0], ok.metadata)),
            _mailgun(
                mailgun_failed("permanent", "bounce", gone.message_id, gone.to[0], gone.metadata)
            ),
            _mailgun(mailgun_event("complained", spam.message_id, spam.to[0], spam.metadata)),
        ]
    if esp == "postmark":
        return [
            _basic(postmark_delivery(ok.message_id, ok.to[0], ok.metadata)),
            _basic(
                postmark_bounce(
                    "HardBounce", 4323372036854775807, gone.message_id, gone.to[0], gone.metadata
                )
            ),
            _basic(postmark_complaint(42, spam.message_id, spam.to[0], spam.metadata)),
        ]
    if esp == "brevo":
        return [
            _basic(brevo_event("delivered", *ids(ok))),
            _basic(brevo_event("hard_bounce", *ids(gone), reason=BOUNCE_WORDS[esp])),
            _basic(brevo_event("spam", *ids(spam))),
        ]
    if esp == "sparkpost":  # one batch of events
        return [
            _basic(
                [
                    sparkpost("message_event", "delivery", *ids(ok)),
                    sparkpost(
                        "message_event",
                        "bounce",
                        *ids(gone),
                        raw_reason=BOUNCE_WORDS[esp],
                        error_code="554",
                        bounce_class="10",
                    ),
                    sparkpost("feedback_event", "spam_complaint", *ids(spam), fbtype="abuse"),
                ]
            )
        ]
    if esp == "resend":
        bounce = {"message": BOUNCE_WORDS[esp], "subType": "General", "type": "Permanent"}
        bodies = [
            resend_event("email.delivered", *ids(ok)),
            resend_event("email.bounced", *ids(gone), bounce=bounce),
            resend_event("email.complained", *ids(spam)),
        ]
        return [_resend(body, f"msg_{n}_{spam.message_id}") for n, body in enumerate(bodies)]
    if esp == "amazon_ses":
        return [
            _ses(ses_delivery(*ids(ok))),
            _ses(ses_bounce("Permanent", "General", *ids(gone))),
            _ses(ses_complaint(*ids(spam))),
        ]
    raise AssertionError(f"no webhooks for {esp}")


def connect(fake: FakeESP) -> Integration:
    """An Integration of the service's own kind, sending through the local server, with the
    webhook secret the service's webhooks authenticate with."""
    settings, secrets = fake.integration_settings()
    secrets["webhook_secret"] = WEBHOOK_SECRETS.get(fake.esp, BASIC)
    return Integration.objects.create(
        kind=fake.esp,
        name=f"{fake.esp} newsletters",
        channels=["email"],
        settings=settings,
        secrets_sealed=secrets_seal(secrets),
    )


def post(client, integration: Integration, hook: Hook):
    return post_applied(
        client,
        f"/webhooks/{integration.webhook_key}/",
        data=hook.body,
        content_type=hook.content_type,
        **hook.headers,
    )


def ledger(run: CampaignRun) -> dict[str, str]:
    return dict(Delivery.objects.filter(run=run).values_list("locator", "status"))


def run_stats(run: CampaignRun) -> dict[str, int]:
    stats_refresh(run_ids=[run.pk])
    row = RunStats.objects.get(run=run, channel=ChannelType.EMAIL)
    names = ("recipients", "sends", "deliveries", "bounces", "complaints", "failures")
    return {name: getattr(row, name) for name in names}


@pytest.fixture(params=SERVICES)
def fake(request):
    with FAKES[request.param]() as server:
        yield server


def test_a_campaign_through_the_service_comes_back_through_its_webhooks(client, fake):
    integration = connect(fake)
    vip(3)
    run = make_run(make_campaign(integration=integration))
    pipeline.run_materialise(run=run)

    send_all(run)

    # What the service received: one message per recipient, each with Herald's id.
    sent = sorted(fake.messages, key=lambda message: message.to[0])
    assert len(sent) == 3
    rows = {d.locator: d for d in Delivery.objects.filter(run=run)}
    for message in sent:
        row = rows[message.to[0]]
        assert message.metadata["herald_id"] == row.request_id.hex
        assert (row.status, row.provider_message_id) == ("sent", message.message_id)
    ok, gone, spam = sent
    hooks = service_hooks(fake.esp, ok, gone, spam)

    for hook in hooks:
        response = post(client, integration, hook)
        assert response.status_code == 200, response.content

    assert ledger(run) == {
        ok.to[0]: "delivered",
        gone.to[0]: "bounced",
        spam.to[0]: "complained",
    }
    bounced = Delivery.objects.get(run=run, locator=gone.to[0])
    assert bounced.error.startswith("hard bounce")
    assert BOUNCE_WORDS[fake.esp] in bounced.error
    suppressed = {s.address: s for s in Suppression.objects.all()}
    assert {a: s.reason for a, s in suppressed.items()} == {
        gone.to[0]: "hard_bounce",
        spam.to[0]: "complaint",
    }
    # The service's own words, and where they came from.
    assert BOUNCE_WORDS[fake.esp] in suppressed[gone.to[0]].detail
    assert not suppressed[gone.to[0]].detail.startswith("hard bounce")
    assert {s.source for s in suppressed.values()} == {integration.name}
    assert list(WebhookRequest.objects.values_list("outcome", flat=True)) == ["applied"] * len(
        hooks
    )
    # A complaint comes from the recipient's mailbox: that message was delivered too.
    stats = run_stats(run)
    assert stats == {
        "recipients": 3,
        "sends": 3,
        "deliveries": 2,
        "bounces": 1,
        "complaints": 1,
        "failures": 0,
    }
    events = DeliveryEvent.objects.filter(delivery__run=run).count()
    assert events == 6  # three sent, then one report each

    # The service sends the same reports again (a retry, as it makes them): nothing changes.
    for hook in hooks:
        assert hook.again is not None
        response = post(client, integration, hook.again())
        assert response.status_code == 200, response.content
    assert DeliveryEvent.objects.filter(delivery__run=run).count() == events
    assert Suppression.objects.count() == 2
    assert ledger(run) == {
        ok.to[0]: "delivered",
        gone.to[0]: "bounced",
        spam.to[0]: "complained",
    }
    assert run_stats(run) == stats
    again = WebhookRequest.objects.order_by("pk")[len(hooks) :]
    assert [(r.outcome, r.applied) for r in again] == [("applied", 0)] * len(hooks)


# --- a messenger campaign handed to an external-campaign service ----------------------------

CONTRACT_KEY = "contract-key"
CONTRACT_HOOK_SECRET = "contract-hook-secret"


@pytest.fixture
def service():
    with ContractService(api_key=CONTRACT_KEY) as server:
        yield server


def post_actions(client, integration: Integration, actions: list[dict], *, attempt: int = 0):
    """The service's signed webhook request (a later attempt: a later timestamp)."""
    body = json.dumps({"actions": actions}).encode()
    signed = webhook_headers(CONTRACT_HOOK_SECRET, body, timestamp=time.time() + attempt)
    return post_applied(
        client,
        f"/webhooks/{integration.webhook_key}/",
        data=body,
        content_type="application/json",
        **{f"HTTP_{name.upper().replace('-', '_')}": value for name, value in signed.items()},
    )


def test_a_telegram_campaign_handed_to_a_service_is_reported_back_by_contact_id(client, service):
    integration = Integration.objects.create(
        kind="external",
        name="Messenger service",
        channels=[ChannelType.TELEGRAM],
        settings={"base_url": service.url(), "timeout": 5, "bot_id": "b1"},
        secrets_sealed=secrets_seal(
            {"api_key": CONTRACT_KEY, "webhook_secret": CONTRACT_HOOK_SECRET}
        ),
    )
    people = [
        ContactFactory(tags=["tg"], extra_channels=[{"type": "telegram", "value": f"70{n}"}])
        for n in range(3)
    ]
    template = template_create(
        name="Telegram sale", channel=ChannelType.TELEGRAM, sms_text="Hi $!contact.firstName!"
    )
    template_publish(template=template)
    campaign = make_campaign(
        channels=[ChannelType.TELEGRAM],
        template=template,
        audience_filter={"tags": {"$in": ["tg"]}},
        integration=integration,
    )
    run = make_run(campaign)
    pipeline.run_materialise(run=run)

    engine.run_send(run_id=run.pk)

    # Prepared with Herald's contact ids, not the chats (the messenger's ids).
    campaign_id = f"herald-run-{run.pk}"
    assert service.prepared[campaign_id] == [[str(p.pk) for p in people]]
    assert sorted(service.exported) == sorted(p.pk for p in people)
    # Created as a messenger campaign.
    paths = [(method, path) for method, path, _, _ in service.requests]
    assert ("POST", "/messenger-campaigns") in paths
    assert ("POST", "/campaigns") not in paths
    created = service.campaigns[campaign_id]
    assert (created["type"], created["messengerType"], created["botId"]) == (
        "messenger",
        "telegram",
        "b1",
    )
    assert created["text"] == "Hi $!contact.firstName!"
    run.refresh_from_db()
    assert run.external_id == created["id"]
    rows = {d.contact_id: d for d in Delivery.objects.filter(run=run)}
    assert {d.locator for d in rows.values()} == {"700", "701", "702"}
    assert {(d.status, d.provider) for d in rows.values()} == {
        ("sent", f"external#{integration.pk}")
    }
    read, blocked, delivered = people
    # The same contact's row on another channel of the run (sent through another provider)
    # is not the service's: a report by contact id leaves it alone.
    other_row = Delivery.objects.create(
        run=run,
        contact=read,
        channel=ChannelType.VIBER,
        locator="viber-user-1",
        status="sent",
        provider="viber#99",
    )

    actions = [
        {"type": "UpdateDeliveryStatus", "status": "delivered", "externalId": run.external_id,
         "contactId": delivered.pk, "eventId": "tg-1"},
        {"type": "UpdateDeliveryStatus", "status": "delivered", "externalId": run.external_id,
         "contactId": read.pk, "eventId": "tg-2"},
        {"type": "UpdateDeliveryStatus", "status": "opened", "externalId": run.external_id,
         "contactId": str(read.pk), "eventId": "tg-3"},
        {"type": "UpdateDeliveryStatus", "status": "bounced", "externalId": run.external_id,
         "contactId": blocked.pk, "eventId": "tg-4",
         "detail": "Forbidden: bot was blocked by the user"},
        {"type": "UpdateCampaign", "externalId": run.external_id, "status": "sent"},
    ]  # fmt: skip
    assert post_actions(client, integration, actions).status_code == 200

    statuses = {pk: d.status for pk, d in _rows(run, ChannelType.TELEGRAM).items()}
    assert statuses == {delivered.pk: "delivered", read.pk: "opened", blocked.pk: "bounced"}
    other_row.refresh_from_db()
    assert other_row.status == "sent"
    gone = Suppression.objects.get()
    assert (gone.channel, gone.address, gone.reason) == ("telegram", "701", "hard_bounce")
    assert gone.detail == "Forbidden: bot was blocked by the user"
    run.refresh_from_db()
    assert run.external_status == "sent"
    events = DeliveryEvent.objects.filter(delivery__run=run).count()

    # The service's retry changes nothing; a contact the run never had matches nothing.
    assert post_actions(client, integration, actions, attempt=1).status_code == 200
    stranger = ContactFactory(tags=["other"])
    unknown = [
        {"type": "UpdateDeliveryStatus", "status": "delivered", "externalId": run.external_id,
         "contactId": stranger.pk, "eventId": "tg-5"},
    ]  # fmt: skip
    assert post_actions(client, integration, unknown, attempt=2).status_code == 200
    assert DeliveryEvent.objects.filter(delivery__run=run).count() == events
    assert Suppression.objects.count() == 1
    assert [(r.outcome, r.applied) for r in WebhookRequest.objects.order_by("pk")] == [
        ("applied", 6),  # four statuses, the suppression, the campaign's status
        ("applied", 0),
        ("applied", 0),
    ]


@pytest.mark.parametrize("contact_id", ["abc", -4, 1.5, True, "9" * 30])
def test_a_contact_id_that_is_not_one_is_a_malformed_request(client, service, contact_id):
    integration = Integration.objects.create(
        kind="external",
        name="Messenger service",
        channels=[ChannelType.TELEGRAM],
        settings={"base_url": service.url(), "timeout": 5},
        secrets_sealed=secrets_seal(
            {"api_key": CONTRACT_KEY, "webhook_secret": CONTRACT_HOOK_SECRET}
        ),
    )
    actions = [
        {"type": "UpdateDeliveryStatus", "status": "delivered", "externalId": "ext-1",
         "contactId": contact_id},
    ]  # fmt: skip
    response = post_actions(client, integration, actions)
    assert response.status_code == 400
    assert "contactId must be a Herald contact id" in response.json()["detail"]
    assert WebhookRequest.objects.get().outcome == "failed"


def _rows(run: CampaignRun, channel: str) -> dict[int, Delivery]:
    return {d.contact_id: d for d in Delivery.objects.filter(run=run, channel=channel)}

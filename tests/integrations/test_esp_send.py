"""Sending through the email services Herald reaches with django-anymail (Amazon SES,
SendGrid, Mailgun, Postmark, Brevo, SparkPost, Resend), each against a local server that
speaks the service's documented sending API (tests/support/fake_esp.py): what reaches the
service, what the ledger records, how refusals are classified, and the connection tests."""

import datetime as dt

import pytest
from django.utils import timezone

from campaigns import pipeline
from campaigns.delivery.engine import send_request_process
from campaigns.delivery.providers import ProviderError, provider_of
from campaigns.models import Delivery, DeliveryStatus
from config.core.models import Integration
from config.core.secrets import secrets_seal
from tests.campaigns.test_pipeline import make_campaign, make_run, send_all, vip
from tests.support.fake_esp import FAKES, FakeESP, FakeSES

pytestmark = pytest.mark.django_db

SERVICES = sorted(FAKES)


def connect(
    fake: FakeESP, *, key: str | None = None, secret: str | None = None, **settings
) -> Integration:
    """An Integration of the fake's kind sending through it; `key` replaces its key (for
    SES the access key id; `secret` the secret access key), `settings` its settings."""
    config, secrets = fake.integration_settings()
    config.update(settings)
    if key is not None:
        if isinstance(fake, FakeSES):
            config["access_key_id"] = key
        else:
            [name] = secrets
            secrets[name] = key
    if secret is not None:
        secrets["secret_access_key"] = secret
    return Integration.objects.create(
        kind=fake.esp,
        name=f"{fake.esp} test",
        channels=["email"],
        settings=config,
        secrets_sealed=secrets_seal({**secrets, "webhook_secret": "hook:pw"}),
    )


@pytest.fixture(params=SERVICES)
def fake(request):
    with FAKES[request.param]() as server:
        yield server


def campaign_through(integration: Integration, people: int = 3):
    contacts = vip(people)
    run = make_run(make_campaign(integration=integration))
    pipeline.run_materialise(run=run)
    return contacts, run


# --- sending -------------------------------------------------------------------------------


def test_a_campaign_reaches_the_service_and_each_delivery_records_its_message_id(fake):
    integration = connect(fake)
    contacts, run = campaign_through(integration)

    send_all(run)

    assert sorted(m.to[0] for m in fake.messages) == sorted(c.email for c in contacts)
    rows = {d.locator: d for d in Delivery.objects.filter(run=run)}
    for message in fake.messages:
        row = rows[message.to[0]]
        contact = next(c for c in contacts if c.email == row.locator)
        assert message.subject == f"Sale for {contact.first_name}"
        # The id the service's webhooks hand back, and the id the service gave the message.
        assert message.metadata["herald_id"] == row.request_id.hex
        assert row.provider_message_id == message.message_id != ""
        assert row.status == DeliveryStatus.SENT
        assert row.provider == f"{fake.esp}#{integration.pk}"
        # Herald's tracked links and one-click unsubscribe travel with the message.
        assert "/t/c/" in message.html
        assert any(name.lower() == "list-unsubscribe" for name in message.headers)
        # Postmark and SparkPost take one tag: the campaign's.
        assert message.tags[0] == f"campaign-{run.campaign_id}"
    assert len({m.message_id for m in fake.messages}) == 3


def test_a_message_request_goes_through_the_channels_default_integration(api, full_key, settings):
    with FAKES["postmark"]() as fake:
        integration = connect(fake)
        Integration.objects.filter(pk=integration.pk).update(is_default=True)
        body = {
            "from": '"Shop" <news@shop.example>',
            "subject": "Your order",
            "htmlText": "<p>It ships today.</p>",
            "emails": ["kim@example.com"],
        }
        answer = api.post("/api/v1/message/email", key=full_key, body=body).json()
        send_request_process(send_request_id=answer["id"])

        [message] = fake.messages
        assert message.to == ["kim@example.com"]
        [call] = [c for c in fake.calls if c.path == "/email"]
        assert call.headers["x-postmark-server-token"] == fake.key
        assert call.json()["From"] == "Shop <news@shop.example>"
        row = Delivery.objects.get(request_id=message.metadata["herald_id"])
        assert (row.status, row.provider_message_id) == ("sent", message.message_id)


@pytest.mark.parametrize("answer", ["throttled", "unavailable"])
def test_a_throttled_or_unavailable_service_leaves_the_delivery_queued_for_a_retry(
    fake, answer, settings
):
    settings.HERALD_RETRY_BASE = 1
    integration = connect(fake)
    contacts, run = campaign_through(integration, people=1)
    fake.refuse(contacts[0].email, answer, once=True)

    send_all(run, rounds=1)

    row = Delivery.objects.get(run=run)
    assert row.status == DeliveryStatus.QUEUED
    assert row.next_attempt_at > timezone.now()
    assert ("429" in row.error) if answer == "throttled" else ("50" in row.error)
    assert fake.messages == []
    # The retry is due (the test's transaction stands still): it goes through.
    Delivery.objects.filter(pk=row.pk).update(
        next_attempt_at=timezone.now() - dt.timedelta(minutes=1)
    )
    send_all(run)
    row.refresh_from_db()
    assert (row.status, row.attempts) == (DeliveryStatus.SENT, 2)
    assert [m.to for m in fake.messages] == [[contacts[0].email]]


def test_a_refused_request_fails_the_delivery_and_the_others_go_out(fake):
    integration = connect(fake)
    contacts, run = campaign_through(integration, people=2)
    bad, good = contacts
    fake.refuse(bad.email, "invalid")

    send_all(run)

    failed = Delivery.objects.get(run=run, locator=bad.email)
    assert failed.status == DeliveryStatus.FAILED
    assert failed.error
    assert Delivery.objects.get(run=run, locator=good.email).status == DeliveryStatus.SENT
    assert [m.to for m in fake.messages] == [[good.email]]


def test_a_revoked_key_fails_the_deliveries_with_the_services_message(fake):
    integration = connect(fake, key="REVOKEDKEY42")
    _, run = campaign_through(integration, people=1)

    send_all(run)

    row = Delivery.objects.get(run=run)
    assert row.status == DeliveryStatus.FAILED
    assert WRONG_KEY_MESSAGES[fake.esp] in row.error
    assert "REVOKEDKEY42" not in row.error
    assert fake.messages == []


def test_a_missing_credential_fails_the_deliveries_with_the_reason():
    with FAKES["sendgrid"]() as fake:
        integration = connect(fake, key="")
        _, run = campaign_through(integration, people=1)
        send_all(run)
        row = Delivery.objects.get(run=run)
        assert row.status == DeliveryStatus.FAILED
        assert "API key is not set" in row.error
        assert fake.calls == []


# --- connection tests ----------------------------------------------------------------------

WRONG_KEY_MESSAGES = {
    "amazon_ses": "The security token included in the request is invalid.",
    "sendgrid": "The provided authorization grant is invalid, expired, or revoked",
    "mailgun": "Forbidden",
    "postmark": "The Server Token you provided in the X-Postmark-Server-Token request header "
    "was invalid.",
    "brevo": "Key not found",
    "sparkpost": "Unauthorized.",
    "resend": "API key is invalid",
}

DESCRIPTIONS = {
    "amazon_ses": "Amazon SES eu-west-1: sending enabled; 50,000 a day at 14/s",
    "sendgrid": "SendGrid: the API key may send mail",
    "mailgun": "Mailgun: domain shop.example is active",
    "postmark": "Postmark: server “Shop newsletters”",
    "brevo": "Brevo: account of owner@shop.example (Shop)",
    "sparkpost": "SparkPost: account of Shop (active)",
    "resend": "Resend: 1 domain(s): shop.example (verified)",
}


def test_the_connection_test_describes_the_account(fake):
    described = provider_of(connect(fake)).connection_test()
    assert described.startswith(DESCRIPTIONS[fake.esp])


def test_a_wrong_key_fails_the_connection_test_with_the_services_message(fake):
    with pytest.raises(ProviderError) as refused:
        provider_of(connect(fake, key="WRONGKEY123")).connection_test()
    assert WRONG_KEY_MESSAGES[fake.esp] in refused.value.message
    assert refused.value.permanent
    assert "WRONGKEY123" not in refused.value.message


def test_a_wrong_ses_secret_fails_the_signature_check():
    with FAKES["amazon_ses"]() as fake:
        integration = connect(fake, secret="not-the-secret")
        with pytest.raises(ProviderError) as refused:
            provider_of(integration).connection_test()
        assert "The request signature we calculated does not match" in refused.value.message
        assert "not-the-secret" not in refused.value.message


def test_a_mailgun_domain_the_account_lacks_is_named():
    with FAKES["mailgun"]() as fake:
        integration = connect(fake, sender_domain="other.example")
        with pytest.raises(ProviderError) as refused:
            provider_of(integration).connection_test()
        assert "Domain not found: other.example" in refused.value.message


def test_an_unreachable_service_is_a_transient_connection_test_failure():
    with FAKES["brevo"]() as fake:
        integration = connect(fake)
    # The server is gone: its port refuses connections.
    with pytest.raises(ProviderError) as refused:
        provider_of(integration).connection_test()
    assert "Brevo cannot be reached" in refused.value.message
    assert not refused.value.permanent


@pytest.mark.parametrize("kind", ["amazon_ses", "resend"])
def test_an_api_url_that_is_not_http_is_refused_before_any_call(kind):
    with FAKES[kind]() as fake:
        integration = connect(fake, api_url="file:///etc/passwd")
        with pytest.raises(ProviderError) as refused:
            provider_of(integration).connection_test()
        assert "must be an http(s) URL" in refused.value.message
        _, run = campaign_through(integration, people=1)
        send_all(run)
        row = Delivery.objects.get(run=run)
        assert (row.status, "must be an http(s) URL" in row.error) == ("failed", True)
        assert fake.calls == []


def test_an_ses_region_that_is_not_one_is_named():
    with FAKES["amazon_ses"]() as fake:
        integration = connect(fake, region="Frankfurt")
        with pytest.raises(ProviderError) as refused:
            provider_of(integration).connection_test()
        assert "'Frankfurt' is not an AWS region" in refused.value.message

"""The feedback path every provider shares: a webhook request is stored raw, authenticated,
parsed into actions and applied once through the ledger; bounces and complaints suppress
addresses, and suppressed addresses leave campaign audiences."""

import json

import pytest

from campaigns import pipeline
from campaigns.delivery.feedback import (
    UpdateDeliveryStatus,
    WebhookResult,
    actions_apply,
)
from campaigns.delivery.providers import (
    DeliveryStatus,
    Provider,
    WebhookCall,
    WebhookRefused,
    provider_register,
)
from campaigns.models import CampaignRun, Delivery, DeliveryEvent
from config.core.models import Integration
from contacts.models import Suppression
from integrations.models import WebhookRequest
from integrations.webhooks import webhook_replay
from tests.campaigns.test_pipeline import make_campaign, make_run, send_all
from tests.contacts.factories import ContactFactory
from tests.support.smtp import SMTPSink, use_sink
from tests.support.webhooks import post_applied

pytestmark = pytest.mark.django_db


@provider_register
class EchoProvider(Provider):
    """A provider whose webhook body is a JSON list of {status, id, event} and whose
    secret is a header; {"explode": true} makes its parser fail."""

    kind = "test-echo"
    channels = frozenset({"email"})

    def webhook_authenticate(self, call: WebhookCall) -> None:
        if call.header("x-secret") != "s3cret":
            raise WebhookRefused("wrong secret")

    def webhook_parse(self, call: WebhookCall) -> WebhookResult:
        data = call.json()
        if isinstance(data, dict) and data.get("explode"):
            raise RuntimeError("parser bug")
        return WebhookResult(
            actions=[
                UpdateDeliveryStatus(
                    status=DeliveryStatus(item["status"]),
                    message_id=item["id"],
                    event_id=item["event"],
                    detail=item.get("detail", ""),
                )
                for item in data
            ]
        )


@pytest.fixture
def integration():
    return Integration.objects.create(kind="test-echo", name="Echo", channels=["email"])


def sent_delivery(email: str, provider_id: str) -> Delivery:
    contact = ContactFactory(email=email, tags=["fb"])
    campaign = make_campaign(audience_filter={"tags": {"$in": ["fb"]}})
    run = CampaignRun.objects.create(
        campaign=campaign, number=1, template_version=campaign.template.versions.get()
    )
    pipeline.run_materialise(run=run)
    delivery = Delivery.objects.get(run=run, contact=contact)
    Delivery.objects.filter(pk=delivery.pk).update(status="sent", provider_message_id=provider_id)
    return delivery


def post(client, integration, body, secret="s3cret"):  # noqa: S107 (a test secret)
    return post_applied(
        client,
        f"/webhooks/{integration.webhook_key}/",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_X_SECRET=secret,
    )


def test_a_bounce_reported_twice_is_applied_once_and_suppresses_the_address(client, integration):
    delivery = sent_delivery("gone@example.com", "p-1")
    body = [{"status": "bounced", "id": "p-1", "event": "e-1", "detail": "550 no such user"}]
    assert post(client, integration, body).status_code == 200
    assert post(client, integration, body).status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == "bounced"
    assert "550 no such user" in delivery.error
    assert DeliveryEvent.objects.filter(delivery=delivery, status="bounced").count() == 1
    suppression = Suppression.objects.get(address="gone@example.com")
    assert suppression.reason == "hard_bounce"
    assert "550 no such user" in suppression.detail
    assert WebhookRequest.objects.filter(integration=integration, outcome="applied").count() == 2


def test_a_wrong_secret_is_refused_with_401_and_changes_nothing(client, integration):
    delivery = sent_delivery("a@example.com", "p-2")
    response = post(client, integration, [{"status": "delivered", "id": "p-2", "event": "x"}], "no")
    assert response.status_code == 401
    delivery.refresh_from_db()
    assert delivery.status == "sent"
    stored = WebhookRequest.objects.get()
    assert stored.outcome == "refused"
    assert json.loads(bytes(stored.body))[0]["id"] == "p-2"


def test_a_failing_parser_answers_500_keeps_the_request_and_a_replay_applies_it(
    client, integration
):
    delivery = sent_delivery("b@example.com", "p-3")
    response = post(client, integration, {"explode": True})
    assert response.status_code == 500
    stored = WebhookRequest.objects.get()
    assert stored.outcome == "failed"
    assert "parser bug" in stored.error
    # The provider is fixed (here: the stored body is one it can read); replay applies it.
    stored.body = json.dumps([{"status": "delivered", "id": "p-3", "event": "d"}]).encode()
    stored.save()
    assert webhook_replay(stored) == 200
    stored.refresh_from_db()
    assert stored.outcome == "applied"
    assert stored.replays == 1
    delivery.refresh_from_db()
    assert delivery.status == "delivered"


def test_soft_bounces_suppress_only_at_the_limit(settings, integration):
    settings.HERALD_SOFT_BOUNCE_LIMIT = 2
    first = sent_delivery("full@example.com", "p-4")
    actions_apply(
        [UpdateDeliveryStatus(status=DeliveryStatus.SOFT_BOUNCED, message_id="p-4", event_id="s1")],
        integration=integration,
    )
    assert not Suppression.objects.exists()
    second = Delivery.objects.create(
        channel="email", locator="full@example.com", status="sent", provider_message_id="p-5"
    )
    report = actions_apply(
        [UpdateDeliveryStatus(status=DeliveryStatus.SOFT_BOUNCED, message_id="p-5", event_id="s2")],
        integration=integration,
    )
    assert report.changes["suppressed"] == 1
    assert Suppression.objects.get().reason == "soft_bounces"
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == second.status == "bounced"


def test_a_suppressed_address_is_left_out_of_the_next_campaign():
    ContactFactory(email="kept@example.com", tags=["next"])
    ContactFactory(email="Dead@Example.com", tags=["next"])
    Suppression.objects.create(channel="email", address="dead@example.com", reason="hard_bounce")
    campaign = make_campaign(audience_filter={"tags": {"$in": ["next"]}})
    run = CampaignRun.objects.create(
        campaign=campaign, number=1, template_version=campaign.template.versions.get()
    )
    pipeline.run_materialise(run=run)
    assert list(Delivery.objects.filter(run=run).values_list("locator", flat=True)) == [
        "kept@example.com"
    ]


def test_an_address_suppressed_after_the_launch_is_skipped_when_its_turn_comes(settings):
    with SMTPSink() as sink:
        use_sink(settings, sink)
        ContactFactory(email="fine@example.com", tags=["later"])
        ContactFactory(email="bounced-elsewhere@example.com", tags=["later"])
        campaign = make_campaign(audience_filter={"tags": {"$in": ["later"]}})
        run = make_run(campaign)
        pipeline.run_materialise(run=run)
        # Another send's bounce suppresses an address of this run before its turn comes.
        Suppression.objects.create(
            channel="email",
            address="bounced-elsewhere@example.com",
            reason="hard_bounce",
            detail="550 5.1.1 no such user",
            source="SendGrid",
        )
        send_all(run)
        rows = dict(Delivery.objects.filter(run=run).values_list("locator", "status"))
        assert rows == {"fine@example.com": "sent", "bounced-elsewhere@example.com": "skipped"}
        skipped = Delivery.objects.get(run=run, status="skipped")
        assert skipped.error.startswith("suppressed: hard bounce — 550 5.1.1 no such user")
        assert [m["To"] for m in sink.messages] == ["fine@example.com"]

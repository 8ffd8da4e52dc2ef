"""How /webhooks/<key>/ handles a request around the provider's own code: unknown, disabled
and oversized requests are answered before anything is stored; a request is stored before
its parser runs; the changes and the recorded outcome commit together, so a failure while
applying leaves nothing half-applied; and the deliveries an event names are found whichever
way it names them (Herald's id, the provider's id, the campaign's external id and the
address), for one event or a batch of hundreds."""

import json
import uuid

import pytest

from campaigns import pipeline
from campaigns.delivery import feedback
from campaigns.delivery.feedback import UpdateDeliveryStatus, WebhookResult, actions_apply
from campaigns.delivery.providers import DeliveryStatus, Provider, WebhookCall, provider_register
from campaigns.models import CampaignRun, Delivery, DeliveryEvent
from config.core.models import Integration
from integrations import webhooks
from integrations.models import WebhookRequest
from tests.campaigns.test_pipeline import make_campaign
from tests.contacts.factories import ContactFactory
from tests.support.webhooks import post_applied

pytestmark = pytest.mark.django_db

# What the parser of the provider below saw in the database when it ran.
SEEN_STORED: list[bool] = []


@provider_register
class RecordingProvider(Provider):
    """Its body is a JSON list of {"id": provider message id, "event": event id}, each a
    delivered event; its parser notes whether the request was already stored."""

    kind = "test-recording"
    channels = frozenset({"email"})

    def webhook_authenticate(self, call: WebhookCall) -> None:
        return None

    def webhook_parse(self, call: WebhookCall) -> WebhookResult:
        SEEN_STORED.append(
            WebhookRequest.objects.filter(integration=self.integration, outcome="received")
            .filter(body=call.body)
            .exists()
        )
        return WebhookResult(
            actions=[
                UpdateDeliveryStatus(
                    status=DeliveryStatus.DELIVERED, message_id=item["id"], event_id=item["event"]
                )
                for item in call.json()
            ]
        )


@pytest.fixture
def integration():
    return Integration.objects.create(kind="test-recording", name="Recording", channels=["email"])


def sent(email: str, provider_id: str = "") -> Delivery:
    return Delivery.objects.create(
        channel="email", locator=email, status="sent", provider_message_id=provider_id
    )


def post(client, key: str, body) -> object:
    return post_applied(
        client, f"/webhooks/{key}/", data=json.dumps(body), content_type="application/json"
    )


def test_an_unknown_key_is_404_and_a_disabled_integration_403_and_neither_is_stored(
    client, integration
):
    response = post(client, "no-such-key", [])
    assert response.status_code == 404
    assert "no integration" in response.json()["detail"]
    Integration.objects.filter(pk=integration.pk).update(enabled=False)
    response = post(client, integration.webhook_key, [])
    assert response.status_code == 403
    assert "Recording is disabled" in response.json()["detail"]
    assert not WebhookRequest.objects.exists()


def test_a_webhook_to_an_integration_whose_provider_takes_none_is_404_not_a_server_error(client):
    smtp = Integration.objects.create(kind="smtp", name="Office mail", channels=["email"])

    response = post(client, smtp.webhook_key, [])

    assert response.status_code == 404
    assert response.json()["detail"] == "the integration Office mail takes no webhooks"
    stored = WebhookRequest.objects.get()
    assert (stored.outcome, stored.response_status) == ("failed", 404)


def test_a_body_over_the_limit_is_413_naming_the_field_and_is_not_stored(
    client, integration, monkeypatch
):
    monkeypatch.setattr(webhooks, "WEBHOOK_MAX_BYTES", 64)
    response = post(client, integration.webhook_key, [{"id": "x" * 100, "event": "e"}])
    assert response.status_code == 413
    assert response.json()["field"] == "body"
    assert not WebhookRequest.objects.exists()
    assert post(client, "no-such-key", [{"id": "x" * 100}]).status_code == 404


def test_a_content_length_that_is_not_a_number_is_400_naming_the_header(client, integration):
    response = client.post(
        f"/webhooks/{integration.webhook_key}/",
        data=b"[]",
        content_type="application/json",
        CONTENT_LENGTH="ten",
    )
    assert response.status_code == 400
    assert response.json()["field"] == "Content-Length"
    assert not WebhookRequest.objects.exists()


def test_the_request_is_stored_with_its_headers_before_the_parser_runs_and_applied_once(
    client, integration
):
    delivery = sent("reader@example.com", "pm-1")
    SEEN_STORED.clear()
    response = post_applied(
        client,
        f"/webhooks/{integration.webhook_key}/?attempt=2",
        data=json.dumps([{"id": "pm-1", "event": "ev-1"}]),
        content_type="application/json",
        HTTP_X_SIGNATURE="abc",
    )
    assert response.status_code == 200
    assert SEEN_STORED == [True]
    stored = WebhookRequest.objects.get()
    assert stored.outcome == "applied"
    assert (stored.actions, stored.applied, stored.response_status) == (1, 1, 200)
    assert stored.headers["x-signature"] == "abc"
    assert stored.query == {"attempt": ["2"]}
    assert stored.received_at is not None and stored.processed_at is not None
    delivery.refresh_from_db()
    assert delivery.status == "delivered"


def test_a_failure_while_applying_rolls_back_every_change_and_records_the_failure(
    client, integration, monkeypatch
):
    first, second = sent("one@example.com", "pm-a"), sent("two@example.com", "pm-b")

    def broken(*args, **kwargs):
        raise RuntimeError("suppression list unavailable")

    # The statuses are written first; what comes after them fails.
    monkeypatch.setattr(feedback, "_soft_bounce_limit_reached", broken)
    monkeypatch.setattr(
        RecordingProvider,
        "webhook_parse",
        lambda self, call: WebhookResult(
            actions=[
                UpdateDeliveryStatus(status=DeliveryStatus.DELIVERED, message_id="pm-a"),
                UpdateDeliveryStatus(status=DeliveryStatus.SOFT_BOUNCED, message_id="pm-b"),
            ]
        ),
    )
    # The service got its 200 once the request was queued; the drain's failure is recorded.
    response = post(client, integration.webhook_key, [])
    assert response.status_code == 200
    stored = WebhookRequest.objects.get()
    assert stored.outcome == "failed"
    assert "suppression list unavailable" in stored.error
    assert (stored.actions, stored.applied) == (2, 0)
    assert [Delivery.objects.get(pk=d.pk).status for d in (first, second)] == ["sent", "sent"]
    assert not DeliveryEvent.objects.exists()


def test_deliveries_are_found_by_herald_id_provider_id_and_campaign_with_address_at_once():
    integration = Integration.objects.create(kind="test-recording", name="Ext", channels=["email"])
    other = Integration.objects.create(kind="test-recording", name="Other", channels=["email"])
    by_request = sent("first@example.com")
    by_provider = sent("second@example.com", "prov-2")
    contact = ContactFactory(email="Third@Example.com", tags=["ext"])
    campaign = make_campaign(audience_filter={"tags": {"$in": ["ext"]}})
    run = CampaignRun.objects.create(
        campaign=campaign,
        number=1,
        template_version=campaign.template.versions.get(),
        integration=integration,
        external_id="camp-9",
    )
    pipeline.run_materialise(run=run)
    by_run = Delivery.objects.get(run=run, contact=contact)
    Delivery.objects.filter(pk=by_run.pk).update(status="sent")
    actions = [
        UpdateDeliveryStatus(status=DeliveryStatus.DELIVERED, herald_id=by_request.request_id.hex),
        UpdateDeliveryStatus(status=DeliveryStatus.DELIVERED, message_id="prov-2"),
        UpdateDeliveryStatus(
            status=DeliveryStatus.DELIVERED, external_id="camp-9", email=" Third@Example.com "
        ),
        UpdateDeliveryStatus(status=DeliveryStatus.DELIVERED, message_id="never-sent"),
        UpdateDeliveryStatus(
            status=DeliveryStatus.DELIVERED, herald_id=f"<{uuid.uuid4().hex}@mail.example>"
        ),
    ]
    # The campaign's external id belongs to `integration`: another's events do not match it.
    assert actions_apply(actions[2:3], integration=other).unmatched == 1
    report = actions_apply(actions, integration=integration)
    assert report.changes["delivered"] == 3
    assert report.unmatched == 2
    for delivery in (by_request, by_provider, by_run):
        delivery.refresh_from_db()
        assert delivery.status == "delivered"


def test_a_batch_of_hundreds_of_events_finds_and_moves_every_delivery_once():
    deliveries = Delivery.objects.bulk_create(
        Delivery(
            channel="email",
            locator=f"r{n}@example.com",
            status="sent",
            provider_message_id=f"b-{n}",
        )
        for n in range(250)
    )
    actions = [
        UpdateDeliveryStatus(status=DeliveryStatus.DELIVERED, message_id=f"b-{n}", event_id=f"e{n}")
        for n in range(250)
    ]
    assert actions_apply(actions).changes["delivered"] == 250
    assert actions_apply(actions).total == 0
    ids = [d.pk for d in deliveries]
    assert Delivery.objects.filter(pk__in=ids, status="delivered").count() == 250
    assert DeliveryEvent.objects.filter(delivery_id__in=ids).count() == 250

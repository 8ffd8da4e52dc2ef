"""What provider feedback does to analytics: a campaign sent through a real SMTP server,
then deliveries, bounces, a complaint, opens and clicks reported through a webhook, show in
the run stats (found by the beat's incremental refresh), the CRM campaigns API's analytics
and the campaign report page; and a provider's opens and clicks count exactly as the
tracking pixel's and redirect's do."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import pipeline, tracking
from campaigns.analytics import HEARTBEAT_NAME, stats_refresh
from campaigns.delivery.feedback import UpdateDeliveryStatus, WebhookResult, actions_apply
from campaigns.delivery.providers import (
    DeliveryStatus,
    Provider,
    WebhookCall,
    WebhookRefused,
    provider_register,
)
from campaigns.ledger import deliveries_record
from campaigns.models import CampaignRun, Delivery, DeliveryEvent, RunStats, RunStatus
from config.core.models import Heartbeat, Integration
from contacts.models import Suppression
from tests.campaigns.test_pipeline import make_campaign, send_all, vip
from tests.support.smtp import SMTPSink, use_sink
from tests.support.webhooks import post_applied

pytestmark = pytest.mark.django_db


@provider_register
class MessageIdEchoProvider(Provider):
    """A provider whose webhook body is a JSON list of {status, messageId (the Message-ID
    Herald gave the mail), event, detail, url}, authenticated by a token header."""

    kind = "test-fb-analytics"
    channels = frozenset({"email"})

    def webhook_authenticate(self, call: WebhookCall) -> None:
        if call.header("x-token") != "t0ken":
            raise WebhookRefused("wrong token")

    def webhook_parse(self, call: WebhookCall) -> WebhookResult:
        return WebhookResult(
            actions=[
                UpdateDeliveryStatus(
                    status=DeliveryStatus(item["status"]),
                    herald_id=item["messageId"],
                    event_id=item["event"],
                    detail=item.get("detail", ""),
                    url=item.get("url", ""),
                )
                for item in call.json()
            ]
        )


@pytest.fixture
def sink(settings):
    with SMTPSink() as server:
        use_sink(settings, server)
        yield server


@pytest.fixture
def integration():
    # No channels: the mail itself goes through the environment's SMTP server (the sink);
    # this integration only reports back.
    return Integration.objects.create(kind="test-fb-analytics", name="Echo ESP", channels=[])


def webhook(client, integration, events):
    response = post_applied(
        client,
        f"/webhooks/{integration.webhook_key}/",
        data=json.dumps(events),
        content_type="application/json",
        HTTP_X_TOKEN="t0ken",
    )
    assert response.status_code == 200, response.content


@pytest.fixture
def sent_run(sink):
    """Five recipients, sent through SMTP a day ago; the beat's refresh has seen the sends."""
    people = vip(5)
    campaign = make_campaign(name="Feedback report")
    run = CampaignRun.objects.create(
        campaign=campaign, number=1, template_version=campaign.template.versions.get()
    )
    pipeline.run_materialise(run=run)
    send_all(run)
    assert len(sink.messages) == 5
    day_ago = timezone.now() - timedelta(days=1)
    CampaignRun.objects.filter(pk=run.pk).update(
        status=RunStatus.COMPLETED, started_at=day_ago, finished_at=day_ago
    )
    DeliveryEvent.objects.filter(delivery__run=run).update(at=day_ago)
    # The previous beat refresh ran an hour ago, after the sends: only what arrives from
    # now on can bring the run back into the incremental refresh.
    stats_refresh(run_ids=[run.pk])
    Heartbeat.objects.update_or_create(
        name=HEARTBEAT_NAME, defaults={"seen_at": timezone.now() - timedelta(hours=1)}
    )
    ids = {p.email: Delivery.objects.get(run=run, contact=p).message_id for p in people}
    return {"run": run, "campaign": campaign, "people": people, "message_ids": ids}


def test_feedback_reaches_run_stats_the_crm_analytics_api_and_the_report_page(
    client, api, full_key, admin_user, integration, sent_run
):
    run = sent_run["run"]
    stats = RunStats.objects.get(run=run, channel="email")
    assert (stats.sends, stats.deliveries, stats.bounces, stats.unique_opens) == (5, 0, 0, 0)
    m = [sent_run["message_ids"][p.email] for p in sent_run["people"]]
    url = "https://shop.example/sale"
    webhook(
        client,
        integration,
        [
            {"status": "delivered", "messageId": m[0], "event": "d0"},
            {"status": "opened", "messageId": m[0], "event": "o0"},
            {"status": "clicked", "messageId": m[0], "event": "c0", "url": url},
            {"status": "delivered", "messageId": m[1], "event": "d1"},
            {"status": "opened", "messageId": m[1], "event": "o1a"},
            {"status": "opened", "messageId": m[1], "event": "o1b"},
            {"status": "bounced", "messageId": m[2], "event": "b2", "detail": "550 5.1.1 gone"},
            {"status": "complained", "messageId": m[3], "event": "x3"},
            {"status": "soft_bounced", "messageId": m[4], "event": "s4", "detail": "452 full"},
        ],
    )
    # The same batch again (providers retry): nothing counts twice.
    webhook(
        client,
        integration,
        [
            {"status": "opened", "messageId": m[1], "event": "o1b"},
            {"status": "bounced", "messageId": m[2], "event": "b2", "detail": "550 5.1.1 gone"},
        ],
    )

    result = stats_refresh()  # the beat's incremental refresh
    assert result.runs >= 1
    stats = RunStats.objects.get(run=run, channel="email")
    assert stats.sends == 5
    assert stats.deliveries == 3  # two delivered, one complained about (it reached the inbox)
    assert stats.bounces == 2  # one hard, one soft
    assert stats.complaints == 1
    assert (stats.opens, stats.unique_opens) == (3, 2)  # m0 once, m1 twice
    assert (stats.clicks, stats.unique_clicks) == (1, 1)
    assert Suppression.objects.filter(reason="hard_bounce").count() == 1
    assert Suppression.objects.filter(reason="complaint").count() == 1

    campaign = sent_run["campaign"]
    body = api.get(f"/api/crm/marketing/campaigns/{campaign.pk}/analytics", key=full_key).json()
    assert (body["sends"], body["deliveries"], body["bounces"], body["complaints"]) == (5, 3, 2, 1)
    assert (body["opens"], body["uniqueOpens"], body["clicks"], body["uniqueClicks"]) == (
        3,
        2,
        1,
        1,
    )
    assert body["openRate"] == round(2 / 3, 4)  # unique opens over sends minus bounces
    assert body["links"] == [{"url": url, "clicks": 1, "uniqueClicks": 1}]
    assert sum(hour["opens"] for hour in body["timeline"]) == 3
    assert sum(hour["clicks"] for hour in body["timeline"]) == 1

    client.force_login(admin_user)
    page = client.get(f"/campaigns/{campaign.pk}/report/").content.decode()
    tiles = dict(re.findall(r"<small>([A-Za-z ()]+)</small><strong[^>]*>(\d+)</strong>", page))
    assert tiles["Bounces"] == "2"
    assert tiles["Complaints"] == "1"
    assert tiles["Opens (unique)"] == "2"
    assert tiles["Clicks (unique)"] == "1"
    row = re.search(r'data-testid="channel-row">(.*?)</tr>', page).group(1)
    cells = re.findall(r'<td class="num"[^>]*>(\d+)', row)
    # Recipients, Sent, Delivered, Unique opens, Machine opens, Unique clicks, Bounces,
    # Unsubscribes, Failed. Delivered is what the provider reported delivered: the two
    # "delivered" reports and the complaint (it came from the inbox); the opens add nothing.
    assert cells == ["5", "5", "3", "2", "0", "1", "2", "0", "0"]
    assert re.search(r'data-testid="total-delivered">3<', page)
    assert "as reported delivered by the provider" in page


def test_a_bounce_alone_brings_an_old_run_back_into_the_incremental_refresh(
    client, integration, sent_run
):
    run = sent_run["run"]
    first = sent_run["message_ids"][sent_run["people"][0].email]
    assert run.pk not in _refreshed_runs()
    webhook(client, integration, [{"status": "bounced", "messageId": first, "event": "b"}])
    stats_refresh()
    assert RunStats.objects.get(run=run, channel="email").bounces == 1


def _refreshed_runs() -> set[int]:
    """Runs an incremental refresh would pick now, without changing the heartbeat."""
    from campaigns.analytics import _runs_to_refresh

    since = Heartbeat.objects.get(name=HEARTBEAT_NAME).seen_at
    return set(_runs_to_refresh(since=since))


def two_sent(**extra) -> tuple[Delivery, Delivery]:
    rows = [
        Delivery.objects.create(
            channel="email",
            locator=f"{name}@example.com",
            status="sent",
            # Sent a while ago: a click seconds after the send is a link scanner's.
            sent_at=timezone.now() - timedelta(hours=1),
            provider_message_id=f"pm-{name}",
            **extra,
        )
        for name in ("pixel", "provider")
    ]
    return rows[0], rows[1]


def engagement(delivery: Delivery) -> tuple:
    delivery.refresh_from_db()
    return (
        delivery.status,
        delivery.open_count,
        delivery.click_count,
        delivery.opened_at is not None,
        delivery.clicked_at is not None,
        list(delivery.events.values_list("status", "url")),
    )


def provider(status: str, delivery: Delivery, event: str, url: str = "") -> None:
    actions_apply(
        [
            UpdateDeliveryStatus(
                status=DeliveryStatus(status),
                message_id=delivery.provider_message_id,
                event_id=event,
                url=url,
            )
        ]
    )


def test_a_provider_click_counts_as_the_click_redirect_does_and_proves_an_open():
    pixel, reported = two_sent()
    tracking.delivery_click_record(delivery_id=pixel.pk, url="https://a.example/")
    provider("clicked", reported, "c1", url="https://a.example/")
    assert engagement(pixel) == engagement(reported)
    status, opens, clicks, opened, clicked, _ = engagement(reported)
    assert (status, opens, clicks, opened, clicked) == ("clicked", 0, 1, True, True)


def test_opens_after_a_click_still_count_and_the_status_stays_clicked():
    pixel, reported = two_sent()
    tracking.delivery_click_record(delivery_id=pixel.pk, url="https://a.example/")
    tracking.delivery_open_record(delivery_id=pixel.pk)
    tracking.delivery_open_record(delivery_id=pixel.pk)
    provider("clicked", reported, "c1", url="https://a.example/")
    provider("opened", reported, "o1")
    provider("opened", reported, "o2")
    provider("opened", reported, "o2")  # the same event again: once
    assert engagement(pixel) == engagement(reported)
    assert engagement(reported)[:3] == ("clicked", 2, 1)


def test_an_open_of_an_unsubscribed_message_counts_without_moving_it_back():
    pixel, reported = two_sent()
    Delivery.objects.filter(pk__in=[pixel.pk, reported.pk]).update(status="unsubscribed")
    tracking.delivery_open_record(delivery_id=pixel.pk)
    provider("opened", reported, "o1")
    assert engagement(pixel) == engagement(reported)
    assert engagement(reported)[:2] == ("unsubscribed", 1)


def test_a_delivery_report_faster_than_the_senders_record_still_counts_the_send():
    campaign = make_campaign(name="Race")
    run = CampaignRun.objects.create(campaign=campaign, number=1)
    row = Delivery.objects.create(
        run=run, channel="email", locator="fast@example.com", provider_message_id="pm-fast"
    )
    provider("delivered", row, "d1")
    # The worker's own record of the accept arrives afterwards and changes nothing.
    deliveries_record(provider="smtp", outcomes=[(row.pk, "sent", "", 0.0, "")])
    row.refresh_from_db()
    assert row.status == "delivered"
    assert row.sent_at is not None and row.delivered_at is not None
    stats_refresh(run_ids=[run.pk])
    stats = RunStats.objects.get(run=run, channel="email")
    assert (stats.sends, stats.deliveries) == (1, 1)

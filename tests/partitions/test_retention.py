"""Retention of the ledger: a month past HERALD_RETENTION_DELIVERIES_DAYS is rolled up, then
dropped with its history, and the campaign report reads the same figures after the drop."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from campaigns.analytics import campaign_analytics, campaign_delivered, stats_refresh
from campaigns.models import Campaign, CampaignRun, Delivery, DeliveryEvent, RunStatus
from campaigns.retention import LEDGER
from config.core.partitions import month_add, month_start, partition_months, retention_apply
from marketing.attribution import conversions_refresh
from marketing.models import Order
from tests.partitions.support import at, delivery, history, ledger_months, run_started

pytestmark = pytest.mark.django_db

THIS_MONTH = month_start(timezone.now().date())
# Wholly older than the default retention (730 days).
OLD_MONTH = month_add(THIS_MONTH, -26)


def report(campaign: Campaign) -> dict:
    """Everything the campaign report shows as figures (not when they were refreshed)."""
    figures = campaign_analytics(campaign)
    figures.pop("refreshed_at")
    figures.pop("campaign")
    return {"analytics": figures, "delivered": campaign_delivered(campaign)}


def run_with_history(campaign: Campaign, month, number: int) -> CampaignRun:
    run = run_started(campaign, at(month, day=3), number=number, status=RunStatus.COMPLETED)
    t0 = at(month, day=3, hour=9)
    delivery(run, 1, status="sent", sent_at=t0)
    opened = delivery(run, 2, status="opened", sent_at=t0, opened_at=t0, open_count=2)
    clicked = delivery(
        run,
        3,
        status="clicked",
        sent_at=t0,
        opened_at=t0,
        clicked_at=t0,
        open_count=1,
        click_count=2,
    )
    delivery(run, 4, status="bounced", sent_at=t0, failed_at=t0)
    delivery(run, 5, channel="sms", status="delivered", sent_at=t0, delivered_at=t0)
    complained = delivery(run, 6, status="complained", sent_at=t0, opened_at=t0, open_count=1)
    history(opened, "opened", t0 + timedelta(hours=1))
    history(opened, "opened", t0 + timedelta(hours=2))
    history(clicked, "opened", t0 + timedelta(hours=1))
    history(clicked, "clicked", t0 + timedelta(hours=1), url="https://shop.example/sale")
    history(clicked, "clicked", t0 + timedelta(hours=2), url="https://shop.example/new")
    history(complained, "unsubscribed", t0 + timedelta(hours=3))
    history(complained, "complained", t0 + timedelta(hours=4))
    Order.objects.create(
        external_order_id=f"order-{run.pk}",
        external_customer_id="c1",
        status="DELIVERED",
        total_cost=Decimal("42.50"),
        currency="EUR",
        date=t0 + timedelta(hours=5),
        attribution="click",
        attributed_delivery=clicked,
        attributed_campaign=campaign,
    )
    return run


@pytest.fixture
def campaign():
    ledger_months(OLD_MONTH)
    campaign = Campaign.objects.create(name="Spring", channels=["email", "sms"])
    old = run_with_history(campaign, OLD_MONTH, 1)
    new = run_with_history(campaign, THIS_MONTH, 2)
    stats_refresh(run_ids=[old.pk, new.pk])
    conversions_refresh(run_ids=[old.pk, new.pk])
    return campaign


def test_dropping_a_month_keeps_the_campaign_report_the_same(campaign):
    before = report(campaign)
    assert before["analytics"]["totals"]["conversions"] == 2
    assert len(before["analytics"]["links"]) == 2

    result = retention_apply(LEDGER)

    assert result.dropped == [f"campaigns_delivery_p{OLD_MONTH:%Y%m}"]
    assert OLD_MONTH not in partition_months(LEDGER)
    assert not Delivery.objects.filter(period=OLD_MONTH).exists()
    assert not DeliveryEvent.objects.filter(period=OLD_MONTH).exists()
    assert report(campaign) == before
    # And it stays so after the beat's refreshes, which recompute from what is left.
    stats_refresh()
    stats_refresh(run_ids=list(campaign.runs.values_list("pk", flat=True)))
    conversions_refresh()
    assert report(campaign) == before


def test_a_dropped_month_leaves_no_dangling_links(campaign):
    retention_apply(LEDGER)

    orders = Order.objects.filter(attributed_campaign=campaign)
    assert orders.count() == 2
    # The old run's order keeps its attribution, without the delivery that is gone.
    assert orders.filter(attributed_delivery__isnull=True).count() == 1
    assert orders.filter(attributed_delivery__isnull=False).count() == 1
    assert campaign.runs.filter(ledger_dropped_at__isnull=False).count() == 1


def test_a_month_with_a_running_run_is_kept(campaign):
    CampaignRun.objects.filter(campaign=campaign, number=1).update(status=RunStatus.RUNNING)

    result = retention_apply(LEDGER)

    assert result.dropped == []
    assert list(result.kept) == [f"campaigns_delivery_p{OLD_MONTH:%Y%m}"]
    assert Delivery.objects.filter(period=OLD_MONTH).count() == 6


def test_retention_zero_keeps_forever(campaign, settings):
    settings.HERALD_RETENTION_DELIVERIES_DAYS = 0
    assert retention_apply(LEDGER).dropped == []
    assert OLD_MONTH in partition_months(LEDGER)


def test_a_month_inside_the_retention_is_kept(campaign, settings):
    settings.HERALD_RETENTION_DELIVERIES_DAYS = 365 * 3
    assert retention_apply(LEDGER).dropped == []


def test_beat_runs_the_partition_and_retention_tasks_daily():
    schedule = django_settings.CELERY_BEAT_SCHEDULE
    tasks = {entry["task"]: entry for entry in schedule.values()}
    assert "core.partitions_ensure" in tasks
    retention = [e for e in schedule.values() if e["task"] == "core.retention_apply"]
    assert ["campaigns_delivery"] in [entry["args"] for entry in retention]

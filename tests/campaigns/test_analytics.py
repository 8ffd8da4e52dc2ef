"""Rollup of the delivery ledger into RunStats/MetricBucket, from hand-made ledger rows."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from campaigns.analytics import (
    EVENT_MARGIN,
    aggregated_metrics,
    campaign_analytics,
    dashboard_metrics,
    day_bounds,
    stats_refresh,
)
from campaigns.models import (
    Campaign,
    CampaignRun,
    Delivery,
    DeliveryEvent,
    MetricBucket,
    RunStats,
    RunStatus,
)
from contacts.models import Contact

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)


def make_campaign(name: str = "Spring launch", **extra) -> Campaign:
    return Campaign.objects.create(name=name, channels=["email", "sms"], **extra)


def make_run(campaign: Campaign, number: int = 1, **extra) -> CampaignRun:
    return CampaignRun.objects.create(campaign=campaign, number=number, **extra)


def make_delivery(run: CampaignRun, n: int, *, channel: str = "email", **fields) -> Delivery:
    contact = Contact.objects.create(email=f"r{run.pk}-{n}-{channel}@example.com")
    return Delivery.objects.create(
        run=run, contact=contact, channel=channel, locator=contact.email, **fields
    )


def add_event(delivery: Delivery, status: str, at, url: str = "") -> DeliveryEvent:
    event = DeliveryEvent.objects.create(delivery=delivery, status=status, url=url)
    # `at` is auto_now_add; hand-made history needs its own times.
    DeliveryEvent.objects.filter(pk=event.pk).update(at=at)
    return event


@pytest.fixture
def ledger():
    """One run, email and SMS rows in every interesting state, with their event history."""
    now = timezone.now().replace(minute=30, second=0, microsecond=0)
    t0 = now - 3 * HOUR
    campaign = make_campaign()
    run = make_run(campaign, reach=9)
    sent = {"status": "sent", "sent_at": t0}
    make_delivery(run, 1, status="queued")
    make_delivery(run, 2, **sent)
    opened = make_delivery(run, 3, status="opened", sent_at=t0, opened_at=t0, open_count=3)
    clicked = make_delivery(
        run,
        4,
        status="clicked",
        sent_at=t0,
        opened_at=t0,
        clicked_at=t0,
        open_count=1,
        click_count=2,
    )
    make_delivery(run, 5, status="bounced", sent_at=t0, failed_at=t0)
    make_delivery(run, 6, status="failed", failed_at=t0, error="550 no such user")
    unsub = make_delivery(run, 7, status="complained", sent_at=t0, opened_at=t0, open_count=1)
    make_delivery(run, 8, status="skipped")
    make_delivery(run, 9, channel="sms", status="delivered", sent_at=t0, delivered_at=t0)
    # History: opens in two hours, clicks on two links, an unsubscribe then a complaint.
    for at in (t0, t0 + HOUR, t0 + HOUR):
        add_event(opened, "opened", at)
    add_event(clicked, "opened", t0)
    add_event(clicked, "clicked", t0 + HOUR, url="https://shop.example.com/spring")
    add_event(clicked, "clicked", t0 + 2 * HOUR, url="https://shop.example.com/spring")
    add_event(unsub, "opened", t0 + HOUR)
    add_event(unsub, "unsubscribed", t0 + HOUR)
    add_event(unsub, "complained", t0 + 2 * HOUR)
    return {"campaign": campaign, "run": run, "t0": t0}


def stats_of(run, channel="email") -> RunStats:
    return RunStats.objects.get(run=run, channel=channel)


def test_rollup_counts_every_state_of_the_ledger(ledger):
    stats_refresh(run_ids=[ledger["run"].pk])
    email = stats_of(ledger["run"])
    assert email.recipients == 8
    assert email.sends == 5  # sent, opened, clicked, bounced, complained
    assert email.deliveries == 3  # proven by an open or click
    assert (email.opens, email.unique_opens) == (5, 3)
    assert (email.clicks, email.unique_clicks) == (2, 1)
    assert email.bounces == 1
    assert email.complaints == 1
    assert email.unsubscribes == 1  # the complainer had unsubscribed first
    assert email.failures == 1
    assert email.skipped == 1
    # Nothing in the ledger reports replies or orders: zero, not invented.
    assert (email.replies, email.conversions, email.revenue) == (0, 0, 0)
    sms = stats_of(ledger["run"], "sms")
    assert (sms.recipients, sms.sends, sms.deliveries, sms.opens) == (1, 1, 1, 0)


def test_a_complaint_after_a_bounce_still_counts_the_bounce(ledger):
    delivery = make_delivery(
        ledger["run"], 20, status="complained", sent_at=ledger["t0"], failed_at=ledger["t0"]
    )
    add_event(delivery, "bounced", ledger["t0"])
    stats_refresh(run_ids=[ledger["run"].pk])
    email = stats_of(ledger["run"])
    assert (email.bounces, email.complaints, email.unsubscribes) == (2, 2, 1)


def test_timeline_buckets_opens_and_clicks_by_hour(ledger):
    stats_refresh(run_ids=[ledger["run"].pk])
    t0 = ledger["t0"].replace(minute=0)
    buckets = {
        b.hour: (b.opens, b.clicks)
        for b in MetricBucket.objects.filter(run=ledger["run"], channel="email")
    }
    assert buckets == {t0: (2, 0), t0 + HOUR: (3, 1), t0 + 2 * HOUR: (0, 1)}


def test_refresh_twice_gives_the_same_rows(ledger):
    stats_refresh(run_ids=[ledger["run"].pk])
    first = list(RunStats.objects.order_by("channel").values(*_compared()))
    buckets = list(MetricBucket.objects.order_by("hour").values("hour", "opens", "clicks"))
    stats_refresh(run_ids=[ledger["run"].pk])
    stats_refresh()
    assert list(RunStats.objects.order_by("channel").values(*_compared())) == first
    assert list(MetricBucket.objects.order_by("hour").values("hour", "opens", "clicks")) == buckets


def _compared():
    return ("channel", "recipients", "sends", "opens", "unique_opens", "clicks", "bounces")


def test_refresh_keeps_conversions_and_revenue_filled_by_orders(ledger):
    stats_refresh(run_ids=[ledger["run"].pk])
    RunStats.objects.filter(run=ledger["run"], channel="email").update(conversions=2, revenue=99)
    stats_refresh(run_ids=[ledger["run"].pk])
    assert (stats_of(ledger["run"]).conversions, stats_of(ledger["run"]).revenue) == (2, 99)


def test_incremental_refresh_picks_running_runs_and_fresh_events_only():
    campaign = make_campaign()
    long_ago = timezone.now() - timedelta(days=60)
    old = make_run(campaign, 1, status=RunStatus.COMPLETED, finished_at=long_ago)
    CampaignRun.objects.filter(pk=old.pk).update(started_at=long_ago)
    old_delivery = make_delivery(old, 1, status="opened", sent_at=long_ago, open_count=1)
    add_event(old_delivery, "opened", long_ago)
    running = make_run(campaign, 2)
    make_delivery(running, 1, status="sent", sent_at=timezone.now())

    first = stats_refresh()
    assert first.runs == 1
    assert RunStats.objects.filter(run=running).exists()
    assert not RunStats.objects.filter(run=old).exists()

    # A late open of the old run's message brings that run into the next refresh.
    Delivery.objects.filter(pk=old_delivery.pk).update(open_count=2)
    add_event(old_delivery, "opened", timezone.now())
    stats_refresh()
    assert stats_of(old).opens == 2
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    assert MetricBucket.objects.get(run=old, hour=hour).opens == 1
    # The 60-day-old bucket was never rescanned by the incremental refresh.
    assert not MetricBucket.objects.filter(run=old, hour__lt=hour).exists()


def test_incremental_refresh_looks_back_from_the_previous_one():
    from config.core.models import Heartbeat

    campaign = make_campaign()
    long_ago = timezone.now() - timedelta(days=60)
    run = make_run(campaign, 1, status=RunStatus.COMPLETED, finished_at=long_ago)
    CampaignRun.objects.filter(pk=run.pk).update(started_at=long_ago)
    delivery = make_delivery(run, 1, status="opened", sent_at=long_ago, open_count=1)
    previous = timezone.now() - timedelta(days=3)
    Heartbeat.objects.create(name="analytics", seen_at=previous)
    # Stamped inside the margin before the previous refresh: a transaction that committed late.
    add_event(delivery, "opened", previous - EVENT_MARGIN + timedelta(seconds=30))
    assert stats_refresh().runs == 1
    assert stats_of(run).opens == 1


def test_campaign_analytics_reads_totals_channels_runs_timeline_and_links(ledger):
    second = make_run(ledger["campaign"], 2, status=RunStatus.COMPLETED)
    make_delivery(second, 1, status="sent", sent_at=ledger["t0"])
    stats_refresh(run_ids=[ledger["run"].pk, second.pk])
    data = campaign_analytics(ledger["campaign"])
    assert data["totals"]["sends"] == 7
    assert data["channels"]["email"]["sends"] == 6
    assert data["channels"]["sms"]["sends"] == 1
    assert [run["metrics"]["sends"] for run in data["runs"]] == [6, 1]
    assert sum(row["opens"] for row in data["timeline"]) == 5
    assert data["links"] == [
        {"url": "https://shop.example.com/spring", "clicks": 2, "unique_clicks": 1}
    ]
    # 7 sends, 1 bounce: rates over the 6 that reached someone.
    assert data["totals"]["open_rate"] == round(3 / 6, 4)


def test_aggregated_metrics_only_counts_runs_started_in_the_range():
    campaign = make_campaign()
    april = make_run(campaign, 1, status=RunStatus.COMPLETED)
    may = make_run(campaign, 2, status=RunStatus.COMPLETED)
    CampaignRun.objects.filter(pk=april.pk).update(
        started_at=datetime(2026, 4, 30, 23, 0, tzinfo=UTC)
    )
    CampaignRun.objects.filter(pk=may.pk).update(started_at=datetime(2026, 5, 1, 0, 0, tzinfo=UTC))
    make_delivery(april, 1, status="sent", sent_at=timezone.now())
    make_delivery(may, 1, status="sent", sent_at=timezone.now())
    make_delivery(may, 2, status="sent", sent_at=timezone.now())
    stats_refresh(run_ids=[april.pk, may.pk])
    start, end = day_bounds(date(2026, 4, 1), date(2026, 4, 30), "UTC")
    data = aggregated_metrics([campaign.pk, 999999], start, end)
    assert data["totals"]["sends"] == 1
    assert data["runs"] == 1
    assert data["unknown_ids"] == [999999]


def test_dashboard_metrics_cover_the_last_days_and_list_running_runs(ledger):
    old = make_run(ledger["campaign"], 2, status=RunStatus.COMPLETED)
    CampaignRun.objects.filter(pk=old.pk).update(started_at=timezone.now() - timedelta(days=45))
    make_delivery(old, 1, status="sent", sent_at=timezone.now())
    stats_refresh(run_ids=[ledger["run"].pk, old.pk])
    data = dashboard_metrics(days=30)
    assert data["totals"]["sends"] == 6
    assert data["totals"]["unsubscribes"] == 1
    assert [item["run"].pk for item in data["running"]] == [ledger["run"].pk]
    assert data["running"][0]["done"] == 8  # 6 sent + 1 failed + 1 skipped of 9

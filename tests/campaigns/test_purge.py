"""The org-level purge job: deleted campaigns past the retention age go for good with their
runs and ledger rows (in batches), other campaigns stay; the command, the API and the beat
task; every purge in the audit log."""

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from auditlog.models import LogEntry
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from campaigns import purge
from campaigns.models import (
    Campaign,
    CampaignRun,
    Delivery,
    DeliveryEvent,
    MetricBucket,
    RunStats,
)
from campaigns.tasks import purge_deleted_task
from marketing.audit import audit_line
from marketing.models import Order
from tests.campaigns.support import CAMPAIGNS
from tests.campaigns.test_analytics import add_event, make_delivery, make_run
from tests.conftest import wait_for

BASE = "/api/crm/marketing"


def ledger_campaign(name: str, *, deleted_days_ago: float | None, rows: int = 3, key=None):
    """A campaign with one run, `rows` deliveries with history and figures, deleted that
    many days ago (None: not deleted)."""
    deleted_at = (
        None if deleted_days_ago is None else timezone.now() - dt.timedelta(days=deleted_days_ago)
    )
    campaign = Campaign.objects.create(
        name=name, channels=["email"], external_key=key, status="cancelled"
    )
    Campaign.objects.filter(pk=campaign.pk).update(deleted_at=deleted_at)
    campaign.refresh_from_db()
    run = make_run(campaign, 1, status="cancelled")
    now = timezone.now()
    for n in range(rows):
        delivery = make_delivery(run, n + 1, status="sent", sent_at=now)
        add_event(delivery, "sent", now)
    RunStats.objects.create(run=run, channel="email", sends=rows)
    MetricBucket.objects.create(run=run, channel="email", hour=now.replace(minute=0), opens=1)
    return campaign


def counts(campaign: Campaign) -> tuple[int, int, int]:
    return (
        CampaignRun.objects.filter(campaign=campaign).count(),
        Delivery.objects.filter(run__campaign=campaign).count(),
        DeliveryEvent.objects.filter(delivery__run__campaign=campaign).count(),
    )


@pytest.fixture
def three(db):
    old = ledger_campaign("Old and deleted", deleted_days_ago=45, rows=7, key="camp-old")
    recent = ledger_campaign("Recently deleted", deleted_days_ago=3, key="camp-recent")
    live = ledger_campaign("Still live", deleted_days_ago=None, key="camp-live")
    return {"old": old, "recent": recent, "live": live}


def test_the_retention_default_is_thirty_days_and_the_beat_entry_names_the_task():
    assert settings.HERALD_CAMPAIGN_PURGE_AFTER_DAYS == 30
    entry = settings.CELERY_BEAT_SCHEDULE["campaigns-purge-deleted"]
    assert entry["task"] == purge_deleted_task.name == "campaigns.purge_deleted"


@pytest.mark.django_db
def test_command_purges_only_campaigns_deleted_past_the_retention_age(three, monkeypatch):
    # Several batches for one campaign: each its own transaction.
    monkeypatch.setattr(purge, "DELIVERY_BATCH", 2)
    delivery = Delivery.objects.filter(run__campaign=three["old"]).first()
    order = Order.objects.create(
        external_order_id="o-1",
        external_customer_id="c-1",
        status="DELIVERED",
        total_cost=Decimal("10.00"),
        currency="EUR",
        date=timezone.now(),
        attributed_delivery=delivery,
        attributed_campaign=three["old"],
    )
    out = StringIO()

    call_command("purge_campaigns", stdout=out)

    assert not Campaign.objects.filter(pk=three["old"].pk).exists()
    assert counts(three["old"]) == (0, 0, 0)
    assert not RunStats.objects.filter(run__campaign_id=three["old"].pk).exists()
    assert "Purged campaign" in out.getvalue()
    assert "camp-old" in out.getvalue()
    assert "1 runs, 7 deliveries" in out.getvalue()
    # The order stays; it only loses the pointers to what went.
    order.refresh_from_db()
    assert (order.attributed_delivery_id, order.attributed_campaign_id) == (None, None)
    # The others are untouched.
    assert counts(three["recent"]) == (1, 3, 3)
    assert counts(three["live"]) == (1, 3, 3)

    entry = LogEntry.objects.get(
        action=LogEntry.Action.DELETE, object_id=three["old"].pk, content_type__model="campaign"
    )
    assert entry.additional_data == {"purged": {"runs": 1, "deliveries": 7}}
    line = audit_line(entry)
    assert line.summary == "purged for good"
    assert line.changes == ["Runs removed: 1", "Deliveries removed: 7"]

    again = StringIO()
    call_command("purge_campaigns", stdout=again)
    assert "No campaign was deleted more than 30 days ago." in again.getvalue()


@pytest.mark.django_db
def test_a_shorter_retention_takes_the_recent_one_too(three, settings):
    settings.HERALD_CAMPAIGN_PURGE_AFTER_DAYS = 1

    call_command("purge_campaigns", stdout=StringIO())

    assert list(Campaign.objects.values_list("external_key", flat=True)) == ["camp-live"]


@pytest.mark.django_db
def test_dry_run_says_what_would_go_and_removes_nothing(three):
    out = StringIO()

    call_command("purge_campaigns", "--dry-run", stdout=out)

    assert "Would purge campaign" in out.getvalue()
    assert "1 runs, 7 deliveries" in out.getvalue()
    assert counts(three["old"]) == (1, 7, 7)
    assert not LogEntry.objects.filter(action=LogEntry.Action.DELETE).exists()


@pytest.mark.django_db
def test_one_campaign_by_key_or_id_whatever_its_age(three):
    out = StringIO()

    call_command("purge_campaigns", "--campaign", "camp-recent", stdout=out)

    assert not Campaign.objects.filter(pk=three["recent"].pk).exists()
    assert Campaign.objects.filter(pk=three["old"].pk).exists()  # not asked for
    call_command("purge_campaigns", "--campaign", str(three["old"].pk), stdout=out)
    assert not Campaign.objects.filter(pk=three["old"].pk).exists()


@pytest.mark.django_db
def test_one_campaign_that_is_not_deleted_is_refused_and_kept(three):
    with pytest.raises(CommandError, match="is not deleted; delete it first"):
        call_command("purge_campaigns", "--campaign", "camp-live", stdout=StringIO())
    with pytest.raises(CommandError, match="No campaign with id or external key 'camp-x'"):
        call_command("purge_campaigns", "--campaign", "camp-x", stdout=StringIO())

    assert counts(three["live"]) == (1, 3, 3)


@pytest.mark.django_db
def test_an_interrupted_purge_is_finished_by_the_next(three, monkeypatch):
    monkeypatch.setattr(purge, "DELIVERY_BATCH", 3)
    # The first batch went, then the process died.
    purge._deliveries_delete_batch(three["old"].pk)
    assert counts(three["old"]) == (1, 4, 4)

    results, left = purge.campaigns_purge()

    assert ([r.campaign_id for r in results], left) == ([three["old"].pk], 0)
    assert results[0].deliveries == 4
    assert not Campaign.objects.filter(pk=three["old"].pk).exists()


@pytest.mark.django_db
def test_a_campaign_restored_after_it_was_found_due_is_kept_and_the_others_go(three, monkeypatch):
    restored = three["old"]
    found_due = purge.campaigns_purge_due

    def due_then_restored(**kwargs):
        ids = found_due(**kwargs)
        Campaign.objects.filter(pk=restored.pk).update(deleted_at=None)
        return ids

    monkeypatch.setattr(purge, "campaigns_purge_due", due_then_restored)
    other = ledger_campaign("Also old", deleted_days_ago=40, key="camp-also-old")

    results, left = purge.campaigns_purge()

    assert ([r.campaign_id for r in results], left) == ([other.pk], 0)
    assert counts(restored) == (1, 7, 7)
    assert not Campaign.objects.filter(pk=other.pk).exists()


@pytest.mark.django_db
def test_api_purges_a_deleted_campaign_by_key_and_refuses_a_live_one(api, full_key, three):
    refused = api.post(f"{CAMPAIGNS}/camp-live/purge", key=full_key)
    assert refused.status_code == 409
    assert refused.json()["field"] == "campaign"
    assert "is not deleted" in refused.json()["detail"]
    refused_delete = api.delete(f"{CAMPAIGNS}/camp-live?purge=true", key=full_key)
    assert refused_delete.status_code == 409
    assert counts(three["live"]) == (1, 3, 3)

    dry = api.post(f"{CAMPAIGNS}/camp-recent/purge?dryRun=true", key=full_key)
    assert dry.status_code == 200
    assert (dry.json()["dryRun"], dry.json()["deliveries"]) == (True, 3)
    assert counts(three["recent"]) == (1, 3, 3)

    purged = api.post(f"{CAMPAIGNS}/camp-recent/purge", key=full_key)
    assert purged.status_code == 200, purged.content
    assert purged.json()["externalId"] == "camp-recent"
    assert (purged.json()["runs"], purged.json()["deliveries"]) == (1, 3)
    assert api.get(f"{CAMPAIGNS}/camp-recent", key=full_key).status_code == 404
    entry = LogEntry.objects.get(action=LogEntry.Action.DELETE, object_id=three["recent"].pk)
    assert entry.actor is not None  # the key's owner, as for every API write

    by_delete = api.delete(f"{CAMPAIGNS}/{three['old'].pk}?purge=true", key=full_key)
    assert by_delete.status_code == 200
    assert by_delete.json()["deliveries"] == 7
    assert api.post(f"{CAMPAIGNS}/camp-gone/purge", key=full_key).status_code == 404


@pytest.mark.worker
def test_the_beat_task_purges_on_a_real_worker(celery_worker):
    old = ledger_campaign("Old and deleted", deleted_days_ago=45)
    live = ledger_campaign("Still live", deleted_days_ago=None)

    purge_deleted_task.delay()

    wait_for(lambda: not Campaign.objects.filter(pk=old.pk).exists(), timeout=30)
    assert counts(old) == (0, 0, 0)
    assert counts(live) == (1, 3, 3)
    assert LogEntry.objects.filter(action=LogEntry.Action.DELETE, object_id=old.pk).exists()

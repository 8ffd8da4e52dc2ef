"""Events and webhook requests, partitioned by month: derived events are still stored once,
and retention keeps event analytics and the contact activity the same after a drop."""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from campaigns.models import Campaign
from config.core.partitions import (
    month_add,
    month_start,
    partition_months,
    partitioned,
    retention_apply,
)
from contacts.models import Contact
from integrations.models import WebhookRequest
from marketing.activity import contact_activity
from marketing.engagement import engagement_events_emit
from marketing.event_analytics import analytics_json, event_analytics
from marketing.models import Event, EventType
from marketing.retention import EVENTS
from marketing.workflows.models import WorkflowRun
from tests.partitions.support import at, delivery, history, month_partition, run_started

pytestmark = pytest.mark.django_db

THIS_MONTH = month_start(timezone.now().date())
OLD_MONTH = month_add(THIS_MONTH, -26)


def event(event_type: EventType, contact: Contact | None, created, occurred=None) -> Event:
    row = Event.objects.create(event_type=event_type, contact=contact, key_value="k")
    Event.objects.filter(pk=row.pk).update(created_at=created, occurred_at=occurred or created)
    return row


def figures(date_from, date_to) -> dict:
    return analytics_json(event_analytics(date_from=date_from, date_to=date_to))


def test_derived_events_are_stored_once_whatever_the_overlap_of_two_runs():
    run = run_started(Campaign.objects.create(name="Sale", channels=["email"]), timezone.now())
    row = delivery(run, 1, status="opened")
    history(row, "opened", timezone.now() - timedelta(minutes=2))
    history(row, "opened", timezone.now() - timedelta(minutes=1))
    since = timezone.now() - timedelta(minutes=5)

    assert engagement_events_emit(since=since) == 1
    assert engagement_events_emit(since=since) == 0
    # A later window that sees only the second open finds the first one's key taken.
    assert engagement_events_emit(since=timezone.now() - timedelta(seconds=90)) == 0
    assert Event.objects.filter(source_key=f"delivery:{row.pk}:opened").count() == 1


def test_dropping_a_month_of_events_keeps_event_analytics_the_same(settings):
    # Exactly the old month is past the retention; the next one is not.
    settings.HERALD_RETENTION_EVENTS_DAYS = (timezone.now().date() - month_add(OLD_MONTH, 1)).days
    month_partition(Event._meta.db_table, OLD_MONTH)
    opened = EventType.objects.create(key="orderPlaced", name="Order placed")
    ana, bo = Contact.objects.create(email="ana@example.com"), Contact.objects.create(email="b@e.x")
    old, recent = at(OLD_MONTH, day=20), at(month_add(OLD_MONTH, 1), day=2)
    event(opened, ana, old)
    event(opened, ana, old + timedelta(minutes=10))
    event(opened, bo, old + timedelta(days=1))
    event(opened, None, old)
    # Arrived in the next month, occurred in the old one: stays, and counts with the rest.
    event(opened, ana, recent, occurred=old + timedelta(hours=2))
    event(opened, bo, recent)
    month_partition(Event._meta.db_table, month_add(OLD_MONTH, 1))
    event_of_run = event(opened, ana, old + timedelta(hours=3))
    workflow_run = WorkflowRun.objects.filter(event=event_of_run).first()
    span = (OLD_MONTH, month_add(OLD_MONTH, 2) - timedelta(days=1))
    before = figures(*span)
    assert before["types"][0]["total"] == 7
    assert before["types"][0]["uniqueContacts"] == 2

    result = retention_apply(EVENTS)

    assert result.dropped == [f"marketing_event_p{OLD_MONTH:%Y%m}"]
    assert OLD_MONTH not in partition_months(EVENTS)
    assert Event.objects.filter(event_type=opened).count() == 2
    assert figures(*span) == before
    assert workflow_run is None or WorkflowRun.objects.get(pk=workflow_run.pk).event_id is None


def test_a_contacts_recent_activity_is_the_same_after_an_old_month_goes():
    month_partition(Event._meta.db_table, OLD_MONTH)
    kind = EventType.objects.create(key="visit", name="Visit")
    ana = Contact.objects.create(email="ana@example.com")
    event(kind, ana, at(OLD_MONTH))
    recent = event(kind, ana, timezone.now() - timedelta(days=1))
    before = contact_activity(contact_id=ana.pk)

    retention_apply(EVENTS)

    after = contact_activity(contact_id=ana.pk)
    kept_from = at(month_add(OLD_MONTH, 1), day=1, hour=0)
    assert [item["id"] for item in after.items] == [recent.pk]
    assert after.items == [item for item in before.items if item["at"] >= kept_from]


def test_old_webhook_requests_go_and_queued_ones_wait():
    spec = partitioned(WebhookRequest._meta.db_table)
    old, older = month_add(THIS_MONTH, -5), month_add(THIS_MONTH, -6)
    for month, outcome in ((old, "applied"), (older, "queued")):
        month_partition(spec.table, month)
        request = WebhookRequest.objects.create(method="POST", path="/x", body=b"{}")
        WebhookRequest.objects.filter(pk=request.pk).update(received_at=at(month), outcome=outcome)

    result = retention_apply(spec)

    assert result.dropped == [f"integrations_webhookrequest_p{old:%Y%m}"]
    assert list(result.kept) == [f"integrations_webhookrequest_p{older:%Y%m}"]
    assert WebhookRequest.objects.count() == 1


def test_beat_applies_the_retention_of_every_partitioned_table():
    args = [
        entry.get("args")
        for entry in django_settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == "core.retention_apply"
    ]
    assert sorted(a[0] for a in args) == [
        "campaigns_delivery",
        "integrations_webhookrequest",
        "marketing_event",
    ]

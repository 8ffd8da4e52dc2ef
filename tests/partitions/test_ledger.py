"""The delivery ledger and its history, partitioned by month: rows land in their run's (or
send request's) month, and exactly-once sending and provider event dedupe still hold."""

from datetime import date

import pytest
from django.db import connection
from django.utils import timezone

from campaigns import pipeline
from campaigns.ledger import deliveries_feedback
from campaigns.models import Campaign, Delivery, DeliveryEvent, SendRequest
from config.core.partitions import month_add, month_start, partition_months, partitioned
from contacts.models import ChannelType
from templates.services import template_create, template_publish
from tests.contacts.factories import ContactFactory
from tests.partitions.support import at, delivery, ledger_months, partition_of, run_started

pytestmark = pytest.mark.django_db

THIS_MONTH = month_start(timezone.now().date())
OLD_MONTH = month_add(THIS_MONTH, -14)


def email_campaign(**extra) -> Campaign:
    template = template_create(
        name="Sale", subject="Sale", from_email="news@shop.example", html="<p>Sale</p>"
    )
    template_publish(template=template)
    return Campaign.objects.create(
        name="Sale",
        channels=[ChannelType.EMAIL],
        template=template,
        status="running",
        audience_filter={"tags": {"$in": ["vip"]}},
        **extra,
    )


def test_migrate_leaves_the_current_and_next_two_months_and_a_default():
    spec = partitioned(Delivery._meta.db_table)
    months = partition_months(spec)
    assert {THIS_MONTH, month_add(THIS_MONTH, 1), month_add(THIS_MONTH, 2)} <= set(months)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('campaigns_delivery_default') IS NOT NULL")
        assert cursor.fetchone()[0]


def test_rows_go_to_their_runs_month_and_history_follows_its_delivery():
    ledger_months(OLD_MONTH)
    campaign = email_campaign()
    old_run = run_started(campaign, at(OLD_MONTH, day=28, hour=23))
    new_run = run_started(campaign, timezone.now(), number=2)

    old_row = delivery(old_run, 1)
    new_row = delivery(new_run, 1)
    # History written today of a delivery of an old run stays with its delivery.
    event = DeliveryEvent.objects.create(delivery=old_row, status="opened")

    assert partition_of(Delivery, old_row.pk) == f"campaigns_delivery_p{OLD_MONTH:%Y%m}"
    assert partition_of(Delivery, new_row.pk) == f"campaigns_delivery_p{THIS_MONTH:%Y%m}"
    assert partition_of(DeliveryEvent, event.pk) == f"campaigns_deliveryevent_p{OLD_MONTH:%Y%m}"
    assert event.period == old_row.period == OLD_MONTH


def test_single_messages_go_to_their_send_requests_month():
    request = SendRequest.objects.create(kind="email")
    row = Delivery.objects.create(send_request=request, channel="email", locator="a@example.com")
    assert row.period == month_start(request.created_at.date())
    assert partition_of(Delivery, row.pk) == f"campaigns_delivery_p{row.period:%Y%m}"


def test_a_month_created_after_its_rows_landed_in_default_takes_them_over():
    stray_month = month_add(THIS_MONTH, -40)
    campaign = email_campaign()
    run = run_started(campaign, at(stray_month))
    row = delivery(run, 1)
    assert partition_of(Delivery, row.pk) == "campaigns_delivery_default"

    ledger_months(stray_month)

    assert partition_of(Delivery, row.pk) == f"campaigns_delivery_p{stray_month:%Y%m}"


def test_materialising_a_run_of_an_old_month_twice_inserts_each_recipient_once():
    ledger_months(OLD_MONTH)
    ContactFactory.create_batch(4, tags=["vip"])
    campaign = email_campaign()
    version = campaign.template.versions.order_by("-number").first()
    run = run_started(campaign, at(OLD_MONTH), template_version=version)

    assert pipeline.run_materialise(run=run) == 4
    before = dict(Delivery.objects.filter(run=run).values_list("contact_id", "message_id"))
    # A relaunch after a crash, this month: the run's rows are still found (same partition
    # key, the run's month), so ON CONFLICT keeps them.
    pipeline.run_materialise(run=run)

    rows = Delivery.objects.filter(run=run)
    assert rows.count() == 4
    assert dict(rows.values_list("contact_id", "message_id")) == before
    assert {row.period for row in rows} == {OLD_MONTH}


def test_the_same_provider_event_twice_is_applied_once_in_an_old_month():
    ledger_months(OLD_MONTH)
    run = run_started(email_campaign(), at(OLD_MONTH))
    row = delivery(run, 1, status="sent", sent_at=at(OLD_MONTH))

    first = deliveries_feedback([(row.pk, "opened", "evt-1", "", "")])
    again = deliveries_feedback([(row.pk, "opened", "evt-1", "", "")])

    assert first == [(row.pk, "opened")]
    assert again == []
    row.refresh_from_db()
    assert row.open_count == 1
    assert DeliveryEvent.objects.filter(delivery=row, provider_event_id="evt-1").count() == 1


def test_ids_stay_unique_across_months():
    ledger_months(OLD_MONTH)
    campaign = email_campaign()
    rows = [delivery(run_started(campaign, at(OLD_MONTH)), 1)]
    rows.append(delivery(run_started(campaign, timezone.now(), number=2), 1))
    assert len({row.pk for row in rows}) == 2
    assert Delivery.objects.get(pk=rows[0].pk).period == OLD_MONTH


def test_month_arithmetic_crosses_years():
    assert month_add(date(2026, 12, 1), 1) == date(2027, 1, 1)
    assert month_add(date(2027, 1, 1), -13) == date(2025, 12, 1)

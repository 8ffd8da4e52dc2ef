"""Ledger rows in a month of the past: a run started then, its deliveries and history."""

from datetime import UTC, date, datetime

from django.db import connection

from campaigns.models import Campaign, CampaignRun, Delivery, DeliveryEvent
from config.core.partitions import partition_create, partitioned
from contacts.models import Contact


def month_partition(table: str, month: date) -> None:
    partition_create(partitioned(table), month)


def ledger_months(*months: date) -> None:
    for month in months:
        month_partition(Delivery._meta.db_table, month)
        month_partition(DeliveryEvent._meta.db_table, month)


def run_started(campaign: Campaign, started: datetime, number: int = 1, **extra) -> CampaignRun:
    """A run whose start is `started` (auto_now_add would stamp now)."""
    run = CampaignRun.objects.create(campaign=campaign, number=number, **extra)
    CampaignRun.objects.filter(pk=run.pk).update(started_at=started)
    run.refresh_from_db()
    return run


def delivery(run: CampaignRun, n: int, *, channel: str = "email", **fields) -> Delivery:
    contact = Contact.objects.create(email=f"r{run.pk}-{n}-{channel}@example.com")
    return Delivery.objects.create(
        run=run, contact=contact, channel=channel, locator=contact.email, **fields
    )


def history(row: Delivery, status: str, at: datetime, url: str = "") -> DeliveryEvent:
    event = DeliveryEvent.objects.create(delivery=row, status=status, url=url)
    DeliveryEvent.objects.filter(pk=event.pk).update(at=at)
    return event


def partition_of(model, pk: int) -> str:
    """The partition a row is stored in."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT tableoid::regclass::text FROM {model._meta.db_table} WHERE id = %s",  # noqa: S608
            [pk],
        )
        return cursor.fetchone()[0]


def at(month: date, day: int = 10, hour: int = 12) -> datetime:
    return datetime(month.year, month.month, day, hour, tzinfo=UTC)

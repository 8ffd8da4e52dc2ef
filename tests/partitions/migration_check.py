"""Migrate a database with data across the migrations that partition the ledger, the events
and the webhook requests, and print what it held before and after (JSON on the last line).

Run in a process of its own on an empty database of its own (DATABASE_URL), by
tests/partitions/test_migration.py: `python -m tests.partitions.migration_check ROWS`.
Before the partitioning migrations the rows are written with the historical models, as
Herald wrote them then: runs and send requests of several months, deliveries, their
history with provider event ids, an attributed order, derived events with source keys,
webhook requests.
"""

import json
import os
import sys
from datetime import UTC, datetime

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.db import connection  # noqa: E402
from django.db.migrations.executor import MigrationExecutor  # noqa: E402

BEFORE = [
    ("campaigns", "0015_send_kind_viber"),
    ("marketing", "0012_workflow_send_blocks"),
    ("integrations", "0004_webhook_queued_defer"),
]
MONTHS = [
    datetime(2024, 1, 15, tzinfo=UTC),
    datetime(2025, 6, 30, 23, tzinfo=UTC),
    datetime.now(UTC),
]


def snapshot() -> dict:
    with connection.cursor() as cursor:
        figures = {}
        for name, sql in {
            "deliveries": "SELECT count(*), coalesce(sum(id), 0) FROM campaigns_delivery",
            "history": "SELECT count(*), coalesce(sum(id), 0) FROM campaigns_deliveryevent",
            "events": "SELECT count(*), coalesce(sum(id), 0) FROM marketing_event",
            "webhooks": "SELECT count(*), coalesce(sum(id), 0) FROM integrations_webhookrequest",
            "attributed": "SELECT count(*) FROM marketing_order "
            "WHERE attributed_delivery_id IS NOT NULL",
        }.items():
            cursor.execute(sql)
            figures[name] = [int(value) for value in cursor.fetchone()]
        return figures


def fill(apps, rows: int) -> None:
    Contact = apps.get_model("contacts", "Contact")
    Campaign = apps.get_model("campaigns", "Campaign")
    CampaignRun = apps.get_model("campaigns", "CampaignRun")
    SendRequest = apps.get_model("campaigns", "SendRequest")
    Delivery = apps.get_model("campaigns", "Delivery")
    DeliveryEvent = apps.get_model("campaigns", "DeliveryEvent")
    EventType = apps.get_model("marketing", "EventType")
    Event = apps.get_model("marketing", "Event")
    Order = apps.get_model("marketing", "Order")
    WebhookRequest = apps.get_model("integrations", "WebhookRequest")

    contacts = Contact.objects.bulk_create(Contact(email=f"c{n}@example.com") for n in range(rows))
    campaign = Campaign.objects.create(name="Old", channels=["email"])
    event_type = EventType.objects.create(key="emailOpened", name="emailOpened")
    for number, when in enumerate(MONTHS, start=1):
        run = CampaignRun.objects.create(campaign=campaign, number=number)
        CampaignRun.objects.filter(pk=run.pk).update(started_at=when)
        request = SendRequest.objects.create(kind="email")
        SendRequest.objects.filter(pk=request.pk).update(created_at=when)
        batch = Delivery.objects.bulk_create(
            Delivery(run=run, contact=c, channel="email", locator=c.email, status="sent")
            for c in contacts
        )
        batch.append(
            Delivery.objects.create(
                send_request=request, channel="email", locator="single@example.com"
            )
        )
        DeliveryEvent.objects.bulk_create(
            DeliveryEvent(delivery=row, status="opened", provider_event_id=f"evt-{row.pk}")
            for row in batch
        )
        Event.objects.bulk_create(
            Event(
                event_type=event_type,
                contact=row.contact,
                key_value=row.locator,
                source_key=f"delivery:{row.pk}:opened",
            )
            for row in batch
        )
        Event.objects.filter(event_type=event_type).update(created_at=when)
        WebhookRequest.objects.bulk_create(
            WebhookRequest(method="POST", path="/hooks/x", body=b"{}") for _ in range(rows)
        )
        WebhookRequest.objects.filter(received_at__gt=when).update(received_at=when)
        Order.objects.create(
            external_order_id=f"o{number}",
            external_customer_id="c",
            status="DELIVERED",
            total_cost=10,
            currency="EUR",
            date=when,
            attributed_delivery=batch[0],
            attributed_campaign=campaign,
            attribution="click",
        )


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    executor.loader.build_graph()
    apps = executor.loader.project_state(BEFORE).apps
    fill(apps, rows)
    before = snapshot()
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    after = snapshot()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_partitioned_table WHERE partrelid::regclass::text = ANY(%s)",
            [
                [
                    "campaigns_delivery",
                    "campaigns_deliveryevent",
                    "marketing_event",
                    "integrations_webhookrequest",
                ]
            ],
        )
        partitioned = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM marketing_eventsourcekey")
        source_keys = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(DISTINCT d.period) FROM campaigns_delivery d "
            "JOIN campaigns_deliveryevent e ON e.delivery_id = d.id AND e.period = d.period"
        )
        periods = cursor.fetchone()[0]
    print(
        json.dumps(
            {
                "before": before,
                "after": after,
                "partitioned": partitioned,
                "source_keys": source_keys,
                "periods": periods,
            }
        )
    )


if __name__ == "__main__":
    main()

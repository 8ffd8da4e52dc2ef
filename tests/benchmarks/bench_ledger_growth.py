"""Ledger growth: campaign send rate and event ingest rate with a big ledger in place, against
the same with an empty ledger, in the same run (target ≥ 0.9).

The ledger and the events are partitioned by month (config.core.partitions): a big past
should cost the present nothing but disk. Both passes send a fresh blast campaign to the
same audience through a real Celery worker into Postfix's smtp-sink (the machinery of
bench_campaign_send), and store events one by one through `event_ingest`, the statement
POST /api/v1/event runs (as bench_events measures it over HTTP). Between the passes, the past
is generated in SQL: --ledger-rows delivery rows (default 50M) over the twelve months of a
year ago, with a status history row for one in ten, and --event-rows events, each month
filled as a table of its own (INSERT ... SELECT generate_series) and then attached, the way
the fastest bulk load builds its indexes.

Needs PostgreSQL (DATABASE_URL or the embedded server) and a Redis broker (CELERY_BROKER_URL,
default redis://127.0.0.1:6379/15). The database herald_bench_ledger is dropped after
(--keep keeps it).
"""

# Table names below are the models'; every value goes through parameters.

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks import support
from tests.benchmarks.bench_campaign_send import SMTPSinkServer, populate, sender_worker

DATABASE_NAME = "herald_bench_ledger"
QUEUE = "q_bench_ledger"
PAST_MONTHS = 12
HISTORY_SHARE = 10  # one delivery in ten has a history row in the generated past


def send_pass(template, sink: SMTPSinkServer, database_url: str, label: str) -> dict:
    """A blast of the template to every contact, launch → all sent, through a real worker."""
    from campaigns.lifecycle import campaign_launch_now
    from campaigns.models import Campaign, Delivery

    campaign = Campaign.objects.create(
        name=f"Spring sale ({label})",
        channels=["email"],
        audience_filter={"tags": {"$in": ["vip"]}},
        template=template,
    )
    log = Path(tempfile.mkstemp(prefix="bench-ledger-worker-", suffix=".log")[1])
    worker = sender_worker(database_url, sink, log, QUEUE)
    try:
        began = time.perf_counter()
        run = campaign_launch_now(campaign=campaign)
        support.run_sent_wait(run.pk)
        elapsed = time.perf_counter() - began
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        log.unlink(missing_ok=True)
    sent = Delivery.objects.filter(run_id=run.pk, status="sent").count()
    return {"sent": sent, "seconds": elapsed, "rate": sent / elapsed}


def ingest_pass(count: int, recipients: int) -> dict:
    """`count` events stored one at a time, each for a contact found by its email."""
    from marketing.events import contact_lookup_for, event_ingest

    began = time.perf_counter()
    for i in range(count):
        email = f"person{1 + i % recipients}@example.com"
        params = {"discount": "5%", "link": "https://example.site.com/items_for_sale"}
        event_ingest(
            type_key="benchEvent",
            key_value=email,
            params=params,
            lookup=contact_lookup_for(key_value=email, params=params),
        )
    elapsed = time.perf_counter() - began
    return {"events": count, "seconds": elapsed, "rate": count / elapsed}


def _month_fill(cursor, table: str, month, insert_sql: str, params: list) -> None:
    """Fill `table`'s partition of `month` as a table of its own, then attach it."""
    from config.core.partitions import month_add, partition_name

    name = partition_name(table, month)
    start, end = month, month_add(month, 1)
    cursor.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    cursor.execute(insert_sql.format(partition=name), params)
    key = "period" if table.startswith("campaigns_") else "created_at"
    bounds = (
        (f"'{start}'", f"'{end}'")
        if key == "period"
        else (f"'{start} 00:00+00'", f"'{end} 00:00+00'")
    )
    cursor.execute(
        f"ALTER TABLE {table} ATTACH PARTITION {name} "
        f"FOR VALUES FROM ({bounds[0]}) TO ({bounds[1]})"
    )


def past_generate(ledger_rows: int, event_rows: int, recipients: int) -> dict:
    """The past: runs, deliveries, history and events over the PAST_MONTHS months that
    ended a year ago, generated in SQL."""
    from django.db import connection
    from django.utils import timezone

    from campaigns.models import Campaign
    from config.core.partitions import month_add, month_start

    began = time.perf_counter()
    first = month_add(month_start(timezone.now().date()), -12 - PAST_MONTHS)
    old = Campaign.objects.create(name="Last year's newsletters", channels=["email"])
    per_month = ledger_rows // PAST_MONTHS
    runs_per_month = -(-per_month // recipients)
    events_per_month = event_rows // PAST_MONTHS
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id) FROM contacts_contact")
        first_contact = cursor.fetchone()[0]
        cursor.execute("SELECT id FROM marketing_eventtype WHERE key = 'benchEvent'")
        event_type = cursor.fetchone()[0]
        for n in range(PAST_MONTHS):
            month = month_add(first, n)
            cursor.execute(
                """INSERT INTO campaigns_campaignrun
                       (campaign_id, number, kind, status, status_reason, reach, started_at,
                        finished_at, external_id, external_status, external_stats)
                   SELECT %s, %s + r, 'send', 'completed', '', %s, %s::date + interval '1 day',
                          %s::date + interval '2 days', '', '', '{}'
                     FROM generate_series(1, %s) r RETURNING id""",
                [old.pk, n * runs_per_month, recipients, month, month, runs_per_month],
            )
            runs = sorted(row[0] for row in cursor.fetchall())
            _month_fill(
                cursor,
                "campaigns_delivery",
                month,
                """INSERT INTO {partition} (
                       id, request_id, run_id, step, contact_id, channel, locator, params,
                       language_code, message_id, provider, provider_message_id, status, error,
                       attempts, created_at, sent_at, open_count, click_count,
                       machine_open_count, machine_click_count, period)
                   SELECT nextval('campaigns_delivery_id_seq'), gen_random_uuid(),
                          (%s::bigint[])[1 + (i - 1) / %s], 0, %s + (i - 1) %% %s, 'email',
                          'person' || i || '@example.com', '{{}}', 'en', '<' || i || '@x>',
                          'smtp', '', 'sent', '', 1, %s::date + interval '1 day',
                          %s::date + interval '1 day', 0, 0, 0, 0, %s
                     FROM generate_series(1, %s) i""",
                [runs, recipients, first_contact, recipients, month, month, month, per_month],
            )
            _month_fill(
                cursor,
                "campaigns_deliveryevent",
                month,
                """INSERT INTO {partition}
                       (id, delivery_id, status, at, detail, url, provider_event_id, machine,
                        period)
                   SELECT nextval('campaigns_deliveryevent_id_seq'), d.id, 'sent',
                          d.sent_at, '', '', '', false, d.period
                     FROM campaigns_delivery d
                    WHERE d.period = %s AND d.id %% %s = 0""",
                [month, HISTORY_SHARE],
            )
            _month_fill(
                cursor,
                "marketing_event",
                month,
                """INSERT INTO {partition}
                       (id, event_type_id, key_value, params, contact_id, created_at,
                        occurred_at, source_key)
                   SELECT nextval('marketing_event_id_seq'), %s,
                          'person' || i || '@example.com', '{{"discount": "5%%"}}',
                          %s + i %% %s, %s::date + interval '3 days',
                          %s::date + interval '3 days', ''
                     FROM generate_series(1, %s) i""",
                [event_type, first_contact, recipients, month, month, events_per_month],
            )
            print(f"  past month {month:%Y-%m}: {per_month:,} deliveries", flush=True)
        cursor.execute("ANALYZE campaigns_delivery")
        cursor.execute("ANALYZE campaigns_deliveryevent")
        cursor.execute("ANALYZE marketing_event")
        cursor.execute(
            "SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits "
            "WHERE inhparent = 'campaigns_delivery'::regclass"
        )
        size = cursor.fetchone()[0]
    return {"seconds": time.perf_counter() - began, "size": size}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="bench ledger_growth", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--ledger-rows", type=int, default=50_000_000)
    parser.add_argument("--event-rows", type=int, default=None, help="default: ledger rows / 5")
    parser.add_argument("--events", type=int, default=5_000, help="events stored per pass")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)

    if support.ran_apart("tests.benchmarks.bench_ledger_growth", argv):
        return
    scratch = Path(tempfile.mkdtemp(prefix="herald-bench-ledger-"))
    try:
        with SMTPSinkServer() as sink:
            environ = {
                "CELERY_BROKER_URL": os.environ.get(
                    "CELERY_BROKER_URL", "redis://127.0.0.1:6379/15"
                ),
                "HERALD_QUEUE": QUEUE,
                "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}",
                "DEBUG": "0",
                "HERALD_VAR_DIR": str(scratch / "var"),
            }
            with support.scratch_database(
                DATABASE_NAME, keep=args.keep, environ=environ
            ) as database_url:
                _run(args, database_url, sink)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def settle() -> None:
    """Start each measured pass from the same state: the ledger and the events vacuumed and
    analysed, and written to disk. Without it the pass after the generated past competes
    with autovacuum working through it (a real past was vacuumed long ago), and each pass
    with the previous one's dirty pages."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM (ANALYZE) campaigns_delivery, campaigns_deliveryevent, marketing_event"
        )
        cursor.execute("CHECKPOINT")
    _purge_queue()


def _purge_queue() -> None:
    from config.celery import app

    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(QUEUE)


def _run(args, database_url: str, sink: SMTPSinkServer) -> None:
    from marketing.models import EventType

    event_rows = args.event_rows if args.event_rows is not None else args.ledger_rows // 5
    print(
        f"{args.recipients:,} recipients per send, {args.events:,} events per pass; past: "
        f"{args.ledger_rows:,} deliveries, {event_rows:,} events; {os.cpu_count()} CPUs",
        flush=True,
    )
    campaign = populate(args.recipients)
    EventType.objects.create(key="benchEvent", name="benchEvent")
    ingest_pass(200, args.recipients)  # warm-up: the type's declaration cached, plans made

    settle()
    empty_send = send_pass(campaign.template, sink, database_url, "empty ledger")
    settle()
    empty_ingest = ingest_pass(args.events, args.recipients)
    past = past_generate(args.ledger_rows, event_rows, args.recipients)
    print(f"past generated in {past['seconds']:.0f} s; ledger on disk {past['size']}", flush=True)
    settle()
    big_send = send_pass(campaign.template, sink, database_url, "big ledger")
    settle()
    big_ingest = ingest_pass(args.events, args.recipients)
    _purge_queue()

    for label, empty, big, unit in (
        ("campaign send", empty_send, big_send, "msg/s"),
        ("event ingest", empty_ingest, big_ingest, "events/s"),
    ):
        print(
            f"{label:14} empty ledger {empty['rate']:,.0f} {unit}, big ledger "
            f"{big['rate']:,.0f} {unit} → big/empty = {big['rate'] / empty['rate']:.2f} "
            "(target ≥ 0.9)",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])

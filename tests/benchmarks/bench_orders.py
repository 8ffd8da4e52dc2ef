"""Orders: N orders through POST /api/v1/orders vs a raw batched upsert; RFM over M orders.

Herald's path, in this process: Django's test Client posts 1000-order requests (the eSputnik
v1 API's order shape with two items; API key authentication, JSON parsing, per-order validation with
email-validator and phonenumbers, contact lookup and creation, the set-based order upsert,
item replacement and one `order<STATUS>` event per order). Five orders share a customer, so a
fifth of the orders create a contact. The broker is kombu's in-memory transport: enqueued
event tasks go nowhere. The floor is one psycopg connection sending the same orders, already
normalised, as `INSERT ... SELECT ... FROM unnest(...) ON CONFLICT (external_order_id) DO
UPDATE` in 1000-row statements (orders only: no items, contacts or events).

RFM: M DELIVERED orders over M/5 contacts are generated in SQL, then `rfm_recompute()` is
timed (one INSERT ... SELECT with percent_rank() windows). Everything happens in a database
of its own (`herald_bench_orders`), dropped afterwards unless --keep.
"""

import argparse
import base64
import datetime as dt
import json
import os
import sys
import time
from urllib.parse import urlsplit

from tests.benchmarks import support

DATABASE_NAME = "herald_bench_orders"
BATCH = 1000
STATUSES = ("INITIALIZED", "IN_PROGRESS", "DELIVERED", "DELIVERED", "CANCELLED")


def orders(count: int) -> list[dict]:
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    return [
        {
            "externalOrderId": f"bench-order-{i}",
            "externalCustomerId": f"bench-customer-{i // 5}",
            "totalCost": 10 + i % 990,
            "status": STATUSES[i % len(STATUSES)],
            "date": (start + dt.timedelta(minutes=7 * i)).isoformat(),
            "email": f"Bench.Customer{i // 5}@Example.com",
            "phone": f"38050{i // 5:07d}",
            "firstName": f"First{i // 5}",
            "lastName": "Buyer",
            "currency": "USD",
            "shipping": 5,
            "deliveryMethod": "express",
            "items": [
                {"externalItemId": f"sku-{i % 97}", "name": "Device", "quantity": 1, "cost": 5},
                {"externalItemId": f"sku-{i % 89}", "name": "Cable", "quantity": 2, "cost": 2},
            ],
        }
        for i in range(count)
    ]


def herald_pass(client, auth: str, data: list[dict]) -> float:
    bodies = [
        json.dumps({"orders": data[start : start + BATCH]}) for start in range(0, len(data), BATCH)
    ]
    began = time.perf_counter()
    for body in bodies:
        response = client.post(
            "/api/v1/orders",
            data=body,
            content_type="application/json",
            headers={"Authorization": auth},
        )
        assert response.status_code == 200, response.content[:500]
        failed = response.json()["failedOrders"]
        assert not failed, failed[:3]
    return time.perf_counter() - began


RAW_SQL = """
INSERT INTO marketing_order (
    external_order_id, external_customer_id, status, status_description, total_cost, currency,
    date, email, phone, first_name, last_name, shipping, restore_url, store_id, source,
    delivery_method, payment_method, delivery_address, raw, created_at, updated_at)
SELECT v.oid, v.cid, v.status, '', v.total, 'USD', v.date, v.email, v.phone, v.first_name,
       'Buyer', 5, '', '', '', 'express', '', '', v.raw::jsonb, now(), now()
  FROM unnest(%s::text[], %s::text[], %s::text[], %s::numeric[], %s::timestamptz[],
              %s::text[], %s::text[], %s::text[], %s::text[])
       AS v(oid, cid, status, total, date, email, phone, first_name, raw)
ON CONFLICT (external_order_id) DO UPDATE
   SET status = excluded.status, total_cost = excluded.total_cost, date = excluded.date,
       raw = excluded.raw, updated_at = now()
"""


def raw_pass(database_url: str, data: list[dict]) -> float:
    import psycopg

    columns = [
        [o["externalOrderId"] for o in data],
        [o["externalCustomerId"] for o in data],
        [o["status"] for o in data],
        [o["totalCost"] for o in data],
        [o["date"] for o in data],
        [o["email"].lower() for o in data],
        ["+" + o["phone"] for o in data],
        [o["firstName"] for o in data],
        [json.dumps(o) for o in data],
    ]
    with psycopg.connect(database_url) as conn:
        began = time.perf_counter()
        for start in range(0, len(data), BATCH):
            conn.execute(RAW_SQL, [column[start : start + BATCH] for column in columns])
            conn.commit()
        return time.perf_counter() - began


RFM_CONTACTS_SQL = """
INSERT INTO contacts_contact (
    first_name, last_name, email, phone, extra_channels, region, town, address, postcode,
    language_code, time_zone, external_customer_id, tags, fields, confirmed, confirmed_at,
    source, created_at, updated_at, deleted_at)
SELECT '', '', 'rfm' || g || '@example.com', '', '[]'::jsonb, '', '', '', '', '', '', NULL,
       '{}', '{}'::jsonb, true, now(), 'orders', now(), now(), NULL
  FROM generate_series(1, %s) AS g
"""

RFM_ORDERS_SQL = """
INSERT INTO marketing_order (
    external_order_id, external_customer_id, contact_id, status, status_description,
    total_cost, currency, date, email, phone, first_name, last_name, restore_url, store_id,
    source, delivery_method, payment_method, delivery_address, raw, created_at, updated_at)
SELECT 'rfm-' || g, 'rfm-c-' || c.n, c.id, 'DELIVERED', '', (g * 7919 %% 1000) + 1, 'USD',
       now() - make_interval(mins => (g * 104729 %% 1051200)::int), '', '', '', '', '', '', '',
       '', '', '', '{}'::jsonb, now(), now()
  FROM generate_series(1::bigint, %s) AS g
  JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM contacts_contact
         WHERE email LIKE 'rfm%%@example.com') AS c
    ON c.n = (abs(hashint8(g)) %% %s)
"""


def _empty() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE marketing_orderitem, marketing_order, marketing_event, "
            "marketing_rfmscore, contacts_contact CASCADE"
        )
        cursor.execute("VACUUM ANALYZE marketing_order")


def rfm_pass(count: int) -> tuple[float, float, int]:
    from django.db import connection

    from marketing.rfm import rfm_recompute

    _empty()
    contacts = max(1, count // 5)
    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(RFM_CONTACTS_SQL, [contacts])
        cursor.execute(RFM_ORDERS_SQL, [count, contacts])
        cursor.execute("ANALYZE marketing_order")
        cursor.execute("ANALYZE contacts_contact")
    generated = time.perf_counter() - began
    began = time.perf_counter()
    scored = rfm_recompute()
    return generated, time.perf_counter() - began, scored


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench orders", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000, help="orders through the API")
    parser.add_argument(
        "--rfm-orders", type=int, default=1_000_000, help="delivered orders for RFM (0: skip)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args(argv)

    if support.ran_apart("tests.benchmarks.bench_orders", argv):
        return
    environ = {"CELERY_BROKER_URL": "memory://", "DEBUG": "0"}
    with support.scratch_database(DATABASE_NAME, keep=args.keep, environ=environ) as database_url:
        _run(args, database_url)


def _run(args, database_url: str) -> None:
    from django.test import Client

    from config.core.api_keys import api_key_create

    _, secret = api_key_create(name="bench", rights="full")
    auth = "Basic " + base64.b64encode(f"bench:{secret}".encode()).decode()
    host = urlsplit(database_url).hostname or "embedded server"
    print(
        f"database {DATABASE_NAME} on {host}; {os.cpu_count()} CPUs (shared)",
        flush=True,
    )
    if args.orders:
        data = orders(args.orders)
        client = Client()
        _empty()
        herald = herald_pass(client, auth, data)
        print(
            f"herald: {args.orders} orders in {BATCH}-order requests: "
            f"{args.orders / herald:8.0f} orders/s ({herald:.1f} s; contacts, items, events)",
            flush=True,
        )
        _empty()
        raw = raw_pass(database_url, data)
        print(f"raw   : {args.orders / raw:8.0f} orders/s ({raw:.1f} s; orders only)", flush=True)
        print(f"ratio : {raw / herald:.2f} (herald / raw throughput)", flush=True)
    if args.rfm_orders:
        generated, seconds, scored = rfm_pass(args.rfm_orders)
        print(
            f"rfm   : recomputed over {args.rfm_orders} delivered orders ({scored} contacts) "
            f"in {seconds:.1f} s (data generated in {generated:.1f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])

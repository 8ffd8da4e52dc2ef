"""Webhook intake: 10k SendGrid "delivered" events through /webhooks/<key>/ under gunicorn,
beside a no-op endpoint receiving the same requests on the same server, in the same run.

Herald runs under gunicorn on a free loopback port (2 workers x 4 threads, as `bin/run`), on
a database of its own (`herald_bench_webhooks`) holding 10k sent deliveries. The events come
as SendGrid's Event Webhook posts them: JSON arrays of --batch events (1000 by default),
with basic auth, from --clients client threads, each request on a new connection. The intake
stores each request raw, authenticates it, has Anymail normalise the events
(integrations.providers.esp_webhooks) and applies them through the ledger
(campaigns.delivery.feedback → campaigns.ledger.deliveries_feedback).

Figures, all in events per second:
- no-op: POST /bench/noop-webhook reads the body and answers 200 — the floor of receiving
  the same requests over the same server and client path (measured before and after the
  intake; the mean is used);
- intake: POST /webhooks/<key>/, the ratio intake / no-op (target >= 0.5);
- ledger alone: the same 10k status changes written in-process with
  campaigns.ledger.deliveries_feedback in batches of the same size (no HTTP, no parsing),
  for what the database write itself costs.
Afterwards every one of the 10k deliveries must be delivered, with one event each.
"""

import argparse
import base64
import http.client
import json
import os
import queue
import sys
import threading
import time

from tests.benchmarks import support

DATABASE_NAME = "herald_bench_webhooks"
SETTINGS = "tests.benchmarks.webhooks_settings"
PREFIX = "bench-wh-"
CREDENTIALS = "sendgrid:bench-webhook-secret"
INTEGRATION_NAME = "SendGrid (webhook benchmark)"


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(support.LOOPBACK, port, timeout=120)
    try:
        conn.request(
            "POST",
            path,
            body=body,
            headers={"Connection": "close", "Content-Type": "application/json", **headers},
        )
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def post_all(port: int, path: str, bodies: list[bytes], headers: dict, clients: int) -> float:
    """Post every body once from `clients` threads; return the seconds it took. Any answer
    but 200 stops the benchmark."""
    work: queue.Queue[bytes] = queue.Queue()
    for body in bodies:
        work.put(body)
    failures: list[str] = []

    def client() -> None:
        while not failures:
            try:
                body = work.get_nowait()
            except queue.Empty:
                return
            status, answer = post(port, path, body, headers)
            if status != 200:
                failures.append(f"{path} answered {status}: {answer[:300]!r}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - started
    if failures:
        raise RuntimeError(failures[0])
    return took


def deliveries_make(count: int) -> list[int]:
    """`count` sent deliveries whose provider message ids are PREFIX + n; earlier runs' go."""
    from campaigns.models import Delivery

    Delivery.objects.filter(provider_message_id__startswith=PREFIX).delete()
    rows = [
        Delivery(
            channel="email",
            locator=f"reader{n}@bench.example",
            status="sent",
            provider_message_id=f"{PREFIX}{n}",
        )
        for n in range(count)
    ]
    Delivery.objects.bulk_create(rows, batch_size=2000)
    return list(
        Delivery.objects.filter(provider_message_id__startswith=PREFIX)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def bodies_make(count: int, batch: int) -> list[bytes]:
    """SendGrid Event Webhook posts: JSON arrays of "delivered" events, `batch` per post."""
    stamp = int(time.time())
    events = [
        {
            "email": f"reader{n}@bench.example",
            "timestamp": stamp,
            "smtp-id": f"<{PREFIX}{n}@ismtpd-555>",
            "event": "delivered",
            "category": ["bench"],
            "sg_event_id": f"sg-bench-delivered-{n}",
            "sg_message_id": f"{PREFIX}{n}.filter0001",
            "response": "250 OK",
            "tls": 1,
            "ip": "168.1.1.1",
            "anymail_id": f"{PREFIX}{n}",
        }
        for n in range(count)
    ]
    return [json.dumps(events[i : i + batch]).encode() for i in range(0, count, batch)]


def delivered_count() -> tuple[int, int]:
    from campaigns.models import Delivery, DeliveryEvent

    mine = Delivery.objects.filter(provider_message_id__startswith=PREFIX)
    events = DeliveryEvent.objects.filter(delivery__in=mine, status="delivered")
    return mine.filter(status="delivered").count(), events.count()


def ledger_alone(ids: list[int], batch: int) -> float:
    """Put the deliveries back to sent and write the same changes with the ledger function
    itself, batch by batch, each in its own transaction as the intake does."""
    from django.db import transaction

    from campaigns.ledger import deliveries_feedback
    from campaigns.models import Delivery, DeliveryEvent

    DeliveryEvent.objects.filter(delivery_id__in=ids).delete()
    Delivery.objects.filter(pk__in=ids).update(status="sent", delivered_at=None)
    started = time.perf_counter()
    for i in range(0, len(ids), batch):
        rows = [
            (pk, "delivered", f"sg-bench-delivered-{n}", "250 OK", "")
            for n, pk in enumerate(ids[i : i + batch], start=i)
        ]
        with transaction.atomic():
            deliveries_feedback(rows)
    return time.perf_counter() - started


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench webhooks", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="delivered events")
    parser.add_argument("--batch", type=int, default=1000, help="events per webhook request")
    parser.add_argument("--clients", type=int, default=2, help="client threads posting")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    args = parser.parse_args(argv)

    if support.ran_apart("tests.benchmarks.bench_webhooks", argv):
        return
    database_url = support.setup_django(DATABASE_NAME)
    from config.core.models import Integration
    from config.core.secrets import secrets_seal
    from integrations.models import WebhookRequest
    from tests.benchmarks.webhooks_urls import KIND

    Integration.objects.filter(name=INTEGRATION_NAME).delete()
    WebhookRequest.objects.filter(integration__isnull=True).delete()
    integration = Integration.objects.create(
        kind=KIND,
        name=INTEGRATION_NAME,
        channels=["email"],
        secrets_sealed=secrets_seal({"webhook_secret": CREDENTIALS}),
    )
    ids = deliveries_make(args.events)
    bodies = bodies_make(args.events, args.batch)
    auth = {"Authorization": "Basic " + base64.b64encode(CREDENTIALS.encode()).decode()}
    webhook = f"/webhooks/{integration.webhook_key}/"
    size = sum(len(body) for body in bodies) / len(bodies)
    print(
        f"gunicorn: {args.workers} workers x {args.threads} threads on loopback; "
        f"{args.clients} client threads, a new connection per request; {os.cpu_count()} CPUs "
        f"shared by both"
    )
    print(
        f"database: {support.describe_database(database_url)}; {args.events} sent deliveries; "
        f"{len(bodies)} SendGrid posts of {args.batch} events ({size / 1024:.0f} KiB each)"
    )
    with support.Gunicorn(
        workers=args.workers,
        threads=args.threads,
        environ={"DJANGO_SETTINGS_MODULE": SETTINGS},
    ) as server:
        warm_up = json.dumps([]).encode()
        for _ in range(8):
            post_all(server.port, webhook, [warm_up], auth, 1)
            post_all(server.port, "/bench/noop-webhook", bodies[:1], auth, 1)
        noop_before = post_all(server.port, "/bench/noop-webhook", bodies, auth, args.clients)
        intake = post_all(server.port, webhook, bodies, auth, args.clients)
        noop_after = post_all(server.port, "/bench/noop-webhook", bodies, auth, args.clients)
    delivered, events = delivered_count()
    applied = WebhookRequest.objects.filter(integration=integration, outcome="applied")
    stored = applied.exclude(body=warm_up).count()
    ledger = ledger_alone(ids, args.batch)
    ledger_delivered, _ = delivered_count()

    noop = (noop_before + noop_after) / 2
    rate = {
        "no-op": args.events / noop,
        "intake": args.events / intake,
        "ledger": args.events / ledger,
    }
    print(
        f"no-op    POST /bench/noop-webhook   {rate['no-op']:10.0f} events/s "
        f"({noop_before:.2f} s before, {noop_after:.2f} s after)"
    )
    print(f"intake   POST /webhooks/<key>/      {rate['intake']:10.0f} events/s ({intake:.2f} s)")
    print(f"ledger   deliveries_feedback alone  {rate['ledger']:10.0f} events/s ({ledger:.2f} s)")
    print(
        f"delivered after the intake: {delivered} of {args.events} ({events} events); "
        f"{stored} requests stored and applied; after the ledger pass: {ledger_delivered}"
    )
    print(
        f"ratio: the intake runs at {rate['intake'] / rate['no-op']:.0%} of the no-op "
        f"endpoint's throughput (target >= 0.5), and at {rate['intake'] / rate['ledger']:.0%} "
        "of the ledger write alone"
    )
    if delivered != args.events or events != args.events or ledger_delivered != args.events:
        raise SystemExit("not every delivery was delivered exactly once")


if __name__ == "__main__":
    main(sys.argv[1:])

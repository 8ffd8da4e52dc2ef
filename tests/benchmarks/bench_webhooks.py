"""Webhook intake: 10k delivery events through /webhooks/<key>/ under gunicorn, in two modes.

Herald runs under gunicorn on a free loopback port, as `bin/run` runs it (2 workers x 4
threads), on a database of its own (`herald_bench_webhooks`) holding sent deliveries, with a
real Celery worker (--drain-workers prefork processes) on a queue of the benchmark's own.
Every webhook request is stored raw, authenticated (HTTP basic auth) and normalised by Anymail
(integrations.providers.esp_webhooks); a request of a few events is queued and answered, and
drains in the worker apply the queued requests in batches through the ledger
(integrations.webhooks → campaigns.delivery.feedback → campaigns.ledger.deliveries_feedback);
a batch of a hundred events or more is applied before it is answered. The intake's figures
count the time until every event is APPLIED (each slice or batch: from its first post until
no request of it is still queued); the time until every request was answered is given
beside them, but the answers alone are not what the targets are about.

(a) One event per request, as Postmark, Mailgun and Amazon SES (through SNS) post them:
    --events Postmark "Delivery" webhooks, each once, from --clients client processes, each
    request on a new connection, beside the no-op endpoint POST /bench/noop-webhook (reads
    the body, answers 200: what any receiver must at least do) receiving the same requests
    on the same server. The endpoints take turns in --rounds slices (all clients on the
    same endpoint at a time), so a machine whose other load comes and goes weighs on each
    alike, as in `bench events`. The ratio intake (applied) / no-op is the one with the
    target >= 0.5: what storing, authenticating, parsing and applying cost on top of the
    web stack (the worker's drains share the CPUs with gunicorn and the clients).
(b) Batches, as SendGrid's Event Webhook posts them: --events "delivered" events in JSON
    arrays of --batch, one request at a time, beside the ledger write alone: the same
    status changes (a twin set of deliveries, batch for batch) written in-process with
    campaigns.ledger.deliveries_feedback, one transaction per batch, no HTTP and no parsing.
    Batch and ledger write take turns. Here the web stack is negligible (the no-op figure
    shows it); the ratio intake (applied) / ledger alone says what the intake adds to the
    write (batches of 1000 are applied while the service waits: answered = applied).
After each mode every delivery of that mode must be delivered, with exactly one event.
"""

import argparse
import base64
import http.client
import json
import multiprocessing
import os
import signal
import sys
import time
from datetime import UTC, datetime

from tests.benchmarks import support

DATABASE_NAME = "herald_bench_webhooks"
# The broker queue of the benchmark's gunicorn and worker (purged before and after).
QUEUE = "herald-bench-webhooks"
# How often the benchmark asks whether a slice's requests are all applied (an indexed
# EXISTS on the queued rows; seconds).
POLL = 0.005
SETTINGS = "tests.benchmarks.webhooks_settings"
PREFIX = "bench-wh-"
CREDENTIALS = "bench-hooks:bench-webhook-secret"
NOOP = "/bench/noop-webhook"
# Requests a client process takes from the pool at a time: small, so that the last
# requests of a slice are still spread over all clients.
CHUNK = 20
WARM_UP_REQUESTS = 40


# --- client side (spawned processes: no Django) ---------------------------------------------


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """One POST on a new connection, closed afterwards (no keep-alive)."""
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


def _post_many(port: int, path: str, headers: dict[str, str], bodies: list[bytes]) -> list[str]:
    """Post each body once; the answers that were not 200."""
    failures = []
    for body in bodies:
        try:
            status, answer = post(port, path, body, headers)
        except OSError as exc:
            status, answer = 0, repr(exc).encode()
        if status != 200:
            failures.append(f"{path} answered {status}: {answer[:300]!r}")
    return failures


def slice_post(pool, port: int, path: str, headers: dict, bodies: list[bytes]) -> float:
    """Post `bodies` from the pool's client processes; the seconds it took. Any answer but
    200 stops the benchmark."""
    chunks = [(port, path, headers, bodies[i : i + CHUNK]) for i in range(0, len(bodies), CHUNK)]
    started = time.perf_counter()
    failures = [failure for part in pool.starmap(_post_many, chunks) for failure in part]
    took = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} failed requests; the first: {failures[0]}")
    return took


# --- data -----------------------------------------------------------------------------------


def deliveries_make(prefix: str, count: int) -> list[int]:
    """`count` sent deliveries whose provider message ids are `prefix` + n, in n's order."""
    from campaigns.models import Delivery

    rows = [
        Delivery(
            channel="email",
            locator=f"reader{n}@bench.example",
            status="sent",
            provider_message_id=f"{prefix}{n}",
        )
        for n in range(count)
    ]
    Delivery.objects.bulk_create(rows, batch_size=2000)
    return list(
        Delivery.objects.filter(provider_message_id__startswith=prefix)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def postmark_bodies(prefix: str, count: int) -> list[bytes]:
    """Postmark's Delivery webhook (one event per request) for each delivery."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return [
        json.dumps(
            {
                "RecordType": "Delivery",
                "ServerID": 23,
                "MessageStream": "outbound",
                "MessageID": f"{prefix}{n}",
                "Recipient": f"reader{n}@bench.example",
                "Tag": "bench",
                "DeliveredAt": now,
                "Details": "smtp;250 2.0.0 OK",
                "Metadata": {},
            }
        ).encode()
        for n in range(count)
    ]


def sendgrid_bodies(prefix: str, count: int, batch: int) -> list[bytes]:
    """SendGrid Event Webhook posts: JSON arrays of "delivered" events, `batch` per post."""
    stamp = int(time.time())
    events = [
        {
            "email": f"reader{n}@bench.example",
            "timestamp": stamp,
            "smtp-id": f"<{prefix}{n}@ismtpd-555>",
            "event": "delivered",
            "category": ["bench"],
            "sg_event_id": f"sg-bench-delivered-{n}",
            "sg_message_id": f"{prefix}{n}.filter0001",
            "response": "250 OK",
            "tls": 1,
            "ip": "168.1.1.1",
            "anymail_id": f"{prefix}{n}",
        }
        for n in range(count)
    ]
    return [json.dumps(events[i : i + batch]).encode() for i in range(0, count, batch)]


def delivered_once(prefix: str) -> tuple[int, int]:
    """(deliveries of `prefix` delivered, their "delivered" events)."""
    from campaigns.models import Delivery, DeliveryEvent

    mine = Delivery.objects.filter(provider_message_id__startswith=prefix)
    events = DeliveryEvent.objects.filter(delivery__in=mine, status="delivered")
    return mine.filter(status="delivered").count(), events.count()


def applied_wait(integration_id: int, timeout: float = 600) -> None:
    """Return once no request of the integration is waiting to be applied (every request
    posted so far was answered, so each is queued or done)."""
    from integrations.models import WebhookRequest

    queued = WebhookRequest.objects.filter(integration_id=integration_id, outcome="queued")
    deadline = time.monotonic() + timeout
    while queued.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"webhook requests still queued after {timeout} s")
        time.sleep(POLL)


def failures_check(integration_id: int) -> None:
    from integrations.models import WebhookRequest

    failed = WebhookRequest.objects.filter(integration_id=integration_id).exclude(outcome="applied")
    if failed.exists():
        first = failed.first()
        raise SystemExit(f"{failed.count()} requests not applied; the first: {first.error}")


def queue_purge() -> None:
    from config.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(QUEUE)
    except Exception as exc:  # a transport without the queue yet; nothing to purge
        print(f"(queue {QUEUE} not purged: {exc.__class__.__name__})")


def check(mode: str, prefix: str, count: int) -> str:
    delivered, events = delivered_once(prefix)
    line = f"{mode}: {delivered} of {count} delivered, {events} events"
    if delivered != count or events != count:
        raise SystemExit(f"not every delivery was delivered exactly once ({line})")
    return line


def ledger_write(ids: list[int], first: int) -> float:
    """The status changes of one SendGrid batch written with the ledger function alone, in a
    transaction of its own as the intake does; the seconds it took."""
    from django.db import transaction

    from campaigns.ledger import deliveries_feedback

    rows = [
        (pk, "delivered", f"sg-bench-delivered-{n}", "250 OK", "")
        for n, pk in enumerate(ids, start=first)
    ]
    started = time.perf_counter()
    with transaction.atomic():
        deliveries_feedback(rows)
    return time.perf_counter() - started


def integration_make(kind: str, name: str):
    from config.core.models import Integration
    from config.core.secrets import secrets_seal
    from integrations.models import WebhookRequest

    WebhookRequest.objects.filter(integration__name=name).delete()
    Integration.objects.filter(name=name).delete()
    return Integration.objects.create(
        kind=kind,
        name=name,
        channels=["email"],
        secrets_sealed=secrets_seal({"webhook_secret": CREDENTIALS}),
    )


def database_prepare() -> None:
    """Earlier runs' deliveries and requests go; fresh statistics for the new ones."""
    from django.db import connection

    from campaigns.models import Delivery, DeliveryEvent
    from integrations.models import WebhookRequest

    mine = Delivery.objects.filter(provider_message_id__startswith=PREFIX)
    DeliveryEvent.objects.filter(delivery__in=mine).delete()
    mine.delete()
    WebhookRequest.objects.filter(integration__isnull=True).delete()
    with connection.cursor() as cursor:
        for model in (Delivery, DeliveryEvent, WebhookRequest):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")


def load() -> str:
    return "load average " + " ".join(f"{figure:.1f}" for figure in os.getloadavg())


def rate(label: str, events: int, seconds: float, extra: str = "") -> str:
    return f"{label:<38} {events / seconds:9.0f} events/s  ({seconds:.2f} s{extra})"


# --- the two modes --------------------------------------------------------------------------


def single_mode(server, args, auth: dict) -> None:
    """(a): one Postmark event per request, intake and no-op taking turns."""
    from config.core.models import Integration

    prefix = f"{PREFIX}a-"
    integration: Integration = integration_make("bench-postmark", "Postmark (webhook benchmark)")
    deliveries_make(prefix, args.events)
    bodies = postmark_bodies(prefix, args.events)
    webhook = f"/webhooks/{integration.webhook_key}/"
    warm_up = postmark_bodies(f"{PREFIX}nowhere-", WARM_UP_REQUESTS)  # match nothing
    print(
        f"(a) one event per request: {args.events} Postmark Delivery webhooks "
        f"({sum(map(len, bodies)) / len(bodies):.0f} bytes each) from {args.clients} client "
        f"processes, a new connection per request, {args.rounds} slices per endpoint; {load()}",
        flush=True,
    )
    context = multiprocessing.get_context("spawn")
    with context.Pool(
        args.clients, initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN)
    ) as pool:
        slice_post(pool, server.port, webhook, auth, warm_up)
        slice_post(pool, server.port, NOOP, auth, warm_up)
        applied_wait(integration.pk)
        seconds = {"intake": 0.0, "answered": 0.0, "no-op": 0.0}
        size = -(-args.events // args.rounds)
        for round_ in range(args.rounds):
            part = bodies[round_ * size : (round_ + 1) * size]
            turns = [("no-op", NOOP), ("intake", webhook)]
            for label, path in turns if round_ % 2 == 0 else reversed(turns):
                started = time.perf_counter()
                took = slice_post(pool, server.port, path, auth, part)
                if label == "intake":
                    seconds["answered"] += took
                    applied_wait(integration.pk)
                    took = time.perf_counter() - started
                seconds[label] += took
    failures_check(integration.pk)
    print(rate("    no-op   POST /bench/noop-webhook", args.events, seconds["no-op"]))
    print(rate("    intake  stored and applied", args.events, seconds["intake"]))
    print(rate("    intake  answered", args.events, seconds["answered"]))
    print(f"    {check('checked', prefix, args.events)}; {load()}")
    print(
        f"    ratio: the intake applies at {seconds['no-op'] / seconds['intake']:.0%} of the "
        "no-op endpoint's throughput (target >= 0.5); it answers at "
        f"{seconds['no-op'] / seconds['answered']:.0%}",
        flush=True,
    )


def batch_mode(server, args, auth: dict) -> None:
    """(b): SendGrid batches, one request at a time, taking turns with the ledger write."""
    prefix, twin = f"{PREFIX}b-", f"{PREFIX}l-"
    integration = integration_make("bench-sendgrid", "SendGrid (webhook benchmark)")
    deliveries_make(prefix, args.events)
    twin_ids = deliveries_make(twin, args.events)
    bodies = sendgrid_bodies(prefix, args.events, args.batch)
    webhook = f"/webhooks/{integration.webhook_key}/"
    print(
        f"(b) batches: {args.events} SendGrid delivered events in {len(bodies)} posts of "
        f"{args.batch} ({sum(map(len, bodies)) / len(bodies) / 1024:.0f} KiB each), one at a "
        f"time, taking turns with the ledger write of the same batch; {load()}",
        flush=True,
    )
    warm_up = sendgrid_bodies(f"{PREFIX}nowhere-", args.batch, args.batch)[0]
    for _ in range(3):
        post(server.port, webhook, warm_up, auth)
        post(server.port, NOOP, bodies[0], auth)
    applied_wait(integration.pk)
    seconds = {"intake": 0.0, "answered": 0.0, "no-op": 0.0, "ledger": 0.0}

    def intake(body: bytes) -> tuple[int, bytes]:
        started = time.perf_counter()
        answer = post(server.port, webhook, body, auth)
        seconds["answered"] += time.perf_counter() - started
        if answer[0] == 200:
            applied_wait(integration.pk)
        return answer

    for index, body in enumerate(bodies):
        first = index * args.batch
        turns = [
            ("no-op", lambda body=body: post(server.port, NOOP, body, auth)),
            ("intake", lambda body=body: intake(body)),
            (
                "ledger",
                lambda first=first: ledger_write(twin_ids[first : first + args.batch], first),
            ),
        ]
        for label, turn in turns if index % 2 == 0 else reversed(turns):
            started = time.perf_counter()
            answer = turn()
            seconds[label] += time.perf_counter() - started
            if isinstance(answer, tuple) and answer[0] != 200:
                raise RuntimeError(f"{label} answered {answer[0]}: {answer[1][:300]!r}")
    failures_check(integration.pk)
    print(rate("    no-op   POST /bench/noop-webhook", args.events, seconds["no-op"]))
    print(rate("    intake  stored and applied", args.events, seconds["intake"]))
    print(rate("    intake  answered", args.events, seconds["answered"]))
    print(rate("    ledger  deliveries_feedback alone", args.events, seconds["ledger"]))
    print(f"    {check('checked', prefix, args.events)}; {check('ledger', twin, args.events)}")
    print(
        f"    ratio: the intake applies at {seconds['ledger'] / seconds['intake']:.0%} of the "
        f"ledger write alone; {load()}",
        flush=True,
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench webhooks", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="delivery events per mode")
    parser.add_argument("--batch", type=int, default=1000, help="events per batch (mode b)")
    parser.add_argument("--clients", type=int, default=4, help="client processes (mode a)")
    parser.add_argument("--rounds", type=int, default=5, help="slices per endpoint (mode a)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument(
        "--drain-workers", type=int, default=2, help="Celery worker processes (drains)"
    )
    parser.add_argument("--mode", choices=("a", "b", "both"), default="both")
    args = parser.parse_args(argv)

    if support.ran_apart("tests.benchmarks.bench_webhooks", argv):
        return
    os.environ["HERALD_QUEUE"] = QUEUE  # gunicorn's workers and the Celery worker inherit it
    database_url = support.setup_django(DATABASE_NAME)
    database_prepare()
    queue_purge()
    auth = {"Authorization": "Basic " + base64.b64encode(CREDENTIALS.encode()).decode()}
    print(
        f"gunicorn: {args.workers} workers x {args.threads} threads (gthread, as bin/run) on "
        f"loopback; {os.cpu_count()} CPUs shared with the clients; database: "
        f"{support.describe_database(database_url)}; a Celery worker of {args.drain_workers} "
        f"processes applies the queued requests (broker queue {QUEUE})"
    )
    from tests.support.worker import CeleryWorker

    try:
        with (
            CeleryWorker(concurrency=args.drain_workers, queue=QUEUE),
            support.Gunicorn(
                workers=args.workers,
                threads=args.threads,
                environ={"DJANGO_SETTINGS_MODULE": SETTINGS},
            ) as server,
        ):
            if args.mode in ("a", "both"):
                single_mode(server, args, auth)
            if args.mode in ("b", "both"):
                batch_mode(server, args, auth)
    finally:
        queue_purge()


if __name__ == "__main__":
    main(sys.argv[1:])

"""Event ingest: POST /api/v1/event under gunicorn against a no-op endpoint on the same server.

Herald runs under gunicorn on a free loopback port, configured as `bin/run` runs it (2
workers x 4 threads; --threads 1 for sync workers), on a database of its own
(`herald_bench_events`). Client processes open a new connection per request, as `bench api`
does, and send the eSputnik v1 API's Generate event example (two params, keyValue an email
that belongs to a contact, so the contact lookup runs too). The endpoints take turns in short
slices, all clients on the same one at a time, so a machine whose other load comes and goes
weighs on each alike. Each event is stored and kicks the processing of stored events through the
configured broker, on a queue of the benchmark's own that is purged afterwards (no worker
consumes it). The ratio is the event endpoint's throughput over the no-op's: what
authentication, DRF, validation, the INSERT and the kick cost on top of the web stack;
GET /api/v1/account/info (authentication and one SELECT) is measured too, as the floor of
any API call. Clients and server share the CPUs.
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
from functools import partial

from tests.benchmarks import support

DATABASE_NAME = "herald_bench_events"
QUEUE = "bench_events"
KEY_NAME = "benchmark-events"
WARM_UP_REQUESTS = 40
BODY = {
    "eventTypeKey": "benchEvent",
    "keyValue": "bench.person@example.com",
    "params": [
        {"name": "discount", "value": "5%"},
        {"name": "link", "value": "https://example.site.com/items_for_sale"},
    ],
}


def send(port: int, method: str, path: str, body: bytes | None, headers: dict) -> tuple[int, bytes]:
    """One request on a new connection, closed afterwards (no keep-alive)."""
    conn = http.client.HTTPConnection(support.LOOPBACK, port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Connection": "close", **headers})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _client(port, endpoints, start_at, slice_seconds, rounds) -> list[support.LoadResult]:
    """Every client follows one timetable: round after round, each endpoint for one slice,
    so all clients load the same endpoint at the same time."""
    results = [support.LoadResult(seconds=slice_seconds * rounds) for _ in endpoints]
    for turn in range(rounds * len(endpoints)):
        index = turn % len(endpoints)
        method, path, body, headers = endpoints[index][1:]
        result = results[index]
        begins = start_at + turn * slice_seconds
        time.sleep(max(0.0, begins - time.monotonic()))
        result.send_until(begins + slice_seconds, partial(send, port, method, path, body, headers))
    return results


def load_interleaved(port, endpoints, *, clients: int, duration: float, rounds: int):
    """{label: LoadResult} with `duration` seconds per endpoint, in `rounds` slices each.

    Interleaved rather than one endpoint after the other: on a machine whose other load
    comes and goes, back-to-back phases compare endpoints under different conditions, while
    alternating slices share them out evenly.
    """
    context = multiprocessing.get_context("spawn")
    start_at = time.monotonic() + 2.0  # spawning the clients takes a while
    slice_seconds = duration / rounds
    with context.Pool(
        clients, initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN)
    ) as pool:
        parts = pool.starmap(
            _client, [(port, endpoints, start_at, slice_seconds, rounds)] * clients
        )
    totals = {}
    for index, (label, *_) in enumerate(endpoints):
        total = support.LoadResult(seconds=duration)
        for part in parts:
            total.requests += part[index].requests
            total.errors += part[index].errors
            total.latencies.extend(part[index].latencies)
            total.first_error = total.first_error or part[index].first_error
        totals[label] = total
    return totals


def _purge_queue() -> None:
    from config.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(QUEUE)
    except Exception as exc:  # a transport without the queue yet; nothing to purge
        print(f"(queue {QUEUE} not purged: {exc.__class__.__name__})")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench events", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per endpoint")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--threads", type=int, default=4, help="threads per worker, as bin/run (1: sync workers)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="slices each endpoint gets")
    args = parser.parse_args(argv)

    if support.ran_apart("tests.benchmarks.bench_events", argv):
        return
    os.environ["HERALD_QUEUE"] = QUEUE  # gunicorn's workers inherit it
    database_url = support.setup_django(DATABASE_NAME)
    from config.core.api_keys import api_key_create
    from config.core.models import APIKey
    from contacts.models import Contact
    from marketing.models import Event

    APIKey.objects.filter(name=KEY_NAME).delete()
    _, secret = api_key_create(name=KEY_NAME, rights="events")
    auth = {"Authorization": "Basic " + base64.b64encode(f"bench:{secret}".encode()).decode()}
    Contact.objects.get_or_create(email=BODY["keyValue"])
    body = json.dumps(BODY).encode()
    last_before = Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    workers = (
        f"{args.workers} workers x {args.threads} threads (gthread, as bin/run)"
        if args.threads > 1
        else f"{args.workers} sync workers"
    )
    print(
        f"gunicorn: {workers} on loopback; {args.clients} client processes, a new connection "
        f"per request, {args.duration:g} s per endpoint in {args.rounds} interleaved slices; "
        f"{os.cpu_count()} CPUs shared by both"
    )
    print(f"database: {support.describe_database(database_url)}; broker queue {QUEUE}")
    with support.Gunicorn(workers=args.workers, threads=args.threads) as server:
        json_post = {"Content-Type": "application/json", **auth}
        for _ in range(WARM_UP_REQUESTS):
            support.request(server.port, "/bench/noop")
            status, answer = send(server.port, "POST", "/api/v1/event", body, json_post)
            if status != 200:
                raise RuntimeError(f"/api/v1/event answered {status}: {answer[:300]!r}")
        results = load_interleaved(
            server.port,
            [
                ("no-op    GET /bench/noop", "GET", "/bench/noop", None, {}),
                ("event    POST /api/v1/event", "POST", "/api/v1/event", body, json_post),
                # The cheapest authenticated API call: the floor every API request pays here.
                ("API key  GET /api/v1/account/info", "GET", "/api/v1/account/info", None, auth),
            ],
            clients=args.clients,
            duration=args.duration,
            rounds=args.rounds,
        )
    for label, result in results.items():
        print(support.report(label, result), flush=True)
    noop, events, account = results.values()
    new_events = Event.objects.filter(pk__gt=last_before)
    stored, linked = new_events.count(), new_events.filter(contact__isnull=False).count()
    print(f"events stored: {stored} (warm-up included), linked to the contact: {linked}")
    _purge_queue()
    if noop.per_second and events.per_second:
        print(
            f"ratio: POST /api/v1/event runs at {events.per_second / noop.per_second:.0%} of the "
            f"no-op throughput ({events.per_second:.0f} events/s; target ratio >= 0.5)"
        )
    if account.per_second and events.per_second:
        print(
            f"        and at {events.per_second / account.per_second:.0%} of GET "
            "/api/v1/account/info (API key authentication + DRF + one SELECT)"
        )


if __name__ == "__main__":
    main(sys.argv[1:])

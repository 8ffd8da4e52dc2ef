"""API throughput: `GET /api/v1/account/info` with an API key against a no-op endpoint.

Herald runs under gunicorn (sync workers) on a free loopback port, on the `herald_bench`
database. Several client processes open a new connection per request (as integrations that
call now and then do) for a fixed time per endpoint. The no-op endpoint passes the same
middleware but does no work, so the ratio is what API authentication, DRF and the database
cost on top of the web stack. Clients and server share this machine's CPUs: compare figures
from the same machine only.
"""

import argparse
import base64
import os

from tests.benchmarks.support import (
    Gunicorn,
    describe_database,
    load,
    report,
    request,
    setup_django,
)

KEY_NAME = "benchmark"
WARM_UP_REQUESTS = 40


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench api", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per endpoint")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    args = parser.parse_args(argv)

    database_url = setup_django()
    from config.core.api_keys import api_key_create
    from config.core.models import APIKey

    # One key per run; earlier runs' keys go so the table stays the size of a real one.
    APIKey.objects.filter(name=KEY_NAME).delete()
    _, secret = api_key_create(name=KEY_NAME, rights="full")
    auth = {"Authorization": "Basic " + base64.b64encode(f"bench:{secret}".encode()).decode()}

    print(
        f"gunicorn: {args.workers} sync workers on loopback; {args.clients} client processes, "
        f"a new connection per request, {args.duration:g} s per endpoint; "
        f"{os.cpu_count()} CPUs shared by both"
    )
    print(f"database: {describe_database(database_url)}", flush=True)
    with Gunicorn(workers=args.workers) as server:
        # Every worker connects to the database and imports the API on its first requests.
        for _ in range(WARM_UP_REQUESTS):
            request(server.port, "/bench/noop")
            status, body = request(server.port, "/api/v1/account/info", auth)
            if status != 200:
                raise RuntimeError(f"/api/v1/account/info answered {status}: {body[:300]!r}")
        noop = load(server.port, "/bench/noop", clients=args.clients, duration=args.duration)
        print(report("no-op    GET /bench/noop", noop), flush=True)
        api = load(
            server.port,
            "/api/v1/account/info",
            headers=auth,
            clients=args.clients,
            duration=args.duration,
        )
        print(report("API key  GET /api/v1/account/info", api), flush=True)
    if noop.per_second and api.per_second:
        print(
            f"ratio: account/info runs at {api.per_second / noop.per_second:.0%} of the no-op "
            f"throughput ({noop.per_second / api.per_second:.2f}x the cost per request)"
        )

"""Mixed load: events, contact upserts, tracking hits and pages against a no-op endpoint.

Herald runs as `bin/run` runs it (gunicorn 2 workers x 4 threads, a Celery worker with
concurrency 2, celery beat) on a database of its own (`herald_bench_load`) and the configured
broker, with a real SMTP sink; a 20-recipient campaign is sent first so the open and click
links are real. User threads on keep-alive connections go round the mix of
tests/load/harness.py for `--duration` seconds after a warm-up, then the same threads load
`/bench/noop` (the same middleware, no work) for as long. Printed: per request kind and in
total the requests, req/s, p50/p99 latency and errors; the RSS of every gunicorn and Celery
process after the warm-up and at the end; whether the acknowledged work was done; and the
mix's throughput as a share of the no-op's. Clients, server, worker and database share the
machine's CPUs: compare figures from the same machine only.
"""

import argparse
import sys

from tests.benchmarks import support

DATABASE_NAME = "herald_bench_load"
WARM_UP_SECONDS = 5


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench load", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of mixed load")
    parser.add_argument("--users", type=int, default=6, help="user threads")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args(argv)

    if support.ran_apart("tests.benchmarks.bench_load", argv):
        return
    with support.scratch_database(
        DATABASE_NAME, keep=args.keep, settings_module=support.BENCH_SETTINGS
    ) as database_url:
        _run(args, database_url)


def _run(args, database_url: str) -> None:
    from tests.load import harness

    print(f"database: {support.describe_database(database_url)}", flush=True)
    with harness.herald_running(
        database_url=database_url, settings_module=support.BENCH_SETTINGS
    ) as stack:
        port = stack.port
        targets = harness.targets_prepare(stack)
        warm_up = harness.load_run(
            port, targets, seconds=WARM_UP_SECONDS, users=args.users, tag="warm"
        )
        start = stack.memory()
        result = harness.load_run(
            port, targets, seconds=args.duration, users=args.users, tag="load"
        )
        end = stack.memory()
        print(harness.load_report(result), flush=True)
        print(harness.memory_report(start, end), flush=True)
        noop = harness.noop_run(port, seconds=args.duration, users=args.users)
        print(harness.stats_line("no-op", noop, args.duration), flush=True)
        done = warm_up.done
        done.add(result.done)
        missing = harness.work_check(done, targets)
        print("work: " + ("; ".join(missing) if missing else "all acknowledged work done"))
    mixed = result.total.requests / result.seconds
    floor = noop.requests / args.duration
    if mixed and floor:
        print(
            f"ratio: the mix runs at {mixed / floor:.0%} of the no-op throughput "
            f"({floor / mixed:.2f}x the cost per request)"
        )


if __name__ == "__main__":
    main(sys.argv[1:])

"""A campaign survives each fault: every recipient once (copies only in flight, with the same
Message-ID), every ledger row sent, the run completed. See the package docstring."""

import random
import time
from datetime import timedelta

import pytest

from tests.campaigns.test_pipeline_worker import kill_worker
from tests.faults.harness import (
    FaultRun,
    PostgresProxy,
    PrivateRedis,
    database_host_port,
    fault_recipients,
    fault_runs,
    fault_seed,
)

pytestmark = [pytest.mark.faults, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# How long the broker stays dead, and PostgreSQL and the SMTP server refuse, once the fault hits.
BROKER_DOWN_SECONDS = 3.0
DATABASE_OUTAGE_SECONDS = 10.0
# Senders wait for the database to record what they sent until half their claim lease.
DATABASE_OUTAGE_LEASE = timedelta(seconds=30)
SMTP_OUTAGE_SECONDS = 5.0
# Kills per run: one or two, each followed by a restart.
KILLS_PER_RUN = 2
SMTP_OUTAGE_REPLY = "421 4.3.2 Service not available, closing transmission channel"


@pytest.fixture
def rng() -> random.Random:
    seed = fault_seed()
    print(f"\nHERALD_FAULT_SEED={seed}")
    return random.Random(seed)


def test_worker_killed_at_random_moments_loses_nobody_and_doubles_only_messages_in_flight(rng):
    for number in range(1, fault_runs() + 1):
        with (
            PrivateRedis() as broker,
            FaultRun(
                fault=f"worker killed, run {number}", recipients=fault_recipients(), broker=broker
            ) as run,
        ):
            run.launch()

            def kill_and_restart() -> None:
                kill_worker(run.workers[-1])
                run.worker_start()

            run.at_random_moments(rng, kill_and_restart, count=rng.randint(1, KILLS_PER_RUN))
            run.finish()
            run.check()


def test_broker_killed_and_restarted_mid_run_loses_nobody(rng):
    with (
        PrivateRedis() as broker,
        FaultRun(fault="broker restarted", recipients=fault_recipients(), broker=broker) as run,
    ):
        run.launch()

        def restart_broker() -> None:
            broker.kill()
            time.sleep(BROKER_DOWN_SECONDS)
            broker.start()

        run.at_random_moments(rng, restart_broker)
        run.finish()
        run.check()


def test_database_refusing_connections_for_ten_seconds_loses_nobody_and_doubles_nobody(rng):
    with (
        PrivateRedis() as broker,
        PostgresProxy(*database_host_port()) as proxy,
        FaultRun(
            fault="database refusing",
            recipients=fault_recipients(),
            broker=broker,
            database_url=proxy.database_url(),
            lease=DATABASE_OUTAGE_LEASE,
        ) as run,
    ):
        run.launch()
        run.at_random_moments(rng, lambda: proxy.outage(DATABASE_OUTAGE_SECONDS))
        run.finish()
        figures = run.check()
        print(f"  proxy cut {proxy.cut} connections and refused {proxy.refused}")
        # A chunk sent while the database went away is recorded once it is back (the
        # outage is shorter than half the lease): nothing goes out twice.
        assert figures.duplicates == 0


def test_smtp_server_answering_421_for_a_while_loses_nobody_and_doubles_nobody(rng):
    with (
        PrivateRedis() as broker,
        FaultRun(fault="SMTP 421", recipients=fault_recipients(), broker=broker) as run,
    ):
        run.launch()
        run.at_random_moments(rng, lambda: run.sink.outage(SMTP_OUTAGE_REPLY, SMTP_OUTAGE_SECONDS))
        run.finish()
        figures = run.check()
        print(f"  the server refused {run.sink.outage_refused} MAIL commands")
        # A refused message was never accepted: nothing was in flight to be sent twice.
        assert figures.duplicates == 0

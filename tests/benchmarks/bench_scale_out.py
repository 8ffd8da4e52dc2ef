"""Scale-out: one campaign's send rate with 1, 2 and 3 worker machines on RabbitMQ, beside
raw smtplib from as many processes as the machines have pool processes, in the same run.

Each machine is a Celery worker with its own directory, VAR dir and host name
(tests.scale.machines), two pool processes, on a private RabbitMQ vhost (tests.scale.rabbitmq;
HERALD_TEST_AMQP_URL overrides). Mail goes to Postfix's smtp-sink (bench_campaign_send). The
clock runs from the launch until no delivery of the run is queued. On one host the machines
share its CPUs, so the figures show the overhead of spreading out, not the gain of more
hardware; the ratio to raw smtplib with the same process count is what compares.
"""

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from tests.benchmarks import support
from tests.benchmarks.bench_campaign_send import SMTPSinkServer, raw_pass

DATABASE_NAME = "herald_bench_scale_out"
QUEUE = "q_bench_scale_out"
POOL = 2  # pool processes per machine


def contacts_insert(count: int) -> None:
    from django.db import connection

    from tests.scale.test_three_machines import contacts_insert as insert

    insert(count)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE contacts_contact")


def herald_pass(machines: int, sink: SMTPSinkServer, broker: str, database_url: str) -> dict:
    from campaigns.lifecycle import campaign_launch_now
    from campaigns.models import Delivery
    from tests.campaigns.test_pipeline import make_campaign, make_template
    from tests.scale.machines import WorkerMachine, machines_ready

    campaign = make_campaign(status="draft", template=make_template(f"Sale {machines}"))
    workers = [
        WorkerMachine(
            f"machine{n + 1}",
            concurrency=POOL,
            queue=QUEUE,
            broker_url=broker,
            database_url=database_url,
            env={"EMAIL_URL": f"smtp://127.0.0.1:{sink.port}", "DEBUG": "0"},
        )
        for n in range(machines)
    ]
    try:
        for worker in workers:
            worker.start()
        machines_ready(*workers)
        began = time.perf_counter()
        run = campaign_launch_now(campaign=campaign)
        support.run_sent_wait(run.pk)
        elapsed = time.perf_counter() - began
    finally:
        for worker in workers:
            worker.__exit__(None, None, None)
    sent = Delivery.objects.filter(run_id=run.pk, status="sent").count()
    return {"sent": sent, "seconds": elapsed, "rate": sent / elapsed}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench scale_out", description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--machines", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args(argv)
    if support.ran_apart("tests.benchmarks.bench_scale_out", argv):
        return
    from tests.scale.rabbitmq import queue_delete, rabbitmq_url

    broker = rabbitmq_url()
    if broker is None:
        print("No RabbitMQ on 127.0.0.1:5672 (set HERALD_TEST_AMQP_URL): skipped.")
        return
    scratch = Path(tempfile.mkdtemp(prefix="herald-bench-scale-"))
    try:
        with SMTPSinkServer() as sink:
            environ = {
                "CELERY_BROKER_URL": broker,
                "HERALD_QUEUE": QUEUE,
                "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}",
                "DEBUG": "0",
                "HERALD_VAR_DIR": str(scratch / "var"),
            }
            with support.scratch_database(
                DATABASE_NAME, keep=False, environ=environ
            ) as database_url:
                _run(args, sink, broker, database_url)
            queue_delete(broker, QUEUE)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run(args, sink: SMTPSinkServer, broker: str, database_url: str) -> None:
    count = args.recipients
    print(
        f"{count:,} recipients, machines of {POOL} pool processes on RabbitMQ, "
        f"smtp-sink on port {sink.port}, {os.cpu_count()} CPUs",
        flush=True,
    )
    contacts_insert(count)
    for machines in args.machines:
        herald = herald_pass(machines, sink, broker, database_url)
        raw = raw_pass(count, sink, machines * POOL)
        print(
            f"{machines} machine(s): Herald {herald['sent']:,} sent in {herald['seconds']:.1f} s "
            f"= {herald['rate']:,.0f} msg/s; raw smtplib from {machines * POOL} processes "
            f"{raw['rate']:,.0f} msg/s; Herald/raw = {herald['rate'] / raw['rate']:.2f}",
            flush=True,
        )

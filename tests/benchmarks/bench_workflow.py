"""Workflow latency: time from POST /api/v1/event to the message in a local SMTP server.

One active workflow with a single send step listens to the event type. Each event (the
eSputnik v1 API's Generate event example, keyValue a known contact's email, two params used as
$data) is posted through Django's test client in this process; the clock stops when the SMTP server
holds that contact's message. In between: the event INSERT, its processing task on a real
Celery worker (event → workflow run → ledger row through the single-message service), the
send task (render, tracking, SMTP). Events are sent one after another (the next once the
previous message arrived), so the figures are the unloaded latency. Everything runs in a
database of its own (`herald_bench_workflow`), dropped afterwards.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

from tests.benchmarks import support

DATABASE_NAME = "herald_bench_workflow"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench workflow", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100, help="events to send (one by one)")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args(argv)

    if support.ran_apart("tests.benchmarks.bench_workflow", argv):
        return
    environ = {
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "HERALD_VAR_DIR": tempfile.mkdtemp(prefix="herald-bench-workflow-"),
        # A queue of its own, so a running dev worker cannot take the benchmark's tasks.
        "HERALD_QUEUE": f"bench_workflow_{os.getpid()}",
    }
    with support.scratch_database(DATABASE_NAME, keep=args.keep, environ=environ):
        _run(args)


def _run(args) -> None:
    from django.test import Client

    from config.core.api_keys import api_key_create
    from contacts.models import Contact
    from marketing.models import EventType
    from marketing.workflows.services import workflow_activate, workflow_create
    from templates.services import template_create, template_publish
    from tests.support.api import APIClient
    from tests.support.smtp import SMTPSink
    from tests.support.worker import CeleryWorker

    template = template_create(
        name="Discount",
        subject="A discount for you",
        from_name="Shop",
        from_email="shop@shop.example",
        html="<p>Hi $!contact.firstName, take $!data.get('discount') off: "
        "<a href=\"$!data.get('link')\">shop now</a></p>",
    )
    template_publish(template=template)
    event_type = EventType.objects.create(key="benchWorkflowEvent")
    workflow = workflow_create(
        name="Bench",
        trigger_kind="event",
        event_type=event_type,
        re_entry="every_time",
        graph={
            "start": "s1",
            "steps": [{"id": "s1", "kind": "send", "template_id": template.pk, "channel": "email"}],
        },
    )
    workflow_activate(workflow=workflow)
    Contact.objects.bulk_create(
        [
            Contact(email=f"person{n}@example.com", first_name=f"Person{n}", confirmed=True)
            for n in range(args.events)
        ]
    )
    _key, secret = api_key_create(name="bench", rights="full")
    api = APIClient(Client())
    print(
        f"{args.events} events one by one; 2 worker processes; database {DATABASE_NAME}; "
        f"{os.cpu_count()} CPUs (shared)",
        flush=True,
    )
    latencies = []
    with SMTPSink() as sink, CeleryWorker(concurrency=2, env={"EMAIL_URL": sink.url}) as worker:
        for n in range(-3, args.events):  # three warm-up events (worker imports, connections)
            address = f"person{max(n, 0)}@example.com"
            expected = len(sink.received) + 1
            body = {
                "eventTypeKey": "benchWorkflowEvent",
                "keyValue": address,
                "params": [
                    {"name": "discount", "value": "5%"},
                    {"name": "link", "value": "https://example.site.com/items_for_sale"},
                ],
            }
            began = time.perf_counter()
            response = api.post("/api/v1/event", key=secret, body=body)
            assert response.status_code == 200, response.content[:500]
            deadline = time.monotonic() + 60
            while len(sink.received) < expected:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no message after 60 s\n{worker.output()[-3000:]}")
                time.sleep(0.002)
            if n >= 0:
                latencies.append(time.perf_counter() - began)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"  event → message in the SMTP sink: median {statistics.median(latencies) * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main(sys.argv[1:])

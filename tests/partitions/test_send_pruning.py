"""Sending a run reads one month of the ledger: every statement the sender runs on the
deliveries names the run's partition, so a big past costs the send rate nothing (the
figures: tests/benchmarks/bench_ledger_growth.py)."""

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns import pipeline
from campaigns.delivery import engine
from campaigns.models import Delivery, DeliveryStatus
from config.core.partitions import month_add, month_start
from tests.campaigns.test_pipeline import make_campaign, make_run, sink, vip  # noqa: F401
from tests.partitions.support import ledger_months

pytestmark = pytest.mark.django_db

THIS_MONTH = month_start(timezone.now().date())
LEDGER_PARTITION = re.compile(r"^campaigns_delivery_(p\d{6}|default)$")


def ledger_partitions_read(sql: str) -> set[str]:
    """The partitions of the ledger the plan of `sql` reads (planned, not run)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    found: set[str] = set()

    def walk(node: dict) -> None:
        name = node.get("Relation Name", "")
        if LEDGER_PARTITION.match(name):
            found.add(name)
        for child in node.get("Plans", ()):
            walk(child)

    walk(plan[0]["Plan"])
    return found


def test_every_ledger_statement_of_a_run_sender_reads_only_the_runs_month(sink):  # noqa: F811
    ledger_months(*(month_add(THIS_MONTH, -n) for n in range(1, 4)))
    vip(5)
    run = make_run(make_campaign())
    pipeline.run_materialise(run=run)

    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            if engine.run_send(run_id=run.pk) is None:
                break

    assert Delivery.objects.filter(run=run, status=DeliveryStatus.SENT).count() == 5
    statements = [
        query["sql"]
        for query in queries.captured_queries
        if Delivery._meta.db_table in query["sql"]
        and query["sql"].lstrip().upper().startswith(("SELECT", "UPDATE", "WITH", "/*"))
    ]
    assert statements
    wide = [sql for sql in statements if len(ledger_partitions_read(sql)) > 1]
    assert not wide, "\n\n".join(wide)

"""Retention of the delivery ledger: its month partitions (config.core.partitions) older than
HERALD_RETENTION_DELIVERIES_DAYS are summarised, then dropped with their history.

Before a month goes, the runs whose rows it holds (every row of a run is in its run's month)
are rolled up one last time — RunStats and MetricBucket (campaigns.analytics, and through
`stats_refreshed` the conversions apps above add), their per-link clicks (RunLinkClicks) —
and stamped `ledger_dropped_at`: from then on the reports read those runs from the rollups
alone, and nothing recomputes them from a ledger that is no longer there. A month holding a
row of a run still running or paused, or a queued row, is kept until they are done.
"""

# Table names below come from the models; every value goes through parameters.
# ruff: noqa: S608

from __future__ import annotations

from datetime import UTC, date, datetime

from django.db import connection
from django.utils import timezone

from campaigns.analytics import stats_refresh, stats_refreshed
from campaigns.models import (
    CampaignRun,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    RunLinkClicks,
    RunStatus,
)
from campaigns.promo.models import PromoCode
from config.core.partitions import Partitioned, partitioned_register


def _month_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return (
        datetime(start.year, start.month, start.day, tzinfo=UTC),
        datetime(end.year, end.month, end.day, tzinfo=UTC),
    )


def _runs_of(start: date, end: date):
    """The runs whose rows are in [start, end): `period` is the month the run started."""
    since, until = _month_bounds(start, end)
    return CampaignRun.objects.filter(started_at__gte=since, started_at__lt=until)


def ledger_month_keep(start: date, end: date) -> str | None:
    """Why the month must stay: a run of it still sends, or a row of it waits to be sent."""
    if _runs_of(start, end).filter(status__in=[RunStatus.RUNNING, RunStatus.PAUSED]).exists():
        return "a run of this month is still running or paused"
    queued = Delivery.objects.filter(
        period__gte=start, period__lt=end, status=DeliveryStatus.QUEUED
    )
    if queued.exists():
        return "deliveries of this month are still queued"
    return None


_LINKS_SQL = f"""
INSERT INTO {RunLinkClicks._meta.db_table} AS k (run_id, url, clicks, unique_clicks)
SELECT d.run_id, e.url, count(*), count(DISTINCT e.delivery_id)
  FROM {DeliveryEvent._meta.db_table} e
  JOIN {Delivery._meta.db_table} d ON d.id = e.delivery_id AND d.period = e.period
 WHERE e.period >= %s AND e.period < %s AND d.run_id IS NOT NULL
   AND e.status = 'clicked' AND e.url <> '' AND NOT e.machine
 GROUP BY d.run_id, e.url
ON CONFLICT (run_id, url) DO UPDATE SET
    clicks = EXCLUDED.clicks, unique_clicks = EXCLUDED.unique_clicks
"""


def ledger_month_rollup(start: date, end: date) -> None:
    """The last rollup of the month's runs, from its rows while they still exist."""
    run_ids = list(_runs_of(start, end).values_list("pk", flat=True))
    if run_ids:
        stats_refresh(run_ids=run_ids)
        stats_refreshed.send(sender=stats_refresh, run_ids=run_ids)
    with connection.cursor() as cursor:
        cursor.execute(_LINKS_SQL, [start, end])
    _runs_of(start, end).update(ledger_dropped_at=timezone.now())
    # Promo codes keep who got them as a contact; the delivery they went out in goes.
    PromoCode.objects.filter(
        delivery_id__in=Delivery.objects.filter(period__gte=start, period__lt=end).values("pk")
    ).update(delivery=None)


LEDGER = Partitioned(
    table=Delivery._meta.db_table,
    key="period",
    key_is_date=True,
    retention_setting="HERALD_RETENTION_DELIVERIES_DAYS",
    rollup=ledger_month_rollup,
    keep=ledger_month_keep,
    companions=(DeliveryEvent._meta.db_table,),
)
# The history follows its deliveries' months (a companion of LEDGER): no retention of its own.
HISTORY = Partitioned(table=DeliveryEvent._meta.db_table, key="period", key_is_date=True)


def ledger_partitions_register() -> None:
    partitioned_register(LEDGER)
    partitioned_register(HISTORY)

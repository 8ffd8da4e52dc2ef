"""Retention in marketing: months of events past HERALD_RETENTION_EVENTS_DAYS are counted
into EventRollup and dropped (config.core.partitions), and what marketing links to in a
dropped month of events or of the delivery ledger (campaigns.retention) is cleared, in the
drop's transaction: those links have no database foreign key (the tables are partitioned).

- events: each month's events become counts per type, hour of occurrence and contact, which
  event analytics adds to the events still stored (marketing.event_analytics); the derived
  events' source keys of that month are forgotten (the history they came from is older than
  anything the engagement emit reads again); workflow runs keep going without their event;
- the ledger: an order keeps its attribution (`attribution`, `attributed_campaign`) and the
  run's conversions stay in the frozen rollup; only the link to the delivery goes. A
  workflow run's message links into that month go (the run and its steps stay).
"""

# Table names below come from the models; every value goes through parameters.
# ruff: noqa: S608

from __future__ import annotations

from datetime import UTC, date, datetime

from django.db import connection

from campaigns.models import Delivery
from config.core.partitions import Partitioned, partitioned_register
from marketing.models import Event, EventRollup, EventSourceKey, Order
from marketing.workflows.models import WorkflowMessage, WorkflowRun

_EVENT_ROLLUP_SQL = f"""
INSERT INTO {EventRollup._meta.db_table} AS r (event_type_id, hour, contact_id, events)
SELECT event_type_id, date_trunc('hour', occurred_at), contact_id, count(*)
  FROM {Event._meta.db_table}
 WHERE created_at >= %s AND created_at < %s
 GROUP BY 1, 2, 3
ON CONFLICT (event_type_id, hour, contact_id) DO UPDATE SET events = r.events + EXCLUDED.events
"""


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return (
        datetime(start.year, start.month, start.day, tzinfo=UTC),
        datetime(end.year, end.month, end.day, tzinfo=UTC),
    )


def events_month_rollup(start: date, end: date) -> None:
    """Count the month's events into EventRollup (added to, since a later month may hold
    events that occurred in the same hours); runs once, in the drop's transaction."""
    since, until = _bounds(start, end)
    with connection.cursor() as cursor:
        cursor.execute(_EVENT_ROLLUP_SQL, [since, until])
    month = Event.objects.filter(created_at__gte=since, created_at__lt=until).values("pk")
    WorkflowRun.objects.filter(event_id__in=month).update(event=None)
    EventSourceKey.objects.filter(created_at__lt=until).delete()


EVENTS = Partitioned(
    table=Event._meta.db_table,
    key="created_at",
    retention_setting="HERALD_RETENTION_EVENTS_DAYS",
    rollup=events_month_rollup,
)


def event_partitions_register() -> None:
    partitioned_register(EVENTS)


def ledger_links_clear(sender, *, table: str, start: date, end: date, **kwargs) -> None:
    if table != Delivery._meta.db_table:
        return
    month = Delivery.objects.filter(period__gte=start, period__lt=end).values("pk")
    Order.objects.filter(attributed_delivery_id__in=month).update(attributed_delivery=None)
    WorkflowMessage.objects.filter(delivery_id__in=month).delete()

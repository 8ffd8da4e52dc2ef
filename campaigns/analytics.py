"""Campaign analytics: a set-based rollup of the delivery ledger into RunStats (per run and
channel) and MetricBucket (opens/clicks per hour), and the reads every report is built from.

Reports read only the rollups, so a page view costs a few rows whatever the audience size.
The one exception is the per-link click table of a single campaign, which groups that
campaign's click events (through the run → delivery → event indexes, never the whole ledger).

Where the numbers come from:
- recipients, sends, deliveries, failures, skipped: Delivery rows and their timestamps;
- opens/clicks: totals are the counters kept on each Delivery (campaigns.tracking adds one
  per pixel hit or click, beside its history row; a provider's reported opens and clicks
  add the same way, once per provider event, campaigns.ledger.deliveries_feedback); unique
  counts are deliveries with opened_at/clicked_at (a click sets opened_at too: it proves an
  open with images blocked);
- deliveries, bounces, complaints, unsubscribes: the Delivery status and stamps as provider
  feedback leaves them (a complaint may follow a bounce or an unsubscribe; the earlier
  outcome still counts, see `_ROLLUP_SQL`; a soft bounce counts as a bounce);
- feedback arrives long after a run ended: its history rows are stamped when they arrive,
  so the incremental refresh finds the run through them, whatever their status;
- machine opens/clicks (mail privacy proxies, link scanners: campaigns.engagement) are
  counted apart (Delivery.machine_open_count / machine_click_count into RunStats
  machine_opens / machine_clicks); every other open and click figure, the rates, the
  timeline and the per-link table are human engagement only;
- timeline: DeliveryEvent rows with status opened/clicked (not machine), bucketed by hour;
- replies, conversions and revenue are not derived from the ledger: no provider reports
  replies yet and orders fill conversions/revenue; the rollup leaves those columns alone.
"""

# Table names below come from the models; every value goes through parameters.
# ruff: noqa: S608

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Max, Q, Sum
from django.dispatch import Signal
from django.utils import timezone

from campaigns.models import (
    Campaign,
    CampaignRun,
    CampaignStatus,
    Delivery,
    DeliveryEvent,
    MetricBucket,
    RunLinkClicks,
    RunStats,
    RunStatus,
)
from config.core.models import Heartbeat
from config.core.services import heartbeat_record
from contacts.models import Contact

# Runs that finished this recently are refreshed on every tick even without new events:
# the last sends and bounces of a run land in the minutes after its final batch.
RECENT_RUN_WINDOW = timedelta(hours=6)
# Events are stamped with their transaction's start time and become visible at commit; the
# refresh looks this far behind its previous start so a slow transaction is still counted.
# Recomputing a run twice costs little; missing one would leave its numbers stale.
EVENT_MARGIN = timedelta(minutes=5)
# First refresh on a database with history (no previous refresh recorded).
FIRST_REFRESH_WINDOW = timedelta(days=7)
HEARTBEAT_NAME = "analytics"
# Serialises refreshes: two concurrent upserts of the same rows in different orders could
# deadlock, and a second beat tick during a slow refresh has nothing to add.
_LOCK_KEY = 0x4845_5231  # "HER1"
LINKS_LIMIT = 100
# Sent (with run_ids, None for "every recent run") after each rollup refresh, for the apps
# above that add their own figures to the rollup rows (marketing's order conversions).
stats_refreshed = Signal()

METRICS = (
    "recipients",
    "sends",
    "deliveries",
    "opens",
    "unique_opens",
    "clicks",
    "unique_clicks",
    "machine_opens",
    "machine_clicks",
    "replies",
    "bounces",
    "complaints",
    "unsubscribes",
    "failures",
    "skipped",
    "conversions",
    "revenue",
)

_T_DELIVERY = Delivery._meta.db_table
_T_EVENT = DeliveryEvent._meta.db_table
_T_STATS = RunStats._meta.db_table
_T_BUCKET = MetricBucket._meta.db_table
_T_RUN = CampaignRun._meta.db_table
_T_LINKS = RunLinkClicks._meta.db_table
_T_CONTACT = Contact._meta.db_table

# One row per (run, channel). Statuses never fall back (campaigns.ledger.TRANSITIONS), so the
# current status plus the timestamps tell the whole story without reading the history:
# a complained row with failed_at set bounced first (FAILED rows cannot complain), and only
# a complained row needs its history to know whether it also unsubscribed (rare rows, one
# index probe each through delivery_event_recent).
_ROLLUP_SQL = f"""
INSERT INTO {_T_STATS} AS s (
    run_id, channel, recipients, sends, deliveries, opens, unique_opens, clicks,
    unique_clicks, machine_opens, machine_clicks, replies, bounces, complaints, unsubscribes,
    failures, skipped, reported_deliveries, conversions, revenue, updated_at
)
SELECT d.run_id, d.channel,
       count(*),
       count(*) FILTER (WHERE d.sent_at IS NOT NULL),
       count(*) FILTER (WHERE d.delivered_at IS NOT NULL OR d.opened_at IS NOT NULL
                          OR d.clicked_at IS NOT NULL OR d.open_count > 0
                          OR d.click_count > 0),
       coalesce(sum(d.open_count), 0),
       count(*) FILTER (WHERE d.opened_at IS NOT NULL OR d.open_count > 0),
       coalesce(sum(d.click_count), 0),
       count(*) FILTER (WHERE d.clicked_at IS NOT NULL OR d.click_count > 0),
       coalesce(sum(d.machine_open_count), 0),
       coalesce(sum(d.machine_click_count), 0),
       0,
       count(*) FILTER (WHERE d.status = 'bounced'
                          OR (d.status = 'complained' AND d.failed_at IS NOT NULL)),
       count(*) FILTER (WHERE d.status = 'complained'),
       count(*) FILTER (WHERE CASE
           WHEN d.status = 'unsubscribed' THEN true
           WHEN d.status = 'complained' THEN EXISTS (
               SELECT 1 FROM {_T_EVENT} e
                WHERE e.delivery_id = d.id AND e.status = 'unsubscribed')
           ELSE false END),
       count(*) FILTER (WHERE d.status = 'failed'),
       count(*) FILTER (WHERE d.status = 'skipped'),
       count(*) FILTER (WHERE d.delivered_at IS NOT NULL AND d.failed_at IS NULL),
       0, 0, now()
  FROM {_T_DELIVERY} d
 WHERE d.run_id = ANY(%s)
 GROUP BY d.run_id, d.channel
ON CONFLICT (run_id, channel) DO UPDATE SET
    recipients = EXCLUDED.recipients,
    sends = EXCLUDED.sends,
    deliveries = EXCLUDED.deliveries,
    opens = EXCLUDED.opens,
    unique_opens = EXCLUDED.unique_opens,
    clicks = EXCLUDED.clicks,
    unique_clicks = EXCLUDED.unique_clicks,
    machine_opens = EXCLUDED.machine_opens,
    machine_clicks = EXCLUDED.machine_clicks,
    bounces = EXCLUDED.bounces,
    complaints = EXCLUDED.complaints,
    unsubscribes = EXCLUDED.unsubscribes,
    failures = EXCLUDED.failures,
    skipped = EXCLUDED.skipped,
    reported_deliveries = EXCLUDED.reported_deliveries,
    updated_at = EXCLUDED.updated_at
"""

# Hourly opens/clicks. Each bucket is recomputed from all of its hour's events (never
# incremented), so running it twice, or over an overlapping window, gives the same rows.
_BUCKET_COLUMNS = f"""
INSERT INTO {_T_BUCKET} AS b (run_id, channel, hour, opens, clicks)
SELECT d.run_id, d.channel, date_trunc('hour', e.at),
       count(*) FILTER (WHERE e.status = 'opened'),
       count(*) FILTER (WHERE e.status = 'clicked')
  FROM {_T_EVENT} e
  JOIN {_T_DELIVERY} d ON d.id = e.delivery_id
"""
_BUCKET_UPSERT = """
 GROUP BY d.run_id, d.channel, date_trunc('hour', e.at)
ON CONFLICT (run_id, channel, hour) DO UPDATE SET
    opens = EXCLUDED.opens, clicks = EXCLUDED.clicks
"""
# Whole runs (an explicit refresh): through the run's deliveries and delivery_event_recent.
_BUCKETS_FOR_RUNS_SQL = (
    _BUCKET_COLUMNS
    + """
 WHERE d.run_id = ANY(%s) AND e.status IN ('opened', 'clicked') AND NOT e.machine
"""
    + _BUCKET_UPSERT
)
# Every hour from `since` (rounded down to its hour, so each touched bucket sees all of its
# events): the BRIN index on event time reads only the recent end of the history.
_BUCKETS_SINCE_SQL = (
    _BUCKET_COLUMNS
    + """
 WHERE e.at >= date_trunc('hour', %s::timestamptz) AND e.status IN ('opened', 'clicked')
   AND NOT e.machine AND d.run_id IS NOT NULL
"""
    + _BUCKET_UPSERT
)
_RUNS_WITH_EVENTS_SINCE_SQL = f"""
SELECT DISTINCT d.run_id
  FROM {_T_EVENT} e
  JOIN {_T_DELIVERY} d ON d.id = e.delivery_id
 WHERE e.at >= %s AND d.run_id IS NOT NULL
"""


@dataclass(frozen=True)
class RefreshResult:
    runs: int
    stats_rows: int
    bucket_rows: int


def _runs_to_refresh(*, since: datetime) -> list[int]:
    recent = timezone.now() - RECENT_RUN_WINDOW
    active = set(
        CampaignRun.objects.filter(
            Q(status__in=[RunStatus.RUNNING, RunStatus.PAUSED])
            | Q(finished_at__gte=recent)
            | Q(started_at__gte=recent)
        ).values_list("pk", flat=True)
    )
    with connection.cursor() as cursor:
        cursor.execute(_RUNS_WITH_EVENTS_SINCE_SQL, [since])
        active.update(row[0] for row in cursor.fetchall())
    return sorted(active)


@transaction.atomic
def stats_refresh(*, run_ids: Iterable[int] | None = None) -> RefreshResult:
    """Recompute RunStats and MetricBucket from the ledger.

    With `run_ids`: exactly those runs, every bucket of theirs. Without: the incremental
    refresh of the beat task — runs that are running or paused, runs started or finished in
    the last RECENT_RUN_WINDOW, and runs with delivery events since the previous refresh
    (minus EVENT_MARGIN); buckets only for the hours since then. Idempotent either way.
    An incremental refresh that finds another one in progress returns at once.
    """
    with connection.cursor() as cursor:
        if run_ids is None:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_LOCK_KEY])
            if not cursor.fetchone()[0]:
                return RefreshResult(runs=0, stats_rows=0, bucket_rows=0)
        else:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])

    if run_ids is not None:
        runs = sorted({int(pk) for pk in run_ids})
        if not runs:
            return RefreshResult(runs=0, stats_rows=0, bucket_rows=0)
        with connection.cursor() as cursor:
            cursor.execute(_ROLLUP_SQL, [runs])
            stats_rows = cursor.rowcount
            cursor.execute(_BUCKETS_FOR_RUNS_SQL, [runs])
            bucket_rows = cursor.rowcount
        return RefreshResult(runs=len(runs), stats_rows=stats_rows, bucket_rows=bucket_rows)

    previous = Heartbeat.objects.filter(name=HEARTBEAT_NAME).values_list("seen_at", flat=True)
    last = previous.first()
    since = (last - EVENT_MARGIN) if last else timezone.now() - FIRST_REFRESH_WINDOW
    # Stamped with this refresh's start (it commits with the rollup, or not at all), so the
    # next refresh looks back to before anything this one may have missed.
    heartbeat_record(name=HEARTBEAT_NAME)
    runs = _runs_to_refresh(since=since)
    stats_rows = bucket_rows = 0
    with connection.cursor() as cursor:
        if runs:
            cursor.execute(_ROLLUP_SQL, [runs])
            stats_rows = cursor.rowcount
        cursor.execute(_BUCKETS_SINCE_SQL, [since])
        bucket_rows = cursor.rowcount
    return RefreshResult(runs=len(runs), stats_rows=stats_rows, bucket_rows=bucket_rows)


# --- Reads -----------------------------------------------------------------------------------


def _empty() -> dict:
    return {name: (Decimal("0.00") if name == "revenue" else 0) for name in METRICS}


def _with_rates(metrics: dict) -> dict:
    # Rates over messages that reached someone: sent minus bounced (an SMTP relay rarely
    # reports deliveries, so `deliveries` would understate the base).
    base = metrics["sends"] - metrics["bounces"]
    metrics["open_rate"] = round(metrics["unique_opens"] / base, 4) if base > 0 else None
    metrics["click_rate"] = round(metrics["unique_clicks"] / base, 4) if base > 0 else None
    metrics["pending"] = max(
        metrics["recipients"] - metrics["sends"] - metrics["failures"] - metrics["skipped"], 0
    )
    return metrics


def _sum_into(target: dict, row: dict) -> None:
    for name in METRICS:
        target[name] += row[name] or 0


def _aggregate(stats_rows: Iterable[dict]) -> tuple[dict, dict[str, dict]]:
    totals = _empty()
    channels: dict[str, dict] = {}
    for row in stats_rows:
        _sum_into(totals, row)
        _sum_into(channels.setdefault(row["channel"], _empty()), row)
    return _with_rates(totals), {name: _with_rates(m) for name, m in sorted(channels.items())}


def _timeline(buckets) -> list[dict]:
    rows = (
        buckets.values("hour").annotate(opens=Sum("opens"), clicks=Sum("clicks")).order_by("hour")
    )
    return [{"hour": row["hour"], "opens": row["opens"], "clicks": row["clicks"]} for row in rows]


def campaign_links(campaign: Campaign, *, limit: int = LINKS_LIMIT) -> list[dict]:
    """Clicks per URL for one campaign, most clicked first.

    Live runs are read from the ledger: the click events of this campaign's runs only, found
    through the run → delivery → event indexes. Runs whose ledger month retention dropped
    have their per-link rollup (RunLinkClicks) instead; a delivery belongs to one run, so
    unique clicks add up across runs.
    """
    sql = f"""
        SELECT url, sum(clicks)::bigint AS clicks, sum(unique_clicks)::bigint AS unique_clicks
          FROM (
            SELECT e.url, count(*) AS clicks, count(DISTINCT e.delivery_id) AS unique_clicks
              FROM {_T_RUN} r
              JOIN {_T_DELIVERY} d ON d.run_id = r.id
              JOIN {_T_EVENT} e ON e.delivery_id = d.id
             WHERE r.campaign_id = %s AND e.status = 'clicked' AND e.url <> ''
               AND NOT e.machine
             GROUP BY e.url
            UNION ALL
            SELECT k.url, k.clicks, k.unique_clicks
              FROM {_T_RUN} r JOIN {_T_LINKS} k ON k.run_id = r.id
             WHERE r.campaign_id = %s AND r.ledger_dropped_at IS NOT NULL
          ) links
         GROUP BY url
         ORDER BY clicks DESC, url
         LIMIT %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [campaign.pk, campaign.pk, limit])
        return [
            {"url": url, "clicks": clicks, "unique_clicks": unique}
            for url, clicks, unique in cursor.fetchall()
        ]


def campaign_analytics(campaign: Campaign, *, links: bool = True) -> dict:
    """Totals, per channel, per run, hourly timeline and per-link clicks of one campaign."""
    stats = list(
        RunStats.objects.filter(run__campaign=campaign).values("run_id", "channel", *METRICS)
    )
    totals, channels = _aggregate(stats)
    by_run: dict[int, list[dict]] = {}
    for row in stats:
        by_run.setdefault(row["run_id"], []).append(row)
    runs = []
    for run in campaign.runs.order_by("number"):
        run_totals, run_channels = _aggregate(by_run.get(run.pk, []))
        runs.append(
            {
                "id": run.pk,
                "number": run.number,
                "kind": run.kind,
                "parent_id": run.parent_id,
                "status": run.status,
                "status_reason": run.status_reason,
                "reach": run.reach,
                "started_at": run.started_at,
                "finished_at": run.finished_at,
                "metrics": run_totals,
                "channels": run_channels,
            }
        )
    refreshed = RunStats.objects.filter(run__campaign=campaign).aggregate(m=Max("updated_at"))
    return {
        "campaign": campaign,
        "totals": totals,
        "channels": channels,
        "runs": runs,
        "timeline": _timeline(MetricBucket.objects.filter(run__campaign=campaign)),
        "links": campaign_links(campaign) if links else [],
        "refreshed_at": refreshed["m"],
    }


def run_progress(run: CampaignRun) -> dict:
    """Where a run stands, from its rollup (refreshed by the beat task every few seconds)."""
    stats = RunStats.objects.filter(run=run).values("run_id", "channel", *METRICS)
    totals, _ = _aggregate(stats)
    total = totals["recipients"] or run.reach
    done = totals["sends"] + totals["failures"] + totals["skipped"]
    refreshed = RunStats.objects.filter(run=run).aggregate(m=Max("updated_at"))["m"]
    return {
        "run": run,
        "total": total,
        "done": done,
        "percent": round(100 * done / total) if total else 0,
        "metrics": totals,
        "refreshed_at": refreshed,
    }


def day_bounds(start: date, end: date, tz_name: str) -> tuple[datetime, datetime]:
    """[start 00:00, end+1 00:00) in the organisation's time zone: both days included."""
    tz = zoneinfo.ZoneInfo(tz_name)
    return (
        datetime.combine(start, time.min, tzinfo=tz),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz),
    )


def aggregated_metrics(campaign_ids: Iterable[int], start: datetime, end: datetime) -> dict:
    """Roll up the runs of these campaigns that started in [start, end).

    A run's numbers belong to the day it started (as in a campaign's send date), so a range
    answers "what did the sends of that period achieve", opens arriving later included.
    Soft-deleted campaigns still count: their history stays reportable.
    """
    ids = sorted(set(campaign_ids))
    found = set(Campaign.objects.filter(pk__in=ids).values_list("pk", flat=True))
    runs = CampaignRun.objects.filter(
        campaign_id__in=found, started_at__gte=start, started_at__lt=end
    )
    stats = list(
        RunStats.objects.filter(run__in=runs).values("run__campaign_id", "channel", *METRICS)
    )
    totals, channels = _aggregate(stats)
    per_campaign: dict[int, list[dict]] = {pk: [] for pk in found}
    for row in stats:
        per_campaign[row["run__campaign_id"]].append(row)
    campaigns = {pk: _aggregate(rows)[0] for pk, rows in sorted(per_campaign.items())}
    return {
        "campaign_ids": sorted(found),
        "unknown_ids": [pk for pk in ids if pk not in found],
        "runs": runs.count(),
        "totals": totals,
        "channels": channels,
        "campaigns": campaigns,
        "timeline": _timeline(MetricBucket.objects.filter(run__in=runs)),
    }


def dashboard_metrics(*, days: int = 30) -> dict:
    """Last-`days` tiles (runs started in the window, every campaign) and running campaigns."""
    now = timezone.now()
    start = now - timedelta(days=days)
    runs = CampaignRun.objects.filter(started_at__gte=start)
    stats = RunStats.objects.filter(run__in=runs).values("channel", *METRICS)
    totals, channels = _aggregate(stats)
    running = []
    active_runs = (
        CampaignRun.objects.filter(
            status__in=[RunStatus.RUNNING, RunStatus.PAUSED],
            campaign__deleted_at__isnull=True,
        )
        .select_related("campaign")
        .order_by("-started_at")[:20]
    )
    for run in active_runs:
        running.append(run_progress(run))
    return {
        "days": days,
        "start": start,
        "end": now,
        "runs": runs.count(),
        "totals": totals,
        "channels": channels,
        "running": running,
        "running_campaigns": Campaign.objects.filter(
            status=CampaignStatus.RUNNING, deleted_at__isnull=True
        ).count(),
        "scheduled_campaigns": Campaign.objects.filter(
            status=CampaignStatus.SCHEDULED, deleted_at__isnull=True
        ).count(),
    }


# --- Delivered, and the people behind the numbers (the campaign report) ---------------------

# Each kind: the condition on a delivery row and the time shown beside the person (the first
# open or click, the bounce, the unsubscribe).
PEOPLE_KINDS: dict[str, tuple[str, str]] = {
    # As the rollup's unique opens and clicks: people's only (a machine's hit counts in
    # machine_open_count / machine_click_count alone and stamps nothing).
    "opened": ("(d.opened_at IS NOT NULL OR d.open_count > 0)", "d.opened_at"),
    "clicked": ("(d.clicked_at IS NOT NULL OR d.click_count > 0)", "d.clicked_at"),
    "bounced": (
        "(d.status = 'bounced' OR (d.status = 'complained' AND d.failed_at IS NOT NULL))",
        "d.failed_at",
    ),
    "unsubscribed": (
        f"""(d.status = 'unsubscribed' OR (d.status = 'complained' AND EXISTS (
              SELECT 1 FROM {_T_EVENT} e WHERE e.delivery_id = d.id
                 AND e.status = 'unsubscribed')))""",
        f"""(SELECT min(e.at) FROM {_T_EVENT} e WHERE e.delivery_id = d.id
              AND e.status = 'unsubscribed')""",
    ),
}
PEOPLE_PAGE = 50
# Rows fetched per query while streaming a CSV: bounded memory whatever the audience.
PEOPLE_EXPORT_BATCH = 2000


def campaign_delivered(campaign: Campaign) -> dict:
    """Delivered per channel and in total, and how each figure was found.

    A channel whose provider reports deliveries counts the ledger's delivered rows
    (delivered_at, stamped by the provider's report); a channel whose provider reports none
    (a plain SMTP relay) counts sent and not bounced. Opens are never counted as deliveries
    here. Reads this campaign's deliveries through the run → delivery index, as
    campaign_links does; runs whose ledger month retention dropped count from their
    rollup (the same three figures)."""
    sql = f"""
        SELECT channel, sum(reported)::bigint, sum(sent)::bigint, sum(bounced)::bigint
          FROM (
            SELECT d.channel,
                   count(*) FILTER (WHERE d.delivered_at IS NOT NULL AND d.failed_at IS NULL)
                       AS reported,
                   count(*) FILTER (WHERE d.sent_at IS NOT NULL) AS sent,
                   count(*) FILTER (WHERE d.status = 'bounced'
                                      OR (d.status = 'complained' AND d.failed_at IS NOT NULL))
                       AS bounced
              FROM {_T_RUN} r JOIN {_T_DELIVERY} d ON d.run_id = r.id
             WHERE r.campaign_id = %s
             GROUP BY d.channel
            UNION ALL
            SELECT s.channel, s.reported_deliveries, s.sends, s.bounces
              FROM {_T_RUN} r JOIN {_T_STATS} s ON s.run_id = r.id
             WHERE r.campaign_id = %s AND r.ledger_dropped_at IS NOT NULL
          ) figures
         GROUP BY channel
         ORDER BY channel"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [campaign.pk, campaign.pk])
        rows = cursor.fetchall()
    channels = {}
    for channel, reported, sent, bounced in rows:
        if reported:
            channels[channel] = {"delivered": reported, "basis": "reported"}
        else:
            channels[channel] = {"delivered": max(sent - bounced, 0), "basis": "sent_not_bounced"}
    bases = {row["basis"] for row in channels.values()}
    return {
        "delivered": sum(row["delivered"] for row in channels.values()),
        "basis": bases.pop() if len(bases) == 1 else ("mixed" if bases else "reported"),
        "channels": channels,
    }


def _people_sql(kind: str) -> tuple[str, str]:
    condition, at = PEOPLE_KINDS[kind]
    return condition, at


def campaign_people(
    campaign: Campaign, *, kind: str, page: int = 1, size: int = PEOPLE_PAGE
) -> dict:
    """One page of the recipients who opened / clicked / bounced / unsubscribed, earliest
    first, with the count (exact: a campaign's engagement rows, through its runs)."""
    condition, at = _people_sql(kind)
    base = f"""
        FROM {_T_RUN} r JOIN {_T_DELIVERY} d ON d.run_id = r.id
        LEFT JOIN {_T_CONTACT} c ON c.id = d.contact_id
       WHERE r.campaign_id = %s AND {condition}"""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) {base}", [campaign.pk])
        count = cursor.fetchone()[0]
        last = max(1, -(-count // size))
        page = min(max(1, page), last)
        cursor.execute(
            f"""SELECT d.id, d.contact_id, c.first_name, c.last_name, d.channel, d.locator,
                       {at} AS at, d.open_count, d.click_count
                  {base}
                 ORDER BY at NULLS LAST, d.id
                 LIMIT %s OFFSET %s""",
            [campaign.pk, size, (page - 1) * size],
        )
        rows = [_person(row) for row in cursor.fetchall()]
    return {"rows": rows, "count": count, "page": page, "last": last, "size": size}


def _person(row) -> dict:
    delivery_id, contact_id, first, last, channel, locator, at, opens, clicks = row
    return {
        "delivery_id": delivery_id,
        "contact_id": contact_id,
        "name": f"{first or ''} {last or ''}".strip(),
        "channel": channel,
        "address": locator,
        "at": at,
        "opens": opens,
        "clicks": clicks,
    }


def campaign_people_export(campaign: Campaign, *, kind: str) -> Iterable[dict]:
    """Every such recipient, in delivery order, fetched in bounded batches (keyset on id)."""
    condition, at = _people_sql(kind)
    after = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"""SELECT d.id, d.contact_id, c.first_name, c.last_name, d.channel,
                           d.locator, {at} AS at, d.open_count, d.click_count
                      FROM {_T_RUN} r JOIN {_T_DELIVERY} d ON d.run_id = r.id
                      LEFT JOIN {_T_CONTACT} c ON c.id = d.contact_id
                     WHERE r.campaign_id = %s AND {condition} AND d.id > %s
                     ORDER BY d.id
                     LIMIT %s""",
                [campaign.pk, after, PEOPLE_EXPORT_BATCH],
            )
            rows = cursor.fetchall()
        if not rows:
            return
        for row in rows:
            yield _person(row)
        after = rows[-1][0]

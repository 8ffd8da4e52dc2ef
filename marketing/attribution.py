"""Revenue attribution: which campaign or workflow message earned an order, and the
conversions/revenue columns of campaign analytics (RunStats) that follow from it.

An order is credited, in this order of precedence:
1. "utm": to the Herald campaign whose id its UTM data names — the first of
   `additionalInfo.utm_campaign`, `additionalInfo.utmCampaign`, and the same two keys at the top
   level of the order as sent (`raw`). The value is the campaign's numeric id (a number or a
   string of digits, e.g. the `utm_campaign={{ campaign.id }}` of a tracked link); else the
   campaign whose automatic UTM tagging (campaigns.utm) puts that value in its links: the
   first non-blank of the same keys, compared case-insensitively, the most recent such
   campaign when several share it. A value that names no campaign either way is ignored
   (then the click rule applies).
2. "click": to the delivery (a campaign run's message or a workflow message; transactional
   sends do not count) of the order's contact with the latest `clicked_at` in
   (order date - HERALD_ATTRIBUTION_WINDOW_DAYS, order date]. `clicked_at` is when the message
   was first clicked, so "last clicked" means the most recent message the contact clicked.
Otherwise the order is unattributed (attribution = "").

Attribution is recomputed whenever the shop sends the order again (the order upsert calls
`orders_attribute`), so a changed date or UTM value moves the credit with it.

Conversions and revenue (`conversions_refresh`) count DELIVERED orders only; revenue is their
totalCost (currencies are not converted: one shop, one currency is the expected set-up).
A click-attributed order credits its delivery's run and channel. A UTM-attributed order has no
delivery, so it credits the campaign's latest run: its email row when it has one, else its
first channel row; a campaign with no analytics rows yet is credited once the rollup creates
them (the next refresh).
"""

# Table names come from the models; every value goes through parameters.
# ruff: noqa: S608

from collections.abc import Iterable
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction

from campaigns.analytics import _LOCK_KEY as ANALYTICS_LOCK
from campaigns.models import Campaign, CampaignRun, Delivery, RunStats
from marketing.models import Order, OrderStatus
from marketing.workflows.models import WorkflowMessage

_T_ORDER = Order._meta.db_table
_T_DELIVERY = Delivery._meta.db_table
_T_CAMPAIGN = Campaign._meta.db_table
_T_RUN = CampaignRun._meta.db_table
_T_STATS = RunStats._meta.db_table
_T_WFMESSAGE = WorkflowMessage._meta.db_table

# The UTM campaign values an order carries, in the order they are looked at (k.v, k.n).
_UTM_CANDIDATES = """
unnest(ARRAY[
        CASE WHEN jsonb_typeof(o.additional_info) = 'object'
             THEN o.additional_info ->> 'utm_campaign' END,
        CASE WHEN jsonb_typeof(o.additional_info) = 'object'
             THEN o.additional_info ->> 'utmCampaign' END,
        CASE WHEN jsonb_typeof(o.raw) = 'object' THEN o.raw ->> 'utm_campaign' END,
        CASE WHEN jsonb_typeof(o.raw) = 'object' THEN o.raw ->> 'utmCampaign' END
   ]) WITH ORDINALITY AS k(v, n)"""

# The first UTM key that holds a campaign id (digits only, so the cast cannot fail).
_UTM_ID = (
    f"(SELECT trim(v)::bigint FROM {_UTM_CANDIDATES}"
    r" WHERE v ~ '^\s*[0-9]{1,18}\s*$' ORDER BY n LIMIT 1)"
)

# The first non-blank UTM campaign value, whatever it holds (the tagging's own value).
_UTM_VALUE = (
    f"(SELECT lower(trim(v)) FROM {_UTM_CANDIDATES} WHERE trim(v) <> '' ORDER BY n LIMIT 1)"
)

_ATTRIBUTE_SQL = f"""
UPDATE {_T_ORDER} AS target
   SET attributed_delivery_id = a.delivery_id,
       attributed_campaign_id = a.campaign_id,
       attribution = a.kind
  FROM (
    SELECT o.id,
           CASE WHEN coalesce(u.id, t.id) IS NULL THEN c.id END AS delivery_id,
           coalesce(u.id, t.id, c.campaign_id) AS campaign_id,
           CASE WHEN coalesce(u.id, t.id) IS NOT NULL THEN 'utm'
                WHEN c.id IS NOT NULL THEN 'click'
                ELSE '' END AS kind
      FROM {_T_ORDER} o
      LEFT JOIN {_T_CAMPAIGN} u ON u.id = {_UTM_ID}
      LEFT JOIN LATERAL (
          SELECT g.id
            FROM {_T_CAMPAIGN} g
           WHERE u.id IS NULL AND g.utm_enabled
             AND lower(g.utm_campaign) = {_UTM_VALUE}
           ORDER BY g.id DESC
           LIMIT 1
      ) t ON true
      LEFT JOIN LATERAL (
          SELECT d.id, r.campaign_id
            FROM {_T_DELIVERY} d
            LEFT JOIN {_T_RUN} r ON r.id = d.run_id
           WHERE d.contact_id = o.contact_id
             AND d.clicked_at <= o.date
             AND d.clicked_at > o.date - make_interval(days => %s)
             AND (d.run_id IS NOT NULL
                  OR EXISTS (SELECT 1 FROM {_T_WFMESSAGE} m WHERE m.delivery_id = d.id))
           ORDER BY d.clicked_at DESC, d.id DESC
           LIMIT 1
      ) c ON true
     WHERE o.id = ANY(%s)
  ) a
 WHERE target.id = a.id
   AND (target.attributed_delivery_id, target.attributed_campaign_id, target.attribution)
       IS DISTINCT FROM (a.delivery_id, a.campaign_id, a.kind)
"""


def orders_attribute(*, order_ids: list[int]) -> None:
    """Credit these orders (one UPDATE whatever their number); see the module docstring."""
    if not order_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _ATTRIBUTE_SQL, [int(settings.HERALD_ATTRIBUTION_WINDOW_DAYS), list(order_ids)]
        )


# Every (run, channel) row a DELIVERED attributed order credits, with its count and revenue.
_CREDITED_SQL = f"""
SELECT run_id, channel, count(*) AS n, sum(total_cost) AS revenue
  FROM (
    SELECT d.run_id, d.channel, o.total_cost
      FROM {_T_ORDER} o
      JOIN {_T_DELIVERY} d ON d.id = o.attributed_delivery_id
     WHERE o.status = %(delivered)s AND o.attribution = 'click' AND d.run_id IS NOT NULL
    UNION ALL
    SELECT t.run_id, t.channel, o.total_cost
      FROM {_T_ORDER} o
      JOIN LATERAL (
          SELECT s.run_id, s.channel
            FROM {_T_RUN} r
            JOIN {_T_STATS} s ON s.run_id = r.id
           WHERE r.campaign_id = o.attributed_campaign_id
           ORDER BY r.number DESC, (s.channel = 'email') DESC, s.channel
           LIMIT 1
      ) t ON true
     WHERE o.status = %(delivered)s AND o.attribution = 'utm'
  ) credited
 GROUP BY run_id, channel
"""

_CONVERSIONS_SQL = f"""
WITH totals AS ({_CREDITED_SQL})
UPDATE {_T_STATS} AS s
   SET conversions = coalesce(t.n, 0), revenue = coalesce(t.revenue, 0)
  FROM {_T_STATS} s2
  LEFT JOIN totals t ON t.run_id = s2.run_id AND t.channel = s2.channel
 WHERE s.id = s2.id
   AND (%(all)s OR s2.run_id = ANY(%(runs)s::bigint[]))
   -- A run whose ledger month retention dropped keeps the figures of its last rollup
   -- (campaigns.retention): its attributed deliveries are gone, not its conversions.
   AND NOT EXISTS (SELECT 1 FROM {_T_RUN} fr
                    WHERE fr.id = s2.run_id AND fr.ledger_dropped_at IS NOT NULL)
   AND (s.conversions, s.revenue) IS DISTINCT FROM (coalesce(t.n, 0), coalesce(t.revenue, 0))
"""


@transaction.atomic
def conversions_refresh(*, run_ids: Iterable[int] | None = None) -> int:
    """Recompute RunStats.conversions/revenue (of these runs, or of all) from the attributed
    DELIVERED orders; idempotent (recomputed, never incremented). Returns rows changed.

    The totals read only attributed delivered orders (the `order_attributed_delivered`
    partial index), so a full refresh costs in proportion to conversions, not to orders.
    """
    runs = None if run_ids is None else sorted({int(pk) for pk in run_ids})
    if runs == []:
        return 0
    with connection.cursor() as cursor:
        # The analytics rollup's lock: both write RunStats rows, in different orders.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ANALYTICS_LOCK])
        cursor.execute(
            _CONVERSIONS_SQL,
            {"delivered": OrderStatus.DELIVERED, "all": runs is None, "runs": runs or []},
        )
        return cursor.rowcount


def conversions_on_stats_refresh(sender, run_ids: Iterable[int] | None = None, **kwargs) -> None:
    """After campaigns' rollup refresh (campaigns.analytics.stats_refreshed): conversions are
    written into the rollup rows it may have just created."""
    conversions_refresh(run_ids=run_ids)


# The DELIVERED click-attributed orders of one run's A/B test share, by variant.
_VARIANT_REVENUE_SQL = f"""
SELECT d.ab_variant, count(*), coalesce(sum(o.total_cost), 0)
  FROM {_T_ORDER} o
  JOIN {_T_DELIVERY} d ON d.id = o.attributed_delivery_id
 WHERE o.status = %s AND o.attribution = 'click' AND d.run_id = %s
   AND d.ab_variant IS NOT NULL
 GROUP BY d.ab_variant
"""


def ab_variant_revenue(sender, *, run_id: int, **kwargs) -> dict[int, tuple[int, Decimal]]:
    """campaigns.abtest.ab_revenue: the conversions and revenue each variant of a run's A/B
    test earned (orders credited to its messages by the click rule above)."""
    with connection.cursor() as cursor:
        cursor.execute(_VARIANT_REVENUE_SQL, [OrderStatus.DELIVERED, run_id])
        return {row[0]: (row[1], row[2]) for row in cursor.fetchall()}

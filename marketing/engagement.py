"""Engagement events: what happened to the messages a contact received becomes events of that
contact, stored and drained like any other (marketing.events), so workflows can start on them
and the activity timeline shows them.

- delivered → `<channel>Delivered` (emailDelivered, smsDelivered, ...), once per delivery;
- opened, by a person → `<channel>Opened` (emailOpened), once per delivery: its first human
  open (later opens are in the ledger and the reports, not repeated as events);
- clicked, by a person → `linkClicked`, once per delivery and link;
- bounced → `<channel>Bounced` (emailBounced), complained → `<channel>Complained`
  (emailComplained), unsubscribed → `unsubscribed`, once per delivery each.

Params: campaignId, runId (null for single messages), deliveryId, requestId (the message
API's id of the delivery), messageId (its Message-ID), channel, and url for clicks. The key
value is the recipient's address. Machine opens and clicks (campaigns.engagement) emit
nothing; deliveries without a contact (a message API call to a bare address) neither.
HERALD_ENGAGEMENT_DELIVERED_EVENTS=false switches the delivered events off (one per message
sent: on a large list they are most of the events).

How: the campaigns layer cannot call this one, and the sending path must not pay per row, so
nothing is done where the ledger is written. A beat task (marketing.engagement_events_emit,
every 15 s) turns the history rows written since its previous run into events with one
INSERT ... SELECT, found through the BRIN index on the history's time; `source_key`
(unique in EventSourceKey, inserted first) makes every event once, whatever the overlap of
two runs. Cost: one statement per
tick reading the last few minutes of history (a 100k campaign's delivered reports are 100k
rows read and 100k events written in that one statement, no Python per row: about 7,000
events a second on a 2-core machine), then the events drain starts the workflows of the
types that have one. Clicks are taken once they are older than
campaigns.engagement.TRAP_WINDOW: a trap or burst that turns them into a machine's comes
within it, and must come before anyone hears of the click.
"""

# Table names below come from the models; every value goes through parameters.
# ruff: noqa: S608

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from campaigns.engagement import TRAP_WINDOW
from campaigns.models import CampaignRun, Delivery, DeliveryEvent
from config.core.models import Heartbeat
from config.core.services import heartbeat_record
from marketing.events import events_kick
from marketing.models import Event, EventSourceKey, EventType

HEARTBEAT_NAME = "engagement_events"
# History rows commit after their `at` (their transaction's start): each run looks this far
# behind its previous start, so a slow transaction's rows are still found.
EVENT_MARGIN = timedelta(minutes=5)
# First run on a database with history: only the recent past (old opens starting workflows
# on the day this is deployed would surprise everyone).
FIRST_WINDOW = timedelta(minutes=10)
# Clicks wait this long before they become events (see the module's docstring).
CLICK_HOLDBACK = TRAP_WINDOW + timedelta(seconds=5)
_LOCK_KEY = 0x4845_5245  # "HERE": one run at a time

CLICKED = "linkClicked"
UNSUBSCRIBED = "unsubscribed"
# Ledger statuses that become events, and how the type key is made from the channel.
STATUSES = ("delivered", "opened", "clicked", "bounced", "complained", "unsubscribed")
_SUFFIX = {
    "delivered": "Delivered",
    "opened": "Opened",
    "bounced": "Bounced",
    "complained": "Complained",
}


def engagement_type_key(*, status: str, channel: str) -> str:
    """The event type of a ledger status on a channel (emailOpened, smsDelivered, ...)."""
    if status == "clicked":
        return CLICKED
    if status == "unsubscribed":
        return UNSUBSCRIBED
    return f"{channel}{_SUFFIX[status]}"


def _delivered_events() -> bool:
    return bool(getattr(settings, "HERALD_ENGAGEMENT_DELIVERED_EVENTS", True))


_EMIT_SQL = f"""
WITH hits AS (
    SELECT e.id, e.status, e.at, e.url, d.id AS delivery_id, d.contact_id, d.channel,
           d.locator, d.request_id, d.message_id, d.run_id, r.campaign_id,
           CASE e.status
               WHEN 'clicked' THEN %(clicked)s
               WHEN 'unsubscribed' THEN %(unsubscribed)s
               WHEN 'delivered' THEN d.channel || 'Delivered'
               WHEN 'opened' THEN d.channel || 'Opened'
               WHEN 'bounced' THEN d.channel || 'Bounced'
               ELSE d.channel || 'Complained' END AS type_key,
           'delivery:' || d.id || ':' || e.status
               || CASE WHEN e.status = 'clicked' THEN ':' || md5(e.url) ELSE '' END
               AS source_key
      FROM {DeliveryEvent._meta.db_table} e
      JOIN {Delivery._meta.db_table} d ON d.id = e.delivery_id
      LEFT JOIN {CampaignRun._meta.db_table} r ON r.id = d.run_id
     WHERE e.at >= %(since)s AND e.at < %(until)s
       AND e.status = ANY(%(statuses)s) AND NOT e.machine AND d.contact_id IS NOT NULL
       AND (e.status <> 'clicked' OR e.at < %(clicks_until)s)
), first_hits AS (
    SELECT DISTINCT ON (source_key) * FROM hits ORDER BY source_key, at, id
), types AS (
    INSERT INTO {EventType._meta.db_table} (key, name, created_at)
    SELECT DISTINCT type_key, type_key, now() FROM first_hits
     WHERE NOT EXISTS (SELECT 1 FROM {EventType._meta.db_table} t WHERE t.key = type_key)
    ON CONFLICT (key) DO NOTHING
    RETURNING id, key
), all_types AS (
    SELECT id, key FROM types
    UNION ALL
    SELECT id, key FROM {EventType._meta.db_table}
     WHERE key IN (SELECT type_key FROM first_hits)
), fresh AS (
    INSERT INTO {EventSourceKey._meta.db_table} AS k (key, created_at)
    SELECT source_key, now() FROM first_hits
    ON CONFLICT (key) DO NOTHING
    RETURNING k.key
)
INSERT INTO {Event._meta.db_table}
       (event_type_id, key_value, params, contact_id, created_at, occurred_at, source_key)
SELECT t.id, left(h.locator, 300),
       jsonb_strip_nulls(jsonb_build_object(
           'campaignId', h.campaign_id, 'runId', h.run_id, 'deliveryId', h.delivery_id,
           'requestId', h.request_id::text, 'messageId', nullif(h.message_id, ''),
           'channel', h.channel, 'url', CASE WHEN h.status = 'clicked' THEN h.url END)),
       h.contact_id, h.at, h.at, h.source_key
  FROM first_hits h JOIN all_types t ON t.key = h.type_key
  JOIN fresh f ON f.key = h.source_key
 ORDER BY h.at, h.id
"""


def engagement_events_emit(
    *, since: datetime | None = None, click_holdback: timedelta = CLICK_HOLDBACK
) -> int:
    """Turn the ledger history since the previous run (or since `since`) into events of the
    contacts; return how many were stored. Idempotent; a run that finds another one in
    progress returns 0 at once."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_LOCK_KEY])
            if not cursor.fetchone()[0]:
                return 0
        now = timezone.now()
        if since is None:
            last = (
                Heartbeat.objects.filter(name=HEARTBEAT_NAME)
                .values_list("seen_at", flat=True)
                .first()
            )
            since = (last - EVENT_MARGIN - click_holdback) if last else now - FIRST_WINDOW
        # Stamped with this run's start and committed with its events, or not at all.
        heartbeat_record(name=HEARTBEAT_NAME)
        statuses = [s for s in STATUSES if s != "delivered" or _delivered_events()]
        with connection.cursor() as cursor:
            cursor.execute(
                _EMIT_SQL,
                {
                    "clicked": CLICKED,
                    "unsubscribed": UNSUBSCRIBED,
                    "since": since,
                    # Rows stamped in the future of this statement (clock skew) wait.
                    "until": now + timedelta(seconds=1),
                    "statuses": statuses,
                    "clicks_until": now - click_holdback,
                },
            )
            stored = cursor.rowcount
        if stored:
            events_kick()
    return stored

"""Send rules the engine applies to a claimed batch before anything is rendered: the allowed
sending window and the frequency caps (campaigns.send_rules holds their settings).

Each rule is decided for the whole batch in one SQL statement, and every row it takes out
stays explained in the ledger:
- a row due outside its window goes back to the queue with `next_attempt_at` at the
  window's next opening in the recipient's zone, its claim released and its attempt given
  back, and a history row (DeliveryEvent, status queued) saying why and until when;
- a row over its contact's frequency cap is moved to skipped through the ledger's
  transition table, with the reason ("frequency cap: 3 emails in 7 days").

Only marketing messages (campaign runs, workflow sends) are subject to them; single messages
of the eSputnik v1 message API and test sends are transactional and go as they are.
"""

# Table and column names below come from the models; every value goes through parameters
# or is checked before it becomes a literal (campaigns.send_rules).
# ruff: noqa: S608

from __future__ import annotations

from typing import Any

from django.db import connection

from campaigns.ledger import delivery_transition
from campaigns.models import Delivery, DeliveryEvent, DeliveryStatus, SendKind, SendRequest
from campaigns.send_rules import Cap, SendWindow, frequency_caps, zone_join
from config.core.queues import CLOCK
from contacts.models import Contact


def deliveries_hold(
    deliveries: list[Delivery], *, window: SendWindow | None, marketing: bool
) -> list[Delivery]:
    """The batch without the rows that must wait for their window or are over a frequency
    cap (those are deferred or skipped here, see the module's header)."""
    if not marketing or not deliveries:
        return deliveries
    held: set[int] = set()
    if window is not None:
        held |= deliveries_defer(window=window, delivery_ids=[d.pk for d in deliveries])
    caps = {cap.channel: cap for cap in frequency_caps()}
    rows = [d for d in deliveries if d.pk not in held and d.channel in caps]
    if rows:
        held |= deliveries_cap(caps=caps, delivery_ids=[d.pk for d in rows])
    if not held:
        return deliveries
    return [delivery for delivery in deliveries if delivery.pk not in held]


def deliveries_defer(*, window: SendWindow, delivery_ids: list[int]) -> set[int]:
    """Send the rows whose recipient's window is closed now back to the queue until it
    opens; return their ids. A row released here did not use up an attempt."""
    join, zone, join_params = zone_join("c", alias="lz")
    table = Delivery._meta.db_table
    events = DeliveryEvent._meta.db_table
    detail = f"outside its sending window ({window.describe()}, recipient's time); waits until "
    sql = f"""
        /* delivery.window */
        WITH r AS (
            SELECT d.id, {window.opening_sql(CLOCK, zone)} AS opens
              FROM {table} d
              LEFT JOIN {Contact._meta.db_table} c ON c.id = d.contact_id
              {join}
             WHERE d.id = ANY(%s) AND d.status = 'queued'
        ), moved AS (
            UPDATE {table} d
               SET next_attempt_at = r.opens, claimed_at = NULL,
                   attempts = GREATEST(d.attempts - 1, 0)
              FROM r
             WHERE d.id = r.id AND r.opens > {CLOCK}
            RETURNING d.id, r.opens, d.period
        )
        INSERT INTO {events} (delivery_id, status, at, detail, url, provider_event_id, period)
        SELECT id, 'queued', now(),
               %s || to_char(opens AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC', '', '',
               period
          FROM moved
        RETURNING delivery_id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*join_params, delivery_ids, detail])
        return {row[0] for row in cursor.fetchall()}


def deliveries_cap(*, caps: dict[str, Cap], delivery_ids: list[int]) -> set[int]:
    """Skip the rows whose contact already got its channel's cap of marketing messages in the
    cap's period (counting earlier rows of this same batch for that contact); return their
    ids.

    Counted: rows of campaign runs and workflow sends with a sent time in the period (sent,
    delivered, opened, bounced later…: the message went). The count reads the
    delivery_contact_sent index, one short range per contact. Two workers sending different
    campaigns to one contact at the same instant may each see the other's message unsent:
    a cap can be passed by at most the messages in flight at that moment."""
    table = Delivery._meta.db_table
    requests = SendRequest._meta.db_table
    channels = list(caps)
    sql = f"""
        /* delivery.cap */
        WITH k AS (
            SELECT * FROM unnest(%s::text[], %s::int[], %s::int[]) AS k(channel, lim, days)
        ), b AS (
            SELECT d.id, d.contact_id, d.channel, k.lim, k.days,
                   row_number() OVER (PARTITION BY d.contact_id, d.channel ORDER BY d.id) AS n
              FROM {table} d JOIN k ON k.channel = d.channel
             WHERE d.id = ANY(%s) AND d.status = 'queued' AND d.contact_id IS NOT NULL
        )
        SELECT b.id, b.channel FROM b
         WHERE b.n + (
                SELECT count(*) FROM {table} s
                  LEFT JOIN {requests} q ON q.id = s.send_request_id
                 WHERE s.contact_id = b.contact_id
                   AND s.sent_at > {CLOCK} - make_interval(days => b.days)
                   AND s.channel = b.channel
                   AND (s.run_id IS NOT NULL OR q.kind = %s)
               ) > b.lim
    """
    params: list[Any] = [
        channels,
        [caps[c].limit for c in channels],
        [caps[c].period_days for c in channels],
        delivery_ids,
        SendKind.WORKFLOW,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        over: dict[str, list[int]] = {}
        for delivery_id, channel in cursor.fetchall():
            over.setdefault(channel, []).append(delivery_id)
    skipped: set[int] = set()
    for channel, ids in over.items():
        skipped.update(
            delivery_transition(
                status=DeliveryStatus.SKIPPED, delivery_ids=ids, error=caps[channel].reason()
            )
        )
    return skipped

"""Campaign runs as producers of the delivery engine: materialise a run's recipients into the
ledger in SQL, start the engine's sender tasks, and recover what dead workers held.

Sending itself is the delivery engine's (campaigns.delivery.engine, RunScope): it claims,
sends and records; it reports a run with nothing left, or over its error threshold, through
campaigns.delivery.signals, and the campaign lifecycle reacts. Nothing here calls the
lifecycle either.

Why it is safe to crash anywhere:
- A recipient is one Delivery row, unique per (run, contact, channel, step): materialising
  twice inserts nothing new, and its Message-ID is fixed at insert time.
- Senders claim and record through the engine (see its header): at most RECORD_EVERY
  messages per sender are sent twice after a crash, with the same Message-ID.
- A worker killed mid-batch leaves claimed, still-queued rows; the recovery task releases
  claims older than the claim lease (failing rows that were claimed MAX_ATTEMPTS times
  without an outcome) and re-enqueues senders.
"""

# Table and column names below come from the models; every value goes through parameters.
# ruff: noqa: S608

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import signature
from django.db import connection, transaction

from campaigns.delivery import policy
from campaigns.delivery.content import SendContent, email_sender
from campaigns.delivery.policy import RECORD_EVERY as RECORD_EVERY  # the resend bound, above
from campaigns.delivery.signals import answered, run_drained
from campaigns.ledger import deliveries_fail_exhausted
from campaigns.models import (
    Campaign,
    CampaignRun,
    CampaignStep,
    CampaignType,
    Delivery,
    DeliveryEvent,
    RunStatus,
)
from campaigns.send_rules import SendWindow, local_time_join, zone_join
from config.core.partitions import period_of
from config.core.privacy import address_digest_sql
from config.core.queues import lease_expired, lease_release
from contacts.filters.compiler import filter_contacts, segment_contacts
from contacts.models import MESSENGER_CHANNELS, ChannelType, Contact, Unsubscribed
from contacts.suppression import suppression_sql
from templates.models import TemplateVersion

logger = logging.getLogger(__name__)

# The task that sends a run (campaigns.tasks.run_send_task), enqueued by name: the tasks
# module imports this one.
RUN_SEND_TASK = "campaigns.run_send"
# The recovery task starts senders for a run only after this long without any progress
# (no claim held, no delivery event): senders queued behind other tasks are not doubled.
STALL = timedelta(seconds=60)

# Messenger channels (contacts.models.MESSENGER_CHANNELS): a contact's address there is the
# value of its entry of that type in Contact.extra_channels; a provider (integrations) sends
# them.
SENDABLE_CHANNELS = (ChannelType.EMAIL, ChannelType.SMS, *MESSENGER_CHANNELS)
# A launch that inserts at least this many ledger rows refreshes the table's statistics. The
# planner otherwise believes the few queued rows it last sampled: with a run's 100k rows
# queued it would answer "these 25 ids, if still queued" by walking every queued row of a
# partial index instead of 25 primary-key probes, in every outcome write of the run.
# Autovacuum gets there too, but only after a minute, or never when the ledger is large.
# ANALYZE reads a fixed-size sample (~30k rows), however large the table.
ANALYZE_AFTER_ROWS = 5_000


# --- materialise ---------------------------------------------------------------------------


def _audience_sql(campaign: Campaign) -> tuple[str, tuple]:
    """The campaign's audience as `SELECT id FROM contacts_contact …` with its parameters."""
    if campaign.segment is not None:
        queryset = segment_contacts(campaign.segment)
    else:
        queryset = filter_contacts(campaign.audience_filter or {})
    sql, params = queryset.values("id").query.sql_with_params()
    return sql, tuple(params)


def _message_id_domain(version: TemplateVersion | None) -> str:
    return email_sender(SendContent.of_version(version))[1]


def _published_version(template_id: int) -> TemplateVersion | None:
    return TemplateVersion.objects.filter(template_id=template_id).order_by("-number").first()


def audience_reachable(channel: str) -> tuple[str, str, list[str]]:
    """(join, locator, where) that keep the contacts a run on `channel` can reach: confirmed,
    not deleted, with an address on the channel, not suppressed, and for email not on the
    unsubscribed list. One place, read by the launch and by its preview (launch_reach)."""
    # Suppressed addresses (bounces, complaints, by hand) get nothing on their channel. The
    # channel is one of ChannelType's values, checked here, so it can be a literal.
    if channel not in ChannelType.values:
        raise ValueError(f"unknown channel {channel!r}")
    join = ""
    if channel in MESSENGER_CHANNELS:
        # The first entry of the channel's type; LATERAL … LIMIT 1 keeps one row per contact
        # when a contact holds two. Email and SMS keep the plain column (the hot path).
        join = f"""CROSS JOIN LATERAL (
                     SELECT e->>'value' AS value FROM jsonb_array_elements(c.extra_channels) e
                      WHERE e->>'type' = '{channel}' AND coalesce(e->>'value', '') <> ''
                      LIMIT 1) m"""
        locator = "m.value"
        where = ["c.deleted_at IS NULL", "c.confirmed"]
    else:
        locator = "c." + ("email" if channel == ChannelType.EMAIL else "phone")
        where = [f"{locator} <> ''", "c.deleted_at IS NULL", "c.confirmed"]
    if channel == ChannelType.EMAIL:
        # The unsubscribed list is per address and stops bulk email only; an erased
        # person's address is on it as its digest (contacts.privacy).
        where.append(
            f"NOT EXISTS (SELECT 1 FROM {Unsubscribed._meta.db_table} u "
            f"WHERE lower(u.email) IN (lower(c.email), {address_digest_sql('c.email')}))"
        )
    where.append(suppression_sql(f"'{channel}'", locator))
    return join, locator, where


def launch_reach(campaign: Campaign) -> dict[str, int]:
    """How many recipients a launch of the campaign would put in the ledger now, per channel
    that has a sender: the run's own filters (audience_reachable) counted instead of inserted. One
    count per channel, the same plan as the INSERT minus the write."""
    audience_sql, audience_params = _audience_sql(campaign)
    reach: dict[str, int] = {}
    for channel in campaign.channels:
        if channel not in SENDABLE_CHANNELS:
            continue
        join, _, where = audience_reachable(channel)
        sql = f"""SELECT count(*) FROM {Contact._meta.db_table} c {join}
                   WHERE c.id IN ({audience_sql}) AND {" AND ".join(where)}"""
        with connection.cursor() as cursor:
            cursor.execute(sql, audience_params)
            reach[channel] = cursor.fetchone()[0]
    return reach


def _insert(
    *,
    run: CampaignRun,
    channel: str,
    step: int,
    version: TemplateVersion | None,
    audience: tuple[str, tuple],
    extra_where: str = "",
    extra_params: tuple = (),
    next_attempt: str = "NULL",
    next_params: tuple = (),
    prefix: str = "",
    prefix_params: tuple = (),
    ab_variant: int | None = None,
    plan_join: str = "",
    plan_params: tuple = (),
    order_by: str = "c.id",
) -> int:
    """One INSERT … SELECT of the audience into the ledger for one channel and step (and,
    for an A/B test's share, the variant every row gets). `plan_join` joins what
    `next_attempt` reads (the recipient's zone, a planned time)."""
    audience_sql, audience_params = audience
    join, locator, where = audience_reachable(channel)
    table = Delivery._meta.db_table
    contacts = Contact._meta.db_table
    sql = f"""
        {prefix}
        INSERT INTO {table} (
            request_id, run_id, step, contact_id, channel, locator, template_version_id,
            params, language_code, message_id, provider, provider_message_id, status, error,
            attempts, next_attempt_at, created_at, open_count, click_count, ab_variant, period
        )
        SELECT r.uuid, %s, %s, r.id, %s, r.locator, %s, '{{}}'::jsonb, r.language_code,
               '<' || replace(r.uuid::text, '-', '') || '@' || %s || '>', '', '', 'queued', '',
               0, r.next_attempt_at, now(), 0, 0, %s::smallint, %s::date
          FROM (
            SELECT gen_random_uuid() AS uuid, c.id, {locator} AS locator, c.language_code,
                   ({next_attempt})::timestamptz AS next_attempt_at
              FROM {contacts} c {join} {plan_join}
             WHERE c.id IN ({audience_sql}) AND {" AND ".join(where)} {extra_where}
             ORDER BY {order_by}
          ) r
        ON CONFLICT (run_id, contact_id, channel, step, period) WHERE run_id IS NOT NULL
        DO NOTHING
    """
    params: list[Any] = [
        *prefix_params,
        run.pk,
        step,
        channel,
        version.pk if version else None,
        _message_id_domain(version),
        ab_variant,
        # The run's month: every insert for this run, retries and later steps included,
        # lands in the same partition and meets the same unique key.
        period_of(run.started_at),
        *next_params,
        *plan_params,
        *audience_params,
        *extra_params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _milestone_clause(campaign: Campaign) -> tuple[str, tuple, str, tuple, str, tuple]:
    """(prefix CTE, where, next_attempt_at expression) for a milestone campaign: contacts whose
    date field (plus offsetDays) is today in their own time zone (else the campaign's),
    month and day only when yearly; sent at `sendAt` local time (now, if that has passed)."""
    config = campaign.milestone or {}
    field_id = str(config.get("fieldId", ""))
    offset = int(config.get("offsetDays") or 0)
    yearly = bool(config.get("yearly", True))
    send_at = str(config.get("sendAt") or "00:00")
    # Contacts' time zones are free text: an unknown name would abort the whole INSERT, so it
    # is checked against PostgreSQL's list (read once per statement) and replaced.
    prefix = "WITH tz AS MATERIALIZED (SELECT name FROM pg_timezone_names)"
    local_zone = "COALESCE((SELECT tz.name FROM tz WHERE tz.name = c.time_zone LIMIT 1), %s)"
    local_today = f"(now() AT TIME ZONE {local_zone})::date"
    raw = "(c.fields ->> %s)"
    shifted = f"(to_date(left({raw}, 10), 'YYYY-MM-DD') + %s::int)"
    if yearly:
        match = f"to_char({shifted}, 'MM-DD') = to_char({local_today}, 'MM-DD')"
    else:
        match = f"{shifted} = {local_today}"
    # CASE makes sure to_date only sees values shaped like a date (a bad value is skipped,
    # not an error that aborts the whole INSERT).
    where = f"AND CASE WHEN {raw} ~ '^\\d{{4}}-\\d{{2}}-\\d{{2}}' THEN {match} ELSE false END"
    where_params = (field_id, field_id, offset, campaign.timezone)
    next_attempt = f"(({local_today} + %s::time) AT TIME ZONE {local_zone})"
    next_params = (campaign.timezone, send_at, campaign.timezone)
    return prefix, (), where, where_params, next_attempt, next_params


def _send_rules_plan(
    campaign: Campaign, next_attempt: str, next_params: tuple
) -> tuple[str, tuple, str, tuple, str]:
    """(next_attempt, its params, plan join, its params, insert order) with the campaign's
    recipient-local send time and sending window applied to the planned time of each row.

    Rows are inserted in the order they fall due, so the claim (which walks a run's queued
    rows in id order) meets the due rows first and stops, instead of stepping over the ones
    planned for later zones."""
    window = SendWindow.of(campaign.send_window)
    local = campaign.send_local_time
    if window is None and local is None:
        return next_attempt, next_params, "", (), "c.id"
    if local is not None and campaign.type in (CampaignType.BLAST, CampaignType.RECURRING):
        join, planned, join_params = local_time_join(local, "c", alias="lt")
        planned_params: tuple = ()
    elif next_attempt == "NULL":
        join, planned, join_params, planned_params = "", "now()", [], ()
    else:
        join, planned, join_params, planned_params = "", next_attempt, [], next_params
    if window is None:
        return planned, planned_params, join, tuple(join_params), "next_attempt_at, id"
    zone_clause, zone, zone_params = zone_join("c", alias="lz")
    # A time already past (a milestone's send time earlier today) is due now: the window's
    # opening is looked for from then on.
    join += (
        f" {zone_clause} CROSS JOIN LATERAL"
        f" (SELECT GREATEST(({planned})::timestamptz, now()) AS at) planned"
    )
    params = (*join_params, *zone_params, *planned_params)
    return window.opening_sql("planned.at", zone), (), join, params, "next_attempt_at, id"


def send_rules_args(campaign: Campaign) -> dict[str, Any]:
    """`_insert`'s planning arguments for a one-step run (a blast's rows, an A/B test's share
    and its winner's send): the recipient-local send time and the sending window."""
    next_attempt, next_params, join, join_params, order = _send_rules_plan(campaign, "NULL", ())
    return {
        "next_attempt": next_attempt,
        "next_params": next_params,
        "plan_join": join,
        "plan_params": join_params,
        "order_by": order,
    }


@transaction.atomic
def run_materialise(*, run: CampaignRun) -> int:
    """Insert the run's recipients into the ledger (audience minus unconfirmed, deleted and
    unreachable contacts, and unsubscribed addresses for email) and return its reach.

    Idempotent: a second call inserts only contacts not in the run yet, which is how drip
    campaigns let contacts who joined the audience later enter (see drip_enter)."""
    campaign = run.campaign
    audience = _audience_sql(campaign)
    channels = [channel for channel in campaign.channels if channel in SENDABLE_CHANNELS]
    for channel in campaign.channels:
        if channel not in SENDABLE_CHANNELS:
            logger.warning("campaign %s: channel %s has no sender; skipped", campaign.pk, channel)
    first_step = 0
    inserted = 0
    if campaign.type == CampaignType.DRIP:
        steps = list(CampaignStep.objects.filter(campaign=campaign).order_by("position"))
        if steps:
            first_step = steps[0].position
        total = timedelta(0)
        for step in steps:
            # Delays add up: each step waits its delay after the previous one, counted
            # from the moment the contact entered.
            total += step.delay
            version = _published_version(step.template_id)
            next_attempt, next_params, join, join_params, order = _send_rules_plan(
                campaign, "now() + %s", (total,)
            )
            for channel in channels:
                inserted += _insert(
                    run=run,
                    channel=channel,
                    step=step.position,
                    version=version,
                    audience=audience,
                    next_attempt=next_attempt,
                    next_params=next_params,
                    plan_join=join,
                    plan_params=join_params,
                    order_by=order,
                )
    elif campaign.type == CampaignType.MILESTONE:
        prefix, prefix_params, where, where_params, next_attempt, next_params = _milestone_clause(
            campaign
        )
        next_attempt, next_params, join, join_params, order = _send_rules_plan(
            campaign, next_attempt, next_params
        )
        for channel in channels:
            inserted += _insert(
                run=run,
                channel=channel,
                step=0,
                version=run.template_version,
                audience=audience,
                extra_where=where,
                extra_params=where_params,
                next_attempt=next_attempt,
                next_params=next_params,
                prefix=prefix,
                prefix_params=prefix_params,
                plan_join=join,
                plan_params=join_params,
                order_by=order,
            )
    else:
        plan = send_rules_args(campaign)
        for channel in channels:
            inserted += _insert(
                run=run,
                channel=channel,
                step=0,
                version=run.template_version,
                audience=audience,
                **plan,
            )
    return run_reach_refresh(run=run, inserted=inserted, step=first_step)


def run_reach_refresh(*, run: CampaignRun, inserted: int, step: int = 0) -> int:
    """After a materialisation that inserted `inserted` rows: refresh the ledger's statistics
    if that was many, and store the run's reach."""
    with connection.cursor() as cursor:
        if inserted >= ANALYZE_AFTER_ROWS:
            cursor.execute(f"ANALYZE {Delivery._meta.db_table}")
        # Reach counts contacts, not messages: one contact on two channels is one.
        cursor.execute(
            f"SELECT count(DISTINCT contact_id) FROM {Delivery._meta.db_table} "
            "WHERE run_id = %s AND step = %s",
            [run.pk, step],
        )
        reach = cursor.fetchone()[0]
    CampaignRun.objects.filter(pk=run.pk).update(reach=reach)
    run.reach = reach
    return reach


# --- senders and recovery ------------------------------------------------------------------


def run_enqueue(*, run_id: int, tasks: int = policy.SENDER_TASKS) -> None:
    """Start the run's sender tasks (call on commit of the transaction that made it running).
    Extra senders are harmless: claims keep them apart."""
    for _ in range(tasks):
        signature(RUN_SEND_TASK, args=(run_id,)).delay()


def run_complete_if_done(*, run_id: int) -> bool:
    """Tell the lifecycle that a run may have nothing left; True when it completed the run
    (it re-checks under its locks, so concurrent callers complete it once, and it keeps an
    open drip run running)."""
    return answered(run_drained.send(sender=run_complete_if_done, run_id=run_id))


def claims_reclaim(*, older_than: timedelta | None = None) -> int:
    """Release claims of dead workers: rows of running runs still queued but claimed longer
    ago than the claim lease go back to the queue (their Message-ID stays); rows claimed
    MAX_ATTEMPTS times that way are failed instead (a message that kills its worker)."""
    older_than = policy.claim_lease() if older_than is None else older_than
    table = Delivery._meta.db_table
    running = (
        f"run_id IN (SELECT id FROM {CampaignRun._meta.db_table} WHERE status = 'running') "
        "AND status = 'queued'"
    )
    expired, expired_params = lease_expired("claimed_at", older_than)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {table} WHERE {running} AND attempts >= %s AND {expired}",
            [policy.MAX_ATTEMPTS, *expired_params],
        )
        deliveries_fail_exhausted(
            delivery_ids=[row[0] for row in cursor.fetchall()], attempts=policy.MAX_ATTEMPTS
        )
    return lease_release(table=table, where=running, params=[], older_than=older_than)


def runs_recover(*, older_than: timedelta | None = None, stall: timedelta = STALL) -> dict:
    """The beat task's work: reclaim dead claims, complete runs with nothing left, and start
    senders for running runs with claimable rows but no sender at work (no live claim and
    no delivery event for `stall`)."""
    reclaimed = claims_reclaim(older_than=older_than)
    completed = enqueued = 0
    table = Delivery._meta.db_table
    events = DeliveryEvent._meta.db_table
    for run_id in CampaignRun.objects.filter(status=RunStatus.RUNNING).values_list("pk", flat=True):
        # Any: django-stubs' SQL parameter types leave out timedelta (psycopg: an interval).
        probe_params: list[Any] = [run_id, run_id, run_id, stall, run_id]
        with connection.cursor() as cursor:
            # Each probe is cheap: LIMIT 1 semantics of EXISTS, claimed rows are the lowest
            # queued ids (found first), and the BRIN index on event time reads only the
            # last `stall` of history.
            cursor.execute(
                f"""SELECT
                      EXISTS (SELECT 1 FROM {table} WHERE run_id = %s AND status = 'queued'),
                      EXISTS (SELECT 1 FROM {table} WHERE run_id = %s AND status = 'queued'
                                 AND claimed_at IS NOT NULL),
                      EXISTS (SELECT 1 FROM {table} WHERE run_id = %s AND status = 'queued'
                                 AND claimed_at IS NULL
                                 AND (next_attempt_at IS NULL OR next_attempt_at <= now())),
                      EXISTS (SELECT 1 FROM {events} e JOIN {table} d ON d.id = e.delivery_id
                               WHERE e.at > now() - %s AND d.run_id = %s)""",
                probe_params,
            )
            queued, held, claimable, recent = cursor.fetchone()
        if not queued:
            completed += run_complete_if_done(run_id=run_id)
        elif claimable and not held and not recent:
            run_enqueue(run_id=run_id)
            enqueued += 1
    return {"reclaimed": reclaimed, "completed": completed, "enqueued": enqueued}


def drip_enter() -> int:
    """Let contacts who joined a running drip campaign's audience enter its open run."""
    entered = 0
    runs = CampaignRun.objects.filter(
        status=RunStatus.RUNNING,
        campaign__type=CampaignType.DRIP,
        campaign__status="running",
        campaign__deleted_at__isnull=True,
    ).select_related("campaign")
    for run in runs:
        before = run.reach
        run_materialise(run=run)
        entered += max(run.reach - before, 0)
    return entered

"""The campaign sending pipeline: materialise a run's recipients into the delivery ledger in
SQL, send them with sender tasks that claim batches, and recover what dead workers held.

Why it is safe to crash anywhere:
- A recipient is one Delivery row, unique per (run, contact, channel, step): materialising
  twice inserts nothing new, and its Message-ID is fixed at insert time.
- A sender claims rows (`claimed_at`) in one UPDATE … FOR UPDATE SKIP LOCKED, so two senders
  never hold the same row; outcomes are written every RECORD_EVERY messages.
- A worker killed mid-batch leaves claimed, still-queued rows; the recovery task releases
  claims older than the claim timeout and re-enqueues senders. Rows the dead worker had
  already handed to the SMTP server but not yet recorded (at most RECORD_EVERY per sender)
  are sent again, with the same Message-ID, so receiving systems can drop the copy.
- Claims and outcomes commit without waiting for the disk (ledger.unflushed_commits): a crash
  of the database server itself may forget the last fraction of a second of them, which
  sends those messages again in the same way.

Rendering and MIME building reuse campaigns.sending (H7's single-message path): one way to
build and classify a message, whoever sends it.
"""

# Table and column names below come from the models; every value goes through parameters.
# ruff: noqa: S608

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.mail import get_connection
from django.db import connection, transaction
from django.utils import timezone

from campaigns.ledger import (
    deliveries_retry_later,
    deliveries_set_provider_ids,
    delivery_transition,
    unflushed_commits,
)
from campaigns.models import (
    Campaign,
    CampaignRun,
    CampaignStep,
    CampaignType,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    RunStatus,
)
from campaigns.sending import (
    Outcome,
    _classify_email_error,
    _provider_name,
    _send_sms,
    delivery_render,
    email_build,
    email_send_one,
    email_sender,
)
from contacts.filters.compiler import filter_contacts, segment_contacts
from contacts.models import ChannelType, Contact, CustomField, Unsubscribed
from templates.engine import TemplateError
from templates.models import TemplateVersion
from templates.services import CONTACT_CONTEXT_FIELDS

logger = logging.getLogger(__name__)

# Sender tasks per run. Each holds one SMTP connection and one database connection; four
# keep a typical relay (and the 2-core machine this was measured on) busy without making the
# relay throttle us. More tasks than worker processes only queue up.
SENDER_TASKS = 4
# Rows claimed per batch: one claim UPDATE and one row fetch per 200 messages keeps the
# database cost per message small; a dead worker's batch waits for the claim timeout.
BATCH_SIZE = 200
# Outcomes are written every RECORD_EVERY messages: a worker killed mid-batch re-sends at
# most this many (same Message-ID); smaller means more UPDATEs per message.
RECORD_EVERY = 25
# Batches per task invocation before the task re-enqueues itself: keeps a task well under the
# Celery time limit and lets other runs' tasks interleave on a busy worker.
BATCHES_PER_TASK = 10
# Seconds between checks of the run's status while a batch is being sent.
STATUS_EVERY = 0.5
# A task invocation stops claiming after this long and re-enqueues itself, so a rate-limited
# run never runs into the Celery time limit with rows claimed.
TASK_SECONDS = 60.0
# Attempts per delivery before a transient failure (4xx, 429, lost connection) is final.
MAX_ATTEMPTS = 5
# The error threshold is only judged once this many deliveries have an outcome.
ERROR_THRESHOLD_MIN_ATTEMPTS = 100
# A sender that finds only rows waiting for a retry sleeps via a countdown up to this long;
# longer waits (drip delays) are picked up by the recovery beat task.
MAX_REQUEUE_WAIT = 60.0
# The recovery task starts senders for a run only after this long without any progress
# (no claim held, no delivery event): senders queued behind other tasks are not doubled.
STALL = timedelta(seconds=60)

SENDABLE_CHANNELS = (ChannelType.EMAIL, ChannelType.SMS)
# A launch that inserts at least this many ledger rows refreshes the table's statistics. The
# planner otherwise believes the few queued rows it last sampled: with a run's 100k rows
# queued it would answer "these 25 ids, if still queued" by walking every queued row of a
# partial index instead of 25 primary-key probes, in every outcome write of the run.
# Autovacuum gets there too, but only after a minute, or never when the ledger is large.
# ANALYZE reads a fixed-size sample (~30k rows), however large the table.
ANALYZE_AFTER_ROWS = 5_000


def claim_timeout() -> timedelta:
    """Claims older than this belong to a dead worker. Far above the time a batch takes."""
    return timedelta(seconds=settings.HERALD_CLAIM_TIMEOUT)


def retry_delay(attempts: int) -> timedelta:
    base = settings.HERALD_RETRY_BASE
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 1800))


def rate_limit(channel: str) -> float:
    """Messages per second for a channel across all senders of a run; 0 = unlimited."""
    name = {ChannelType.EMAIL: "HERALD_RATE_LIMIT_EMAIL", ChannelType.SMS: "HERALD_RATE_LIMIT_SMS"}
    return float(getattr(settings, name.get(channel, ""), 0) or 0)


# --- materialise ---------------------------------------------------------------------------


def _audience_sql(campaign: Campaign) -> tuple[str, tuple]:
    """The campaign's audience as `SELECT id FROM contacts_contact …` with its parameters."""
    if campaign.segment_id:
        queryset = segment_contacts(campaign.segment)
    else:
        queryset = filter_contacts(campaign.audience_filter or {})
    sql, params = queryset.values("id").query.sql_with_params()
    return sql, tuple(params)


def _message_id_domain(version: TemplateVersion | None) -> str:
    request_like = SimpleNamespace(from_email="", from_name="", template_version=version)
    return email_sender(request_like)[1]


def _published_version(template_id: int) -> TemplateVersion | None:
    return TemplateVersion.objects.filter(template_id=template_id).order_by("-number").first()


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
) -> int:
    """One INSERT … SELECT of the audience into the ledger for one channel and step."""
    audience_sql, audience_params = audience
    column = "email" if channel == ChannelType.EMAIL else "phone"
    where = [f"c.{column} <> ''", "c.deleted_at IS NULL", "c.confirmed"]
    params: list[Any] = []
    if channel == ChannelType.EMAIL:
        # The unsubscribed list is per address and stops bulk email only.
        where.append(
            f"NOT EXISTS (SELECT 1 FROM {Unsubscribed._meta.db_table} u "
            "WHERE lower(u.email) = lower(c.email))"
        )
    table = Delivery._meta.db_table
    contacts = Contact._meta.db_table
    sql = f"""
        {prefix}
        INSERT INTO {table} (
            request_id, run_id, step, contact_id, channel, locator, template_version_id,
            params, language_code, message_id, provider, provider_message_id, status, error,
            attempts, next_attempt_at, created_at, open_count, click_count
        )
        SELECT r.uuid, %s, %s, r.id, %s, r.locator, %s, '{{}}'::jsonb, r.language_code,
               '<' || replace(r.uuid::text, '-', '') || '@' || %s || '>', '', '', 'queued', '',
               0, r.next_attempt_at, now(), 0, 0
          FROM (
            SELECT gen_random_uuid() AS uuid, c.id, c.{column} AS locator, c.language_code,
                   ({next_attempt})::timestamptz AS next_attempt_at
              FROM {contacts} c
             WHERE c.id IN ({audience_sql}) AND {" AND ".join(where)} {extra_where}
             ORDER BY c.id
          ) r
        ON CONFLICT (run_id, contact_id, channel, step) WHERE run_id IS NOT NULL DO NOTHING
    """
    params = [
        *prefix_params,
        run.pk,
        step,
        channel,
        version.pk if version else None,
        _message_id_domain(version),
        *next_params,
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
            for channel in channels:
                inserted += _insert(
                    run=run,
                    channel=channel,
                    step=step.position,
                    version=version,
                    audience=audience,
                    next_attempt="now() + %s",
                    next_params=(total,),
                )
    elif campaign.type == CampaignType.MILESTONE:
        prefix, prefix_params, where, where_params, next_attempt, next_params = _milestone_clause(
            campaign
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
            )
    else:
        for channel in channels:
            inserted += _insert(
                run=run, channel=channel, step=0, version=run.template_version, audience=audience
            )
    with connection.cursor() as cursor:
        if inserted >= ANALYZE_AFTER_ROWS:
            cursor.execute(f"ANALYZE {Delivery._meta.db_table}")
        # Reach counts contacts, not messages: one contact on two channels is one.
        cursor.execute(
            f"SELECT count(DISTINCT contact_id) FROM {Delivery._meta.db_table} "
            "WHERE run_id = %s AND step = %s",
            [run.pk, first_step],
        )
        reach = cursor.fetchone()[0]
    CampaignRun.objects.filter(pk=run.pk).update(reach=reach)
    run.reach = reach
    return reach


# --- sending -------------------------------------------------------------------------------


# What sending a batch reads of a delivery and its contact: the other columns (timestamps,
# counters, JSON) would only be parsed and dropped, 200 rows at a time.
SEND_FIELDS = (
    "request_id",
    "channel",
    "locator",
    "template_version",
    "params",
    "message_id",
    "attempts",
    *(f"contact__{name}" for name in CONTACT_CONTEXT_FIELDS),
)


def run_enqueue(*, run_id: int, tasks: int = SENDER_TASKS) -> None:
    """Start the run's sender tasks (call on commit of the transaction that made it running).
    Extra senders are harmless: claims keep them apart."""
    from campaigns.tasks_pipeline import run_send_task

    for _ in range(tasks):
        run_send_task.delay(run_id)


def _claim(run_id: int, limit: int) -> list[int]:
    table = Delivery._meta.db_table
    # SKIP LOCKED: concurrent senders take disjoint batches without waiting on each other.
    # delivery_run_queued gives the run's unclaimed rows in id order (insert order); the
    # ORDER BY names claimed_at (NULL for all of them) so that only that index fits it.
    sql = f"""
        UPDATE {table} d
           SET claimed_at = now(), attempts = d.attempts + 1
         WHERE d.id IN (
            SELECT id FROM {table}
             WHERE run_id = %s AND status = 'queued' AND claimed_at IS NULL
               AND (next_attempt_at IS NULL OR next_attempt_at <= now())
             ORDER BY claimed_at, id
             LIMIT %s
               FOR UPDATE SKIP LOCKED
         )
        RETURNING d.id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [run_id, limit])
        return sorted(row[0] for row in cursor.fetchall())


def _release(delivery_ids: list[int]) -> None:
    """Give back claimed rows that were not sent (the run was paused mid-batch)."""
    if not delivery_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Delivery._meta.db_table} SET claimed_at = NULL, "
            "attempts = GREATEST(attempts - 1, 0) WHERE id = ANY(%s) AND status = 'queued'",
            [delivery_ids],
        )


def _record(outcome: Outcome, deliveries: list[Delivery], provider: str) -> None:
    """Write a chunk's outcomes set-based: one statement per outcome kind and reason."""
    deliveries_set_provider_ids(provider=provider, provider_ids=outcome.provider_ids)
    if outcome.sent:
        delivery_transition(
            status=DeliveryStatus.SENT, delivery_ids=outcome.sent, detail=f"accepted by {provider}"
        )
    failed: dict[str, list[int]] = {}
    for delivery_id, reason in outcome.failed.items():
        failed.setdefault(reason, []).append(delivery_id)
    attempts = {delivery.pk: delivery.attempts for delivery in deliveries}
    later: dict[tuple[str, int], list[int]] = {}
    for delivery_id, reason in outcome.transient.items():
        tries = attempts[delivery_id]
        if tries >= MAX_ATTEMPTS:
            failed.setdefault(f"gave up after {tries} attempts: {reason}", []).append(delivery_id)
        else:
            later.setdefault((reason, tries), []).append(delivery_id)
    for reason, ids in failed.items():
        delivery_transition(status=DeliveryStatus.FAILED, delivery_ids=ids, error=reason)
    for (reason, tries), ids in later.items():
        deliveries_retry_later(delivery_ids=ids, error=reason, delay=retry_delay(tries))


def _run_status(run_id: int) -> str | None:
    return CampaignRun.objects.filter(pk=run_id).values_list("status", flat=True).first()


def _over_error_threshold(run: CampaignRun) -> tuple[bool, int, int]:
    """(over?, failed, with an outcome). Counting the outcomes is bounded: only as many rows
    as could still keep the failure rate under the threshold are counted."""
    threshold = run.campaign.error_threshold
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {table} WHERE run_id = %s AND status = 'failed'", [run.pk]
        )
        failed = cursor.fetchone()[0]
        if threshold <= 0:
            cap = ERROR_THRESHOLD_MIN_ATTEMPTS
        else:
            cap = max(failed * 100 // threshold, ERROR_THRESHOLD_MIN_ATTEMPTS)
        # Two ranges of the (run, status) index around 'queued', each bounded: a plain
        # status <> 'queued' would walk every queued entry of a large run.
        cursor.execute(
            f"""SELECT (SELECT count(*) FROM (SELECT 1 FROM {table} WHERE run_id = %s
                                              AND status < 'queued' LIMIT %s) a)
                     + (SELECT count(*) FROM (SELECT 1 FROM {table} WHERE run_id = %s
                                              AND status > 'queued' LIMIT %s) b)""",
            [run.pk, cap + 1, run.pk, cap + 1],
        )
        done = cursor.fetchone()[0]
    over = done >= ERROR_THRESHOLD_MIN_ATTEMPTS and failed * 100 > threshold * done
    return over, failed, done


@dataclass
class _Pacer:
    """Per-task pacing for a channel's rate limit: each of the run's SENDER_TASKS senders
    sends at most rate / SENDER_TASKS messages a second. Simple and needs no shared state;
    the limit is per run (two runs on one channel at once may each reach it)."""

    rate: float
    next_at: float = 0.0

    def wait(self, count: int) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        if self.next_at > now:
            time.sleep(self.next_at - now)
        self.next_at = max(self.next_at, now) + count * SENDER_TASKS / self.rate


class _Sender:
    """One sender task's state: the run, its rendering inputs, one connection per channel."""

    def __init__(self, run: CampaignRun) -> None:
        self.run = run
        version = run.template_version
        # campaigns.sending reads the sender address, tags and content source from a
        # send-request-like object; the run's template version stands in for the request.
        self.request_like = SimpleNamespace(
            template_version=version,
            from_email="",
            from_name="",
            skip_personalisation=False,
            tags=[f"campaign-{run.campaign_id}", f"run-{run.pk}"],
            subject="",
            html="",
            text="",
        )
        self.from_header = email_sender(self.request_like)[0]
        self.custom_fields = list(CustomField.objects.all())
        self.connection = None
        self.provider = ""
        self.pacers = {channel: _Pacer(rate_limit(channel)) for channel in SENDABLE_CHANNELS}
        self.versions: dict[int, TemplateVersion] = {version.pk: version} if version else {}
        self.status_checked = time.monotonic()
        self.running = True
        self.pause_reason = ""

    def version(self, version_id: int | None) -> TemplateVersion | None:
        if version_id is None:
            return None
        if version_id not in self.versions:
            self.versions[version_id] = TemplateVersion.objects.get(pk=version_id)
        return self.versions[version_id]

    def stopped(self) -> bool:
        """Has the run left `running` (pause, cancel)? Asked between chunks, at most every
        STATUS_EVERY seconds, so a pause takes effect within about a second."""
        now = time.monotonic()
        if now - self.status_checked >= STATUS_EVERY:
            self.status_checked = now
            self.running = _run_status(self.run.pk) == RunStatus.RUNNING
        return not self.running

    def batch_size(self, channels: list[str]) -> int:
        """BATCH_SIZE, or what this sender may send in about half a minute under the rate
        limit of the run's slowest channel (a claim is never held for long)."""
        rates = [self.pacers[c].rate / SENDER_TASKS for c in channels if c in self.pacers]
        rates = [rate for rate in rates if rate > 0]
        if not rates:
            return BATCH_SIZE
        return max(1, min(BATCH_SIZE, int(min(rates) * TASK_SECONDS / 2)))

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def send_chunk(self, deliveries: list[Delivery]) -> Outcome:
        outcome = Outcome()
        email = [d for d in deliveries if d.channel == ChannelType.EMAIL]
        sms = [d for d in deliveries if d.channel == ChannelType.SMS]
        if email:
            self.pacers[ChannelType.EMAIL].wait(len(email))
            result = self._send_emails(email)
            _record(result, email, self.provider)
            _merge(outcome, result)
        if sms:
            self.pacers[ChannelType.SMS].wait(len(sms))
            result, provider = _send_sms(self.request_like, sms, self.custom_fields)
            _record(result, sms, provider)
            _merge(outcome, result)
        return outcome

    def _send_emails(self, deliveries: list[Delivery]) -> Outcome:
        """Render, build (campaigns.sending) and send over this task's one connection. A
        refused recipient (4xx/5xx reply) leaves the connection usable; a lost connection
        sends the rest of the chunk back to the queue and is opened afresh next chunk."""
        outcome = Outcome()
        broken = ""
        if self.connection is None:
            self.connection = get_connection(fail_silently=False)
            self.provider = _provider_name(self.connection)
            try:
                self.connection.open()
            except Exception as exc:
                broken = _classify_email_error(exc)[1]
                self.close()
        for delivery in deliveries:
            if broken:
                outcome.transient[delivery.pk] = broken
                continue
            try:
                rendered = delivery_render(self.request_like, delivery, self.custom_fields)
            except TemplateError as exc:
                outcome.failed[delivery.pk] = f"rendering failed: {exc}"
                continue
            message = email_build(
                delivery=delivery,
                rendered=rendered,
                from_header=self.from_header,
                send_request=self.request_like,
            )
            broken = email_send_one(self.connection, message, delivery.pk, outcome)
            if broken:
                self.close()
        return outcome


def _merge(into: Outcome, other: Outcome) -> None:
    into.sent += other.sent
    into.failed.update(other.failed)
    into.transient.update(other.transient)


def run_send(*, run_id: int, batches: int = BATCHES_PER_TASK) -> float | None:
    """Send up to `batches` batches of the run. Returns when to run again: 0 = at once (more
    rows are claimable), a number of seconds (only retries are waiting), or None (stop: the
    run is not running, or nothing left for this sender)."""
    run = (
        CampaignRun.objects.select_related("campaign", "template_version").filter(pk=run_id).first()
    )
    if run is None or run.status != RunStatus.RUNNING:
        return None
    sender = _Sender(run)
    limit = sender.batch_size(run.campaign.channels)
    started = time.monotonic()
    try:
        # Claims and outcomes only: the run's own status changes below wait for the disk.
        with unflushed_commits():
            for _ in range(batches):
                if time.monotonic() - started > TASK_SECONDS:
                    return 0.0
                if _run_status(run_id) != RunStatus.RUNNING:
                    return None
                ids = _claim(run_id, limit)
                if not ids:
                    break
                if not _send_batch(sender, run, ids):
                    break
            else:
                return 0.0
    finally:
        sender.close()
    if sender.pause_reason:
        _pause(run, sender.pause_reason)
        return None
    if not sender.running:
        return None
    return _after_drain(run)


def _send_batch(sender: _Sender, run: CampaignRun, ids: list[int]) -> bool:
    """Send one claimed batch chunk by chunk; False when the run stopped meanwhile or must
    pause (sender.pause_reason)."""
    deliveries = list(
        Delivery.objects.filter(pk__in=ids)
        .select_related("contact")
        .only(*SEND_FIELDS)
        .order_by("pk")
    )
    for delivery in deliveries:
        # A run has one version (a drip one per step): fetched once per task, not per row.
        delivery.template_version = sender.version(delivery.template_version_id)
    failures = 0
    for start in range(0, len(deliveries), RECORD_EVERY):
        if start and sender.stopped():
            # Paused or cancelled mid-batch: stop within one chunk, give the rest back.
            _release([d.pk for d in deliveries[start:]])
            return False
        outcome = sender.send_chunk(deliveries[start : start + RECORD_EVERY])
        failures += len(outcome.failed) + len(outcome.transient)
    # Only a batch with failures can push the rate over the threshold.
    if failures:
        over, failed, done = _over_error_threshold(run)
        if over:
            sender.pause_reason = (
                f"{failed} of {done} sends failed, over the campaign's error threshold of "
                f"{run.campaign.error_threshold}%"
            )
            return False
    return True


def _pause(run: CampaignRun, reason: str) -> None:
    from campaigns.lifecycle import run_pause

    run.refresh_from_db()
    if run.status == RunStatus.RUNNING:
        run_pause(run=run, reason=reason)


def _after_drain(run: CampaignRun) -> float | None:
    """Nothing claimable now: complete the run if nothing is left, else say when to look
    again (retries due soon), or stop and leave later rows to the recovery task."""
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT count(*) FILTER (WHERE claimed_at IS NULL),
                       count(*) FILTER (WHERE claimed_at IS NOT NULL),
                       min(next_attempt_at) FILTER (WHERE claimed_at IS NULL)
                  FROM (SELECT claimed_at, next_attempt_at FROM {table}
                         WHERE run_id = %s AND status = 'queued' LIMIT 10000) q""",
            [run.pk],
        )
        waiting, held, next_at = cursor.fetchone()
    if not waiting and not held:
        run_complete_if_done(run_id=run.pk)
        return None
    if waiting and next_at is not None:
        wait = (next_at - timezone.now()).total_seconds()
        if wait <= MAX_REQUEUE_WAIT:
            return max(wait, 0.5)
    return None


def run_complete_if_done(*, run_id: int) -> bool:
    """Complete a running run that has no queued delivery left. The lifecycle service locks
    campaign then run and re-checks the status, so concurrent callers complete it once (and
    it keeps an open drip run running)."""
    from campaigns.lifecycle import run_complete

    run = CampaignRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).first()
    if run is None:
        return False
    if Delivery.objects.filter(run_id=run_id, status=DeliveryStatus.QUEUED).exists():
        return False
    return run_complete(run=run).status == RunStatus.COMPLETED


# --- recovery ------------------------------------------------------------------------------


def claims_reclaim(*, older_than: timedelta | None = None) -> int:
    """Release claims of dead workers: rows still queued but claimed longer ago than the
    claim timeout go back to the queue (their Message-ID stays)."""
    older_than = claim_timeout() if older_than is None else older_than
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {table} SET claimed_at = NULL
                 WHERE run_id IN (SELECT id FROM {CampaignRun._meta.db_table}
                                   WHERE status = 'running')
                   AND status = 'queued' AND claimed_at < now() - %s""",
            [older_than],
        )
        return cursor.rowcount


def runs_recover(*, older_than: timedelta | None = None, stall: timedelta = STALL) -> dict:
    """The beat task's work: reclaim dead claims, complete runs with nothing left, and start
    senders for running runs with claimable rows but no sender at work (no live claim and
    no delivery event for `stall`)."""
    reclaimed = claims_reclaim(older_than=older_than)
    completed = enqueued = 0
    table = Delivery._meta.db_table
    events = DeliveryEvent._meta.db_table
    for run_id in CampaignRun.objects.filter(status=RunStatus.RUNNING).values_list("pk", flat=True):
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
                [run_id, run_id, run_id, stall, run_id],
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

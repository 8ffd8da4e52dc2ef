"""The delivery engine: claim a batch of queued ledger rows, render, hand them to the senders
of their channels, record the outcomes; for a campaign run or a send request alike.

Why it is safe to crash anywhere:
- A recipient is one Delivery row whose Message-ID is fixed before anything is sent (at
  insert for campaign runs, at the first claim for single messages), so a second attempt
  sends the same Message-ID and receiving systems can drop the copy.
- `deliveries_claim` is the one claim query: a lease (config.core.queues) on a bounded batch,
  taken with FOR UPDATE SKIP LOCKED, so two workers never hold the same row.
- `deliveries_record` (campaigns.ledger) is the one record step: a chunk's outcomes in one
  statement, every RECORD_EVERY messages. A worker killed mid-batch leaves claimed,
  still-queued rows; once their lease expires they are claimed again (send requests) or
  released by the recovery task (campaign runs), and the rows it had handed to a provider
  but not yet recorded (at most RECORD_EVERY per sender) go out again.
- A sender whose outcome write meets a lost database connection waits for the database and
  writes again, until half the lease (`_Batch.record`): a short outage sends nothing twice.
- Claims and outcomes commit without waiting for the disk (ledger.unflushed_commits).

Every chunk waits for its provider's rate, one budget shared by all workers and adapted to
throttling answers (campaigns.delivery.rate). The two scopes differ only where their
producers differ: a campaign run stops when its run leaves `running`, pauses at its error
threshold and, once nothing is left, tells the lifecycle (campaigns.delivery.signals); a
send request wakes its task again when retries fall due.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import timedelta

from django.db import InterfaceError, OperationalError, connection
from django.db.models import Min, Q
from django.utils import timezone

from campaigns.delivery import (
    builtin,  # noqa: F401 (registers the built-in senders)
    handover,
    policy,
    rate,
    rules,
)
from campaigns.delivery.content import SendContent, delivery_render, email_sender
from campaigns.delivery.providers import ProviderError, integration_for, provider_of
from campaigns.delivery.senders import (
    ACCEPTED,
    PERMANENT,
    TRANSIENT,
    Message,
    Outcome,
    Sender,
    permanent,
    sender_for,
)
from campaigns.delivery.signals import run_drained, run_failing
from campaigns.ledger import (
    deliveries_fail_exhausted,
    deliveries_record,
    delivery_transition,
    unflushed_commits,
)
from campaigns.models import (
    CampaignRun,
    Delivery,
    DeliveryStatus,
    RunStatus,
    SendKind,
    SendRequest,
)
from campaigns.promo.assign import PromoCodes, pool_exhausted_reason, pool_refilled_since
from campaigns.send_rules import SendWindow
from config.core.queues import CLOCK, lease_claim, lease_free
from config.core.secrets import SecretsUnreadable
from contacts.models import CustomField
from contacts.suppression import suppression_explain, suppression_key, suppressions_active
from templates.engine import TemplateError
from templates.languages import language_pick, version_languages
from templates.models import TemplateVersion, TemplateVersionLanguage
from templates.services import CONTACT_CONTEXT_FIELDS, RenderedMessage

logger = logging.getLogger(__name__)

# Statements the engine ran in this process, by kind ("claim", "record"): the health of a
# worker at a glance, and how tests show that every kind of send went through here.
stats: Counter[str] = Counter()

# What sending reads of a delivery and its contact: the other columns (timestamps, counters,
# JSON) would only be parsed and dropped, a batch at a time.
SEND_FIELDS = (
    "request_id",
    "channel",
    "locator",
    "template_version",
    "ab_variant",
    "params",
    "language_code",
    "message_id",
    "attempts",
    *(f"contact__{name}" for name in CONTACT_CONTEXT_FIELDS),
)
NO_SENDER = "this channel has no sender in Herald yet"
# Seconds between attempts to write a sent chunk's outcomes while the database is unreachable.
RECORD_RETRY_EVERY = 1.0


# --- the claim and the record --------------------------------------------------------------


def deliveries_claim(scope: Scope, limit: int) -> list[int]:
    """Claim up to `limit` queued, due deliveries of the scope for this worker; return ids.

    Rows held by a live worker, or waiting for a retry, are skipped; so are rows already
    claimed MAX_ATTEMPTS times (see `deliveries_fail_exhausted`). Whether an expired lease is
    taken over here or released by a recovery task is the scope's choice. A row without a
    Message-ID gets one now, before anything is sent."""
    expired_after = policy.claim_lease() if scope.takes_over_expired else None
    free, free_params = lease_free("claimed_at", expired_after=expired_after)
    rows = lease_claim(
        table=Delivery._meta.db_table,
        where=f"""{scope.column} = %s AND status = 'queued' AND {free}
                  AND (next_attempt_at IS NULL OR next_attempt_at <= {CLOCK})
                  AND attempts < %s""",
        params=[scope.pk, *free_params, policy.MAX_ATTEMPTS],
        limit=limit,
        order_by=scope.order_by,
        sets="""attempts = q.attempts + 1,
                message_id = CASE WHEN q.message_id = ''
                    THEN '<' || replace(q.request_id::text, '-', '') || '@' || %s || '>'
                    ELSE q.message_id END""",
        set_params=[scope.message_id_domain],
        label="delivery.claim",
    )
    stats["claim"] += 1
    return sorted(row[0] for row in rows)


def outcomes_record(
    outcomes: dict[int, Outcome], deliveries: list[Delivery], provider: str
) -> tuple[int, int]:
    """Record a chunk's outcomes in one statement: accepted → sent; permanent → failed;
    transient → queued again after the back-off, or failed once the attempts are spent.
    Returns (failed, retried)."""
    attempts = {delivery.pk: delivery.attempts for delivery in deliveries}
    rows = []
    failed = retried = 0
    for delivery_id, outcome in outcomes.items():
        status, detail = outcome.status, outcome.detail
        if status == ACCEPTED:
            rows.append((delivery_id, DeliveryStatus.SENT, "", 0.0, detail))
        elif status == PERMANENT:
            failed += 1
            rows.append((delivery_id, DeliveryStatus.FAILED, detail, 0.0, ""))
        elif (tries := attempts[delivery_id]) >= policy.MAX_ATTEMPTS:
            failed += 1
            reason = f"gave up after {tries} attempts: {detail}"
            rows.append((delivery_id, DeliveryStatus.FAILED, reason, 0.0, ""))
        else:
            retried += 1
            delay = policy.retry_delay(tries).total_seconds()
            rows.append((delivery_id, DeliveryStatus.QUEUED, detail, delay, ""))
    deliveries_record(provider=provider, outcomes=rows)
    stats["record"] += 1
    return failed, retried


def unrecorded(outcomes: dict[int, Outcome]) -> dict[int, Outcome]:
    """The outcomes whose rows are still claimed and queued: not written yet."""
    held = set(
        Delivery.objects.filter(
            pk__in=list(outcomes), status=DeliveryStatus.QUEUED, claimed_at__isnull=False
        ).values_list("pk", flat=True)
    )
    return {pk: outcome for pk, outcome in outcomes.items() if pk in held}


def deliveries_release(delivery_ids: list[int]) -> None:
    """Give back claimed rows that were not sent (the run stopped mid-batch); the claim did
    not count as an attempt."""
    if not delivery_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Delivery._meta.db_table} SET claimed_at = NULL, "  # noqa: S608
            "attempts = GREATEST(attempts - 1, 0) WHERE id = ANY(%s) AND status = 'queued'",
            [delivery_ids],
        )


# --- the scopes ----------------------------------------------------------------------------


class Scope:
    """Which deliveries a task works on, and what its producer needs around the sending."""

    column = ""
    order_by = "id"
    takes_over_expired = True
    # Batches per task invocation (None: until the time budget is spent).
    batches: int | None = None
    time_budget = timedelta(minutes=4)

    def __init__(self, pk: int) -> None:
        self.pk = pk
        self.content = SendContent()
        self.message_id_domain = "localhost"
        # Marketing sends keep their sending window and count towards frequency caps
        # (campaigns.delivery.rules); transactional ones do neither.
        self.marketing = False
        self.send_window: SendWindow | None = None

    def load(self) -> bool:
        """Read what sending needs; False when there is nothing to do."""
        raise NotImplementedError

    def batch_size(self) -> int:
        return policy.BATCH_SIZE

    def active(self) -> bool:
        """Asked before each claim: may the scope still send?"""
        return True

    def stopped(self) -> bool:
        """Asked between chunks of a batch: stop now and give the rest back?"""
        return False

    def after_batch(self, failures: int) -> bool:
        """After a batch with `failures`: go on (True) or stop (False)?"""
        return True

    def promo_exhausted(self, delivery_ids: list[int], reason: str, key: str) -> None:
        """A promo pool (`key`) the template names ran out before these deliveries got a
        code: each fails with the reason (a run pauses instead, see RunScope)."""
        delivery_transition(status=DeliveryStatus.FAILED, delivery_ids=delivery_ids, error=reason)

    def finish(self, *, claimed_any: bool, budget_spent: bool) -> float | None:
        """When to run again: 0 = at once, seconds, or None (stop)."""
        raise NotImplementedError


class RequestScope(Scope):
    """The deliveries of one send request (single messages, test sends, workflow sends)."""

    column = "send_request_id"
    # delivery_request_queued: a request's queued rows in id order.
    order_by = "id"
    # Longest sleep of a request's task for a window to open; longer, beat wakes it.
    MAX_WINDOW_WAIT = 600.0

    def load(self) -> bool:
        send_request = (
            SendRequest.objects.select_related("template_version__template", "campaign")
            .filter(pk=self.pk)
            .first()
        )
        if send_request is None:
            logger.warning("send request %s no longer exists", self.pk)
            return False
        self.content = SendContent.of_request(send_request)
        self.message_id_domain = email_sender(self.content)[1]
        self.marketing = send_request.kind == SendKind.WORKFLOW
        self.send_window = SendWindow.of(send_request.send_window)
        stale = Delivery.objects.filter(
            Q(claimed_at__isnull=True) | Q(claimed_at__lt=timezone.now() - policy.claim_lease()),
            send_request_id=self.pk,
            status=DeliveryStatus.QUEUED,
            attempts__gte=policy.MAX_ATTEMPTS,
        ).values_list("pk", flat=True)
        deliveries_fail_exhausted(delivery_ids=list(stale), attempts=policy.MAX_ATTEMPTS)
        return True

    def finish(self, *, claimed_any: bool, budget_spent: bool) -> float | None:
        wait = next_wake(self.pk, include_claims=not claimed_any)
        if self.send_window is not None and wait is not None and wait > self.MAX_WINDOW_WAIT:
            # Waiting for a sending window to open (hours, a weekend): a task held that long
            # by the broker is redelivered meanwhile; the beat wakes the request instead
            # (campaigns.messages.send_requests_wake_due).
            return None
        return wait


def next_wake(send_request_id: int, *, include_claims: bool = True) -> float | None:
    """Seconds until queued deliveries of the request can be claimed (0: now), or None when
    there is nothing to wait for. Rows claimed by another task count only with
    `include_claims`: a task that sent nothing itself may be the redelivery of a task whose
    worker died, and must come back when those claims expire; a task that did send leaves
    its siblings' rows to them (else every parallel task would schedule a wake-up)."""
    queued = Delivery.objects.filter(send_request_id=send_request_id, status=DeliveryStatus.QUEUED)
    now = timezone.now()
    lease = policy.claim_lease()
    unclaimed = Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - lease)
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    if queued.filter(unclaimed & due).exists():
        return 0.0
    times = queued.aggregate(
        retry=Min("next_attempt_at", filter=unclaimed), claim=Min("claimed_at")
    )
    waits = []
    if times["retry"]:
        waits.append((times["retry"] - now).total_seconds())
    if include_claims and times["claim"]:
        waits.append((times["claim"] + lease - now).total_seconds())
    return max(min(waits), 0.0) if waits else None


class RunScope(Scope):
    """The deliveries of one campaign run (every step of a drip, every channel)."""

    column = "run_id"
    # delivery_run_queued: a run's unclaimed queued rows in id order. claimed_at is in the
    # index key and in this ORDER BY so that no other index (the primary key) can deliver
    # that order: else, with statistics that say "all queued" (right after a launch), the
    # planner walks the primary key past every row already sent, on every claim.
    order_by = "claimed_at, id"
    # Expired leases of a run are released by the recovery task (campaigns.pipeline), which
    # also restarts senders; claims only ever take unclaimed rows, the index's first rows.
    takes_over_expired = False
    # Batches per task invocation before the task re-enqueues itself: keeps a task well under
    # the Celery time limit and lets other runs' tasks interleave on a busy worker; and a
    # task stops claiming after a minute, so a rate-limited run never meets that limit with
    # rows claimed.
    batches = 10
    time_budget = timedelta(seconds=60)
    # Seconds between checks of the run's status while a batch is being sent.
    STATUS_EVERY = 0.5
    # The error threshold is only judged once this many deliveries have an outcome.
    ERROR_THRESHOLD_MIN_ATTEMPTS = 100
    # A sender that finds only rows waiting for a retry sleeps via a countdown up to this
    # long; longer waits (drip delays) are picked up by the recovery beat task.
    MAX_REQUEUE_WAIT = 60.0

    def load(self) -> bool:
        run = (
            CampaignRun.objects.select_related("campaign", "template_version__template")
            .filter(pk=self.pk)
            .first()
        )
        if run is None or run.status != RunStatus.RUNNING:
            return False
        self.run = run
        self.content = SendContent.of_run(run)
        self.message_id_domain = email_sender(self.content)[1]
        self.marketing = True
        self.send_window = SendWindow.of(run.campaign.send_window)
        self.status_checked = time.monotonic()
        self.running = True
        self.pause_reason = ""
        # The promo pool whose emptiness set pause_reason, if that is why (see finish).
        self.pause_pool = ""
        self.pause_seen_at = timezone.now()
        return True

    def batch_size(self) -> int:
        """BATCH_SIZE, or this sender's share (of SENDER_TASKS) of what the slowest
        provider of the run's channels takes in about half a minute at its current rate (a
        claim is never held for long)."""
        rates = [
            rate.rate_estimate(*rate.rate_provider_for(channel, self.content.integration_id))
            for channel in self.run.campaign.channels
        ]
        limited = [r / policy.SENDER_TASKS for r in rates if r is not None and r > 0]
        if not limited:
            return policy.BATCH_SIZE
        seconds = self.time_budget.total_seconds() / 2
        return max(1, min(policy.BATCH_SIZE, int(min(limited) * seconds)))

    def active(self) -> bool:
        return _run_status(self.pk) == RunStatus.RUNNING

    def stopped(self) -> bool:
        """Has the run left `running` (pause, cancel)? Asked at most every STATUS_EVERY
        seconds, so a pause takes effect within about a second."""
        now = time.monotonic()
        if now - self.status_checked >= self.STATUS_EVERY:
            self.status_checked = now
            self.running = _run_status(self.pk) == RunStatus.RUNNING
        return not self.running

    def after_batch(self, failures: int) -> bool:
        if self.pause_reason:
            return False
        # Only a batch with failures can push the rate over the threshold.
        if not failures:
            return True
        over, failed, done = run_over_error_threshold(self.run, self.ERROR_THRESHOLD_MIN_ATTEMPTS)
        if over:
            self.pause_reason = (
                f"{failed} of {done} sends failed, over the campaign's error threshold of "
                f"{self.run.campaign.error_threshold}%"
            )
            return False
        return True

    def promo_exhausted(self, delivery_ids: list[int], reason: str, key: str) -> None:
        """A run does not fail its rows one by one when a promo pool runs out: they go back
        to the queue and the run pauses with the reason; once the marketer adds codes,
        resuming sends them."""
        deliveries_release(delivery_ids)
        if not self.pause_reason:
            self.pause_reason, self.pause_pool = reason, key
            self.pause_seen_at = timezone.now()

    def finish(self, *, claimed_any: bool, budget_spent: bool) -> float | None:
        if budget_spent:
            return 0.0
        if self.pause_pool and pool_refilled_since(self.pause_pool, self.pause_seen_at):
            # Codes were added while this task sent the rest of its batch (and the run may
            # have been paused by another sender, resumed, and sent them since): no pause,
            # go on.
            return 0.0
        if self.pause_reason:
            run_failing.send(sender=RunScope, run_id=self.pk, reason=self.pause_reason)
            return None
        if not self.running:
            return None
        return self._after_drain()

    def _after_drain(self) -> float | None:
        """Nothing claimable now: complete the run if nothing is left, else say when to look
        again (retries due soon), or stop and leave later rows to the recovery task."""
        table = Delivery._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"""SELECT count(*) FILTER (WHERE claimed_at IS NULL),
                           count(*) FILTER (WHERE claimed_at IS NOT NULL),
                           min(next_attempt_at) FILTER (WHERE claimed_at IS NULL)
                      FROM (SELECT claimed_at, next_attempt_at FROM {table}
                             WHERE run_id = %s AND status = 'queued' LIMIT 10000) q""",  # noqa: S608
                [self.pk],
            )
            waiting, held, next_at = cursor.fetchone()
        if not waiting and not held:
            run_drained.send(sender=RunScope, run_id=self.pk)
            return None
        if waiting and next_at is not None:
            wait = (next_at - timezone.now()).total_seconds()
            if wait <= self.MAX_REQUEUE_WAIT:
                return max(wait, 0.5)
        return None


def _run_status(run_id: int) -> str | None:
    return CampaignRun.objects.filter(pk=run_id).values_list("status", flat=True).first()


def run_over_error_threshold(run: CampaignRun, min_attempts: int) -> tuple[bool, int, int]:
    """(over?, failed, with an outcome). Counting the outcomes is bounded: only as many rows
    as could still keep the failure rate under the threshold are counted."""
    threshold = run.campaign.error_threshold
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {table} WHERE run_id = %s AND status = 'failed'",  # noqa: S608
            [run.pk],
        )
        failed = cursor.fetchone()[0]
        cap = max(failed * 100 // threshold, min_attempts) if threshold > 0 else min_attempts
        # Two ranges of the (run, status) index around 'queued', each bounded: a plain
        # status <> 'queued' would walk every queued entry of a large run.
        cursor.execute(
            f"""SELECT (SELECT count(*) FROM (SELECT 1 FROM {table} WHERE run_id = %s
                                              AND status < 'queued' LIMIT %s) a)
                     + (SELECT count(*) FROM (SELECT 1 FROM {table} WHERE run_id = %s
                                              AND status > 'queued' LIMIT %s) b)""",  # noqa: S608
            [run.pk, cap + 1, run.pk, cap + 1],
        )
        done = cursor.fetchone()[0]
    over = done >= min_attempts and failed * 100 > threshold * done
    return over, failed, done


# --- the loop ------------------------------------------------------------------------------


class _RefusingSender(Sender):
    """Stands in for a provider that cannot be set up: every message fails with why."""

    def __init__(
        self,
        content: SendContent,
        custom_fields: list[CustomField],
        reason: str,
        *,
        permanent: bool = True,
    ) -> None:
        super().__init__(content, custom_fields)
        self.outcome = Outcome(PERMANENT if permanent else TRANSIENT, reason)

    def send(self, batch: list[Message]) -> dict[int, Outcome]:
        return {message.delivery.pk: self.outcome for message in batch}


class _Batch:
    """One task's senders (one per channel, opened on first use) and template versions."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.custom_fields = list(CustomField.objects.all())
        self.senders: dict[str, Sender | None] = {}
        # The rate of each channel's provider, shared with every other worker.
        self.pacers: dict[str, rate.RatePacer] = {}
        # A wait for the rate that would end after this (time.monotonic()) gives the batch
        # back instead: its claim must not outlive the lease (set per batch by send()).
        self.pace_deadline = 0.0
        version = scope.content.template_version
        self.versions: dict[int, TemplateVersion] = {version.pk: version} if version else {}
        # Published language versions per template version, fetched once per task.
        self.languages: dict[int, dict[str, TemplateVersionLanguage]] = {}
        # (version id, language version code or "") → the version a recipient gets.
        self.localised: dict[tuple[int, str], TemplateVersion] = {}
        self.promo = PromoCodes()
        # delivery id → {pool key: code} for the batch being sent (`$promo` in templates).
        self.promo_codes: dict[int, dict[str, str]] = {}

    def version(self, version_id: int | None) -> TemplateVersion | None:
        if version_id is None:
            return None
        if version_id not in self.versions:
            self.versions[version_id] = TemplateVersion.objects.get(pk=version_id)
        return self.versions[version_id]

    def language_version(self, delivery: Delivery) -> TemplateVersion | None:
        """The version the row's recipient gets in its language (the row's language
        code, set from the contact at materialisation): built once per task and language,
        so the templates of each language are compiled once (templates.services.compiled)."""
        version = delivery.template_version or self.scope.content.template_version
        if version is None:
            return None
        if version.pk not in self.languages:
            self.languages.update(version_languages([version.pk]))
            self.languages.setdefault(version.pk, {})
        available = self.languages[version.pk]
        code = language_pick(available.keys(), delivery.language_code) or ""
        key = (version.pk, code)
        if key not in self.localised:
            self.localised[key] = available[code].as_version(version) if code else version
        return self.localised[key]

    def sender(self, channel: str) -> Sender | None:
        """The channel's sender: through the integration the scope names or the channel's
        default integration, else the transport configured in the environment. A provider
        that cannot be set up (credentials unreadable, kind not installed) fails the rows
        with its reason rather than sending through another provider."""
        if channel not in self.senders:
            content = self.scope.content
            integration = integration_for(channel, content.integration_id)
            self.pacers[channel] = rate.RatePacer(*rate.rate_provider(channel, integration))
            if integration is None:
                sender = sender_for(channel, content, self.custom_fields)
            else:
                try:
                    sender = provider_of(integration).sender(content, self.custom_fields)
                except ProviderError as exc:
                    sender = _RefusingSender(
                        content, self.custom_fields, exc.message, permanent=exc.permanent
                    )
                except SecretsUnreadable as exc:
                    sender = _RefusingSender(content, self.custom_fields, str(exc))
            self.senders[channel] = sender
        return self.senders[channel]

    def close(self) -> None:
        for sender in self.senders.values():
            if sender is not None:
                sender.close()

    def render(self, delivery: Delivery) -> RenderedMessage | Outcome:
        try:
            codes = self.promo_codes.get(delivery.pk)
            extra = {"promo": codes} if codes else None
            return delivery_render(self.scope.content, delivery, self.custom_fields, extra)
        except TemplateError as exc:
            return permanent(f"rendering failed: {exc}")
        except Exception:
            # A bug, not the recipient's fault; but one bad message must not stall the
            # batch (its claim would expire and the crash repeat for every row after it).
            logger.exception("rendering the message of delivery %s failed", delivery.pk)
            return permanent("internal error while building the message")

    def pace(self, by_channel: dict[str, list[Delivery]]) -> bool:
        """Wait until each channel's provider rate allows the chunk's messages. False when
        the scope stopped meanwhile or the wait would outlast the claim: nothing is sent,
        the tokens are given back."""
        paced: list[tuple[rate.RatePacer, int]] = []
        for channel, rows in by_channel.items():
            if self.sender(channel) is None:
                continue
            pacer = self.pacers[channel]
            if not pacer.wait(len(rows), stopped=self.scope.stopped, deadline=self.pace_deadline):
                for earlier, count in paced:
                    earlier.refund(count)
                return False
            paced.append((pacer, len(rows)))
        return True

    def send_chunk(self, deliveries: list[Delivery]) -> int | None:
        """Render, send and record one chunk, channel by channel; return its failures, or
        None when it was not sent (see `pace`)."""
        by_channel: dict[str, list[Delivery]] = {}
        for delivery in deliveries:
            by_channel.setdefault(delivery.channel, []).append(delivery)
        if not self.pace(by_channel):
            return None
        failures = 0
        for channel, rows in by_channel.items():
            sender = self.sender(channel)
            outcomes: dict[int, Outcome] = {}
            if sender is None:
                outcomes = {delivery.pk: permanent(NO_SENDER) for delivery in rows}
                provider = ""
            else:
                batch = []
                for delivery in rows:
                    rendered = self.render(delivery)
                    if isinstance(rendered, Outcome):
                        outcomes[delivery.pk] = rendered
                    else:
                        batch.append(Message(delivery, rendered))
                if batch:
                    outcomes.update(sender.send(batch))
                    self.pacers[channel].record(
                        sum(outcome.status == ACCEPTED for outcome in outcomes.values()),
                        throttled=any(outcome.throttled for outcome in outcomes.values()),
                    )
                provider = sender.name
            failed, retried = self.record(outcomes, rows, provider)
            failures += failed + retried
        return failures

    def record(
        self, outcomes: dict[int, Outcome], rows: list[Delivery], provider: str
    ) -> tuple[int, int]:
        """Record a chunk's outcomes, waiting out a database that cannot be reached (a
        restart, a failover) until the batch's deadline. Its messages are already with the
        provider: giving up here would send them again once the claim expires, and leave the
        rest of the batch claimed until then. Until the deadline the claim is still this
        worker's, so nobody else has sent them meanwhile."""

        def write() -> tuple[int, int]:
            return outcomes_record(outcomes, rows, provider)

        def write_unwritten() -> tuple[int, int]:
            # A write whose commit went through but whose answer was lost released its rows,
            # and a retried row may be another sender's by now: only rows still claimed.
            return outcomes_record(unrecorded(outcomes), rows, provider)

        while True:
            try:
                return write()
            except (OperationalError, InterfaceError):
                if not self.database_wait():
                    raise
                logger.warning("database unreachable; recording %d outcomes again", len(outcomes))
            write = write_unwritten

    def database_wait(self) -> bool:
        """After a lost database connection: wait a moment for it and say whether to try
        again (not when the batch's deadline is near, nor inside a transaction)."""
        late = time.monotonic() + RECORD_RETRY_EVERY >= self.pace_deadline
        if late or connection.in_atomic_block:
            return False
        connection.close()
        time.sleep(RECORD_RETRY_EVERY)
        return True

    def unsuppressed(self, deliveries: list[Delivery]) -> list[Delivery]:
        """The batch without the rows whose address was suppressed after they were queued
        (a bounce or complaint from another send, a marketer's decision): those are
        skipped, with the reason. One indexed query per channel of the batch."""
        by_channel: dict[str, list[Delivery]] = {}
        for delivery in deliveries:
            by_channel.setdefault(delivery.channel, []).append(delivery)
        skipped: dict[str, list[int]] = {}
        for channel, rows in by_channel.items():
            active = suppressions_active(channel, [row.locator for row in rows])
            for row in rows if active else ():
                key = suppression_key(channel, row.locator)
                if key in active:
                    skipped.setdefault(suppression_explain(active[key]), []).append(row.pk)
        if not skipped:
            return deliveries
        for reason, delivery_ids in skipped.items():
            delivery_transition(
                status=DeliveryStatus.SKIPPED, delivery_ids=delivery_ids, error=reason
            )
        gone = {pk for delivery_ids in skipped.values() for pk in delivery_ids}
        return [delivery for delivery in deliveries if delivery.pk not in gone]

    def with_promo_codes(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Give each delivery whose template names promo pools its codes (campaigns.promo);
        return the deliveries that can be sent. Those left without a code (a pool ran out,
        or was deleted) are handed to the scope."""
        self.promo_codes = {}
        content = self.scope.content
        needs = {}
        if content.skip_personalisation:
            return deliveries
        for delivery in deliveries:
            version = delivery.template_version or content.template_version
            if version is not None:
                sources = (version.subject, version.preheader, version.html, version.text)
                keys = self.promo.keys_of(version.pk, (*sources, version.sms_text))
            else:
                keys = self.promo.keys_of(None, (content.subject, content.html, content.text))
            if keys:
                needs[delivery.pk] = keys
        if not needs:
            return deliveries
        if content.test:
            # A test send shows where the codes go without spending a pool's: a sample code
            # per pool, marked as one.
            self.promo_codes = {
                pk: {key: f"TEST-{key.upper()}" for key in keys} for pk, keys in needs.items()
            }
            return deliveries
        batch = self.promo.batch(needs)
        self.promo_codes = batch.codes
        left_out: set[int] = set()
        for key, delivery_ids in batch.unknown.items():
            fresh = [pk for pk in delivery_ids if pk not in left_out]
            delivery_transition(
                status=DeliveryStatus.FAILED,
                delivery_ids=fresh,
                error=f"the template names promo pool {key}, which does not exist",
            )
            left_out.update(fresh)
        for key, delivery_ids in batch.short.items():
            fresh = [pk for pk in delivery_ids if pk not in left_out]
            if fresh:
                self.scope.promo_exhausted(fresh, pool_exhausted_reason(key), key)
                left_out.update(fresh)
        return [delivery for delivery in deliveries if delivery.pk not in left_out]

    def send(self, ids: list[int]) -> bool:
        """Send one claimed batch chunk by chunk; False when the scope must stop."""
        deliveries = list(
            Delivery.objects.filter(pk__in=ids)
            .select_related("contact")
            .only(*SEND_FIELDS)
            .order_by("pk")
        )
        deliveries = self.unsuppressed(deliveries)
        deliveries = rules.deliveries_hold(
            deliveries, window=self.scope.send_window, marketing=self.scope.marketing
        )
        for delivery in deliveries:
            # A run has one version (a drip one per step): fetched once per task, not per row.
            delivery.template_version = self.version(delivery.template_version_id)
            delivery.template_version = self.language_version(delivery)
        deliveries = self.with_promo_codes(deliveries)
        failures = 0
        self.pace_deadline = time.monotonic() + policy.claim_lease().total_seconds() / 2
        for start in range(0, len(deliveries), policy.RECORD_EVERY):
            if start and self.scope.stopped():
                # Paused or cancelled mid-batch: stop within one chunk, give the rest back.
                deliveries_release([d.pk for d in deliveries[start:]])
                return False
            chunk_failures = self.send_chunk(deliveries[start : start + policy.RECORD_EVERY])
            if chunk_failures is None:
                # Stopped while waiting for the rate, or the provider is so slow now that
                # the claim would outlive its lease: the rest goes back to the queue (a run's
                # recovery task restarts its senders later).
                deliveries_release([d.pk for d in deliveries[start:]])
                return False
            failures += chunk_failures
        return self.scope.after_batch(failures)


def scope_send(scope: Scope) -> float | None:
    """Send the scope's claimable deliveries, batch by batch, for at most its batches and
    time budget. Returns when to run again: 0 = at once (work left), a number of seconds
    (retries or other workers' claims pending), or None (stop: nothing left for this
    task, or the scope may not send). Safe to run several at once: claims keep them apart."""
    if not scope.load():
        return None
    batch = _Batch(scope)
    limit = scope.batch_size()
    deadline = time.monotonic() + scope.time_budget.total_seconds()
    claimed_any = budget_spent = False
    count = 0
    try:
        # Claims and outcomes only: status changes of runs wait for the disk.
        with unflushed_commits():
            while True:
                if count and (
                    time.monotonic() > deadline
                    or (scope.batches is not None and count >= scope.batches)
                ):
                    budget_spent = True
                    break
                if not scope.active():
                    return None
                count += 1
                ids = deliveries_claim(scope, limit)
                if not ids:
                    break
                claimed_any = True
                if not batch.send(ids):
                    break
    finally:
        batch.close()
    return scope.finish(claimed_any=claimed_any, budget_spent=budget_spent)


def run_send(*, run_id: int) -> float | None:
    """Send a campaign run's deliveries (a sender task's work). A run whose campaign goes
    through a service that takes whole campaigns is handed over to it first
    (campaigns.delivery.handover); its other channels' rows are sent here as usual."""
    handled, wait = handover.run_handover(run_id=run_id)
    if handled:
        return wait
    return scope_send(RunScope(run_id))


def send_request_process(
    *, send_request_id: int, time_budget: timedelta | None = None
) -> float | None:
    """Send a send request's deliveries for at most `time_budget` (default four minutes)."""
    scope = RequestScope(send_request_id)
    if time_budget is not None:
        scope.time_budget = time_budget
    return scope_send(scope)

"""Handing a whole campaign run to a service that takes campaigns (a provider whose
`accepts_campaigns` is set: the provider contract's prepare → create → stats → webhooks),
instead of sending it row by row; and keeping the figures the service reports.

The engine calls `run_handover` at the start of every sender task of a run
(engine.run_send). When the run's campaign goes through such an integration (the one it
names, else its channel's default), the task hands the run's queued deliveries of that
channel over:

1. `preparing`: slice by slice (PREPARE_SLICE deliveries in id order), contacts_export of
   the slice's contacts, then campaign_prepare with its locators (emails or phones; contact
   ids for messenger channels). After each slice the last delivery id done is saved on the
   run (`external_stats["handover"]`), so a task that dies resumes after it.
2. `creating`: campaign_create (messenger_campaign_create for messengers) with Herald's
   campaign id "herald-run-<run id>"; the service's id is saved as the run's `external_id`.
3. The run's queued deliveries of the channel become `sent` (set-based, in batches, with
   the provider's label and a history row naming the external campaign). The service's
   webhooks then move them on (delivered, bounced, opened, …) through
   campaigns.delivery.feedback, which finds them by the run's external id and the address,
   or the contact id (a messenger campaign's recipients: the service has no chat ids).
   Rows of channels the integration does not take are sent by the engine as usual; once no
   row is queued the engine reports the run drained (campaigns.delivery.signals) and the
   lifecycle completes it: Herald's part is done. The service's own progress is on the run
   as `external_status` (sending → sent), kept current by its webhooks and the stats sync.

Why a crash anywhere is safe, and nothing is created twice:
- One task at a time hands a run over: a session advisory lock per run, released by
  PostgreSQL if the worker dies. Other sender tasks of the run exit at once.
- campaign_prepare is idempotent by campaign id at the service (the contract: the service
  keeps the union of the slices), so a slice sent again after a crash adds nothing.
- campaign_create is idempotent by campaign id at the service: a task that died after the
  service created the campaign but before its id was saved asks again and gets the same id.
  Once the id is saved, no task calls create again.
- Marking the rows sent is a conditional UPDATE (status = 'queued'), safe to repeat.

Errors follow the delivery policy: a transient ProviderError (service down, 429, 5xx,
timeout) is retried after policy.retry_delay, up to policy.MAX_ATTEMPTS times, then, like a
permanent error (the service's 4xx, bad credentials), the run is reported failing
(signals.run_failing: the lifecycle pauses it with the reason). Resuming it resumes the
hand-over where it stopped.

Stats: `campaign_stats_sync` asks the service for a run's figures (cached STATS_CACHE on the
run itself, so every process shares the cache) and stores them on the run; the beat task
runs `handed_over_runs_sync` for runs still sending or recently finished.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from campaigns.delivery import policy
from campaigns.delivery.content import (
    SendContent,
    email_sender,
    sms_sender,
    template_integration_id,
)
from campaigns.delivery.providers import (
    CampaignRequest,
    CampaignStats,
    CampaignStatus,
    CampaignType,
    NotSupported,
    Provider,
    ProviderError,
    integration_for,
    provider_kinds,
    provider_label,
    provider_of,
)
from campaigns.delivery.signals import run_failing
from campaigns.ledger import run_deliveries_sent
from campaigns.models import CampaignRun, Delivery, RunStatus
from campaigns.models import CampaignType as RunKind
from config.core.models import Integration
from config.core.secrets import SecretsUnreadable
from contacts.models import MESSENGER_CHANNELS, ChannelType

logger = logging.getLogger(__name__)

CAMPAIGN_ID_PREFIX = "herald-run-"
# Deliveries per prepare call (and per contact export): one request of ~50 kB of addresses;
# the progress saved after each bounds what a crash repeats.
PREPARE_SLICE = 1000
# Deliveries marked sent per statement once the service has the campaign: bounded locks and
# WAL per transaction on a run of a million rows.
# Campaign types a service can take whole: drip and milestone rows have their own times per
# contact, which the contract's campaigns do not carry.
HANDOVER_KINDS = (RunKind.BLAST, RunKind.RECURRING)
# How long a run's figures from the service are trusted before it is asked again.
STATS_CACHE = timedelta(minutes=3)
# The stats beat keeps asking about a handed-over run for this long after it started,
# unless the service reported it finished (opens and clicks keep coming after sending).
STATS_FOLLOW = timedelta(days=7)
FINAL_EXTERNAL = (CampaignStatus.SENT, CampaignStatus.CANCELLED, CampaignStatus.FAILED)
FINISHED_QUIET = timedelta(days=1)

PREPARING = "preparing"
CREATING = "creating"
_LOCK_NAMESPACE = 0x48414E44  # "HAND": the advisory-lock key space of hand-overs


def campaign_type(channel: str) -> CampaignType:
    if channel == ChannelType.SMS:
        return CampaignType.SMS
    if channel in MESSENGER_CHANNELS:
        return CampaignType.MESSENGER
    return CampaignType.EMAIL


def handover_target(run: CampaignRun) -> tuple[Integration, str] | None:
    """The integration and channel the run is handed to, or None (sent row by row): the
    first of the campaign's channels whose integration (the campaign's, else its template's,
    else the channel's default) takes whole campaigns; once handed over, the run's
    integration."""
    campaign = run.campaign
    if run.integration_id and run.external_id:
        integration = Integration.objects.filter(pk=run.integration_id).first()
        if integration is None:
            return None
        served = [c for c in campaign.channels if c in (integration.channels or [])]
        return integration, (served or [ChannelType.EMAIL])[0]
    if campaign.type not in HANDOVER_KINDS:
        return None
    kinds = provider_kinds()
    named = campaign.integration_id or template_integration_id(run.template_version)
    for channel in campaign.channels:
        integration = integration_for(channel, named)
        if integration is None:
            continue
        cls = kinds.get(integration.kind)
        if cls is not None and cls.accepts_campaigns:
            return integration, channel
    return None


@contextmanager
def _run_lock(run_id: int) -> Iterator[bool]:
    """A session advisory lock per run: held by one task's hand-over, dropped by PostgreSQL
    with the connection if the worker dies."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_NAMESPACE, run_id])
        held = bool(cursor.fetchone()[0])
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_NAMESPACE, run_id])


def _state(run: CampaignRun) -> dict[str, Any]:
    return dict((run.external_stats or {}).get("handover") or {})


def _state_save(run: CampaignRun, state: dict[str, Any], **fields: Any) -> None:
    run.external_stats = {**(run.external_stats or {}), "handover": state}
    for name, value in fields.items():
        setattr(run, name, value)
    CampaignRun.objects.filter(pk=run.pk).update(external_stats=run.external_stats, **fields)


def run_handover(*, run_id: int) -> tuple[bool, float | None]:
    """A sender task's hand-over step: (handled, wait). `handled` False: the run is not
    handed to a service; send it row by row. Otherwise `wait` is when this task should run
    again (None: not at all; seconds: a retry is due then)."""
    run = (
        CampaignRun.objects.select_related("campaign", "template_version__template")
        .filter(pk=run_id)
        .first()
    )
    if run is None:
        return False, None
    target = handover_target(run)
    if target is None:
        return False, None
    if run.status != RunStatus.RUNNING:
        return True, None
    integration, channel = target
    with _run_lock(run_id) as held:
        if not held:
            return True, None  # another task of the run is handing it over
        run.refresh_from_db()
        if run.status != RunStatus.RUNNING:
            return True, None
        if not run.external_id:
            state = _state(run)
            retry_at = state.get("retry_at")
            if retry_at and datetime.fromisoformat(retry_at) > timezone.now():
                # Not due: the task that failed scheduled its own retry; a sender started
                # meanwhile (recovery) leaves it to that one.
                return True, None
            try:
                _hand_over(run, integration, channel, state)
            except (ProviderError, SecretsUnreadable) as exc:
                return True, _failed(run, integration, state, exc)
        rows_mark_sent(run=run, channel=channel, integration=integration)
    return False, None  # the other channels' rows, if any, go through the engine


def _provider(integration: Integration) -> Provider:
    return provider_of(integration)


def _hand_over(run: CampaignRun, integration: Integration, channel: str, state: dict) -> None:
    provider = _provider(integration)
    kind = campaign_type(channel)
    campaign_id = f"{CAMPAIGN_ID_PREFIX}{run.pk}"
    try:
        if state.get("phase", PREPARING) == PREPARING:
            state.update(phase=PREPARING, channel=channel, integration=integration.pk)
            _state_save(run, state, external_status=PREPARING, integration=integration)
            after = int(state.get("prepared", 0))
            while True:
                rows = list(
                    Delivery.objects.filter(
                        run_id=run.pk, channel=channel, status="queued", pk__gt=after
                    )
                    .order_by("pk")
                    .values_list("pk", "contact_id", "locator")[:PREPARE_SLICE]
                )
                if not rows:
                    break
                contact_ids = [contact for _, contact, _ in rows if contact is not None]
                with suppress(NotSupported):
                    provider.contacts_export(contact_ids)
                if kind == CampaignType.MESSENGER:
                    locators = [str(contact) for contact in contact_ids]
                else:
                    locators = [locator for _, _, locator in rows]
                provider.campaign_prepare(campaign_id, kind, locators)
                after = rows[-1][0]
                state.update(prepared=after, attempts=0, retry_at=None, error="")
                _state_save(run, state)
            state["phase"] = CREATING
            _state_save(run, state, external_status=CREATING)
        request = campaign_request(run, channel, campaign_id)
        if kind == CampaignType.MESSENGER:
            external_id = provider.messenger_campaign_create(request)
        else:
            external_id = provider.campaign_create(request)
        state.update(phase="created", attempts=0, retry_at=None, error="")
        _state_save(
            run,
            state,
            external_id=external_id[:255],
            external_status=CampaignStatus.SENDING.value,
            integration=integration,
        )
        logger.info("run %s handed to %s as campaign %s", run.pk, integration, external_id)
    finally:
        closing = getattr(provider, "close", None)
        if callable(closing):
            closing()


def campaign_request(run: CampaignRun, channel: str, campaign_id: str) -> CampaignRequest:
    """What the service is asked to send: the run's template version as written (the
    service personalises, if it does), and the template's id at the service when it was
    imported from or published to the same integration."""
    version = run.template_version
    content = SendContent.of_run(run)
    kind = campaign_type(channel)
    template = version.template if version is not None else None
    template_external_id = ""
    if (
        template is not None
        and template.external_id
        and template.integration_id is not None
        and template.integration_id == run.campaign.integration_id
    ):
        template_external_id = template.external_id
    from_name, from_email = "", ""
    if kind == CampaignType.EMAIL:
        header, _ = email_sender(content)
        from_name, from_email = parseaddr(header)
    elif kind == CampaignType.SMS:
        from_name = sms_sender(content)
    text = ""
    if version is not None:
        text = version.text if kind == CampaignType.EMAIL else version.sms_text
    return CampaignRequest(
        campaign_id=campaign_id,
        name=f"{run.campaign.name} #{run.number}",
        type=kind,
        subject=version.subject if version is not None else "",
        html=version.html if version is not None and kind == CampaignType.EMAIL else "",
        text=text,
        from_name=from_name,
        from_email=from_email,
        template_external_id=template_external_id,
        messenger_type=channel if kind == CampaignType.MESSENGER else "",
    )


def _failed(
    run: CampaignRun, integration: Integration, state: dict, exc: ProviderError | SecretsUnreadable
) -> float | None:
    """Record a failed hand-over step: retry later (transient, attempts left) or report the
    run failing (the lifecycle pauses it; resuming starts the attempts afresh)."""
    message = exc.message if isinstance(exc, ProviderError) else str(exc)
    is_permanent = not isinstance(exc, ProviderError) or exc.permanent
    attempts = int(state.get("attempts", 0)) + 1
    state["error"] = message[:2000]
    if not is_permanent and attempts < policy.MAX_ATTEMPTS:
        delay = policy.retry_delay(attempts)
        state.update(attempts=attempts, retry_at=(timezone.now() + delay).isoformat())
        _state_save(run, state)
        logger.warning(
            "handing run %s to %s failed (attempt %s): %s", run.pk, integration, attempts, message
        )
        return delay.total_seconds()
    state.update(attempts=0, retry_at=None)
    _state_save(run, state)
    reason = f"handing the campaign to {integration.name} failed: {message}"
    if not is_permanent:
        reason = f"handing the campaign to {integration.name} failed {attempts} times: {message}"
    run_failing.send(sender=run_handover, run_id=run.pk, reason=reason)
    return None


def rows_mark_sent(*, run: CampaignRun, channel: str, integration: Integration) -> int:
    """The run's queued deliveries of the channel become sent: the service has them."""
    label = provider_label(integration)
    return run_deliveries_sent(
        run_id=run.pk,
        channel=channel,
        provider=label,
        detail=f"handed over to {label} as campaign {run.external_id}",
    )


# --- stats ----------------------------------------------------------------------------------


def _stats_of(data: dict[str, Any]) -> CampaignStats:
    """The figures stored on a run (as_dict); a row that no longer reads gives zeros."""
    try:
        return CampaignStats.from_dict(data)
    except ValueError:
        return CampaignStats()


def campaign_stats_sync(*, run: CampaignRun) -> CampaignStats:
    """The run's figures at the service: fetched (campaign_stats) unless fetched within
    STATS_CACHE, stored on the run (external_stats, external_stats_at, external_status) and
    the integration's stats_synced_at. Raises ProviderError (the service's message) and
    NotSupported for a run that was not handed over."""
    if not run.external_id or run.integration_id is None:
        raise NotSupported("statistics of a campaign that was not handed to a service")
    now = timezone.now()
    if run.external_stats_at and now - run.external_stats_at < STATS_CACHE:
        return _stats_of(run.external_stats or {})
    integration = Integration.objects.get(pk=run.integration_id)
    provider = _provider(integration)
    try:
        stats = provider.campaign_stats(run.external_id)
    finally:
        closing = getattr(provider, "close", None)
        if callable(closing):
            closing()
    data = stats.as_dict()
    update: dict[str, Any] = {"external_stats": data, "external_stats_at": now}
    if stats.status:
        update["external_status"] = str(stats.status)
    CampaignRun.objects.filter(pk=run.pk).update(**update)
    for name, value in update.items():
        setattr(run, name, value)
    Integration.objects.filter(pk=integration.pk).update(stats_synced_at=now)
    return stats


def handed_over_runs_sync(*, now: datetime | None = None) -> dict[str, int]:
    """The beat task's work: sync the figures of handed-over runs still sending, or finished
    less than FINISHED_QUIET ago, started within STATS_FOLLOW. A service that fails is
    logged and asked again next time."""
    now = now or timezone.now()
    runs = (
        CampaignRun.objects.exclude(external_id="")
        .filter(integration__isnull=False, started_at__gte=now - STATS_FOLLOW)
        .filter(
            ~Q(external_status__in=[str(status) for status in FINAL_EXTERNAL])
            | Q(finished_at__isnull=True)
            | Q(finished_at__gte=now - FINISHED_QUIET)
        )
    )
    synced = failed = 0
    for run in runs:
        try:
            campaign_stats_sync(run=run)
            synced += 1
        except ProviderError as exc:
            failed += 1
            logger.warning("stats of run %s from its service failed: %s", run.pk, exc.message)
    return {"synced": synced, "failed": failed}

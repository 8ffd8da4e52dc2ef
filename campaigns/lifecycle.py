"""The campaign lifecycle: the status machine and every campaign write.

(Over 600 lines on purpose: the status machine is one unit. Every move of a campaign or run
goes through `_transition` / `run_set_status` under the campaign-then-run lock order, and
the actions below are its only callers; split across modules, that order and TRANSITIONS
would no longer be checked in one place. Input checking is apart, in lifecycle_input.)

Status changes go through `campaign_set_status` / `_transition` only, checked against
`TRANSITIONS` under a row lock, so two launches (a double click, beat and a marketer at the same
moment) serialise on the campaign row and exactly one of them creates the run.

Types:
- blast: launch creates run 1; the campaign completes when the run does. With an A/B test
  (campaigns.abtest) run 1 starts with the test share and stays running until the winner
  has gone to the rest; with a resend to non-openers (campaigns.resend) the campaign stays
  running until that follow-up run has completed too.
- recurring: launch (or a scheduled start) activates the cron entry; each tick is a new run;
  the campaign stays running until endAt or cancel.
- milestone: like recurring with a daily tick at milestone.sendAt; each day is a run.
- drip: launch creates run 1; a beat task re-materialises it so contacts who join the audience
  later enter too, and later steps fall due; it ends at endAt or cancel.
"""

import datetime as dt
from typing import Any

from auditlog.registry import auditlog
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from campaigns import abtest, pipeline, resend, scheduling
from campaigns.craft import campaign_craft_apply, campaign_craft_copy
from campaigns.delivery import policy
from campaigns.delivery.providers import channel_integrations, social_accounts
from campaigns.delivery.signals import run_drained, run_failing
from campaigns.lifecycle_input import (
    SOCIAL_PLATFORMS,
    CampaignInvalid,
    campaign_input_clean,
)
from campaigns.models import (
    Campaign,
    CampaignRun,
    CampaignStatus,
    CampaignStep,
    CampaignType,
    Delivery,
    DeliveryStatus,
    RunStatus,
)
from campaigns.sms import sms_gateway
from campaigns.utm import utm_copy
from config.core.errors import ConflictError
from config.core.models import Organisation
from contacts.models import ChannelType
from templates.models import MessageTemplate, TemplateVersion
from templates.services import TemplateValidationError, template_publish

S = CampaignStatus

# Every campaign write and status change passes through this module, so registering here puts
# each one in the audit log (who, when, which fields) wherever the lifecycle is used.
if not auditlog.contains(Campaign):
    auditlog.register(Campaign, exclude_fields=["updated_at"])

# Why each move exists:
# - draft → running/scheduled: launch now / at startAt; draft → cancelled: abandon.
# - scheduled → draft: unschedule to edit; scheduled → failed: the launch at startAt was refused
#   (a channel disconnected since) and the marketer must see why rather than a silent schedule.
# - running → scheduled is absent: a recurring campaign stays running between ticks.
# - paused → completed: endAt passed while paused. completed/cancelled/failed are final
#   (duplicate the campaign to send again).
TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.SCHEDULED, S.RUNNING, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.RUNNING, S.DRAFT, S.CANCELLED, S.FAILED}),
    S.RUNNING: frozenset({S.PAUSED, S.COMPLETED, S.CANCELLED, S.FAILED}),
    S.PAUSED: frozenset({S.RUNNING, S.CANCELLED, S.COMPLETED}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
    S.FAILED: frozenset(),
}
RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    RunStatus.RUNNING: frozenset(
        {RunStatus.PAUSED, RunStatus.COMPLETED, RunStatus.CANCELLED, RunStatus.FAILED}
    ),
    RunStatus.PAUSED: frozenset(
        {RunStatus.RUNNING, RunStatus.CANCELLED, RunStatus.COMPLETED, RunStatus.FAILED}
    ),
    RunStatus.COMPLETED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
    RunStatus.FAILED: frozenset(),
}
EDITABLE = (S.DRAFT, S.SCHEDULED, S.PAUSED)
ACTIVE_RUN = (RunStatus.RUNNING, RunStatus.PAUSED)


class IllegalTransition(ConflictError):
    """The campaign's (or run's) status does not allow the requested move."""

    def __init__(
        self, current: str, wanted: str, allowed: frozenset[str] | set[str], *, note: str = ""
    ) -> None:
        self.current = current
        self.wanted = wanted
        self.allowed = sorted(allowed)
        moves = ", ".join(self.allowed) or "none (final status)"
        lead = f"{note}: " if note else ""
        super().__init__(f"{lead}a {current} campaign cannot become {wanted}; allowed: {moves}")

    def body(self) -> dict:
        # The CRM campaigns API's 409: the status, the move wanted and the moves allowed.
        return {
            "detail": str(self),
            "status": self.current,
            "wanted": self.wanted,
            "allowed": self.allowed,
        }


class LaunchRefused(ConflictError):
    """The campaign is valid but cannot start now; `field` names what to fix."""

    def __init__(self, field: str, message: str, *, channel: str = "") -> None:
        super().__init__(message, field=field)
        # The message alone, as the edges have always shown it (the field is named apart).
        self.args = (message,)
        self.channel = channel

    def body(self) -> dict:
        body = {"detail": self.message, "field": self.field}
        if self.channel:
            body["channel"] = self.channel
        return body


class CampaignLocked(ConflictError):
    """The campaign cannot be edited in its status."""

    def __init__(self, status: str) -> None:
        super().__init__(
            f"a {status} campaign cannot be edited; editable statuses: {', '.join(EDITABLE)}"
        )
        # Not `status`: that is the HTTP status every HeraldError answers with.
        self.campaign_status = status


# --- Channels ------------------------------------------------------------------------------


def channel_connection(channel: str) -> tuple[bool, str]:
    """(connected, how). A channel is connected when an enabled integration serves it.
    Without one, the environment's transports: email when a sender address is configured
    (the organisation's default sender or DEFAULT_FROM_EMAIL); SMS always, campaigns.sms
    yielding the HTTP gateway when HERALD_SMS_URL is set, else the file outbox, which counts
    as connected just as email's file backend does in development."""
    integrations = channel_integrations(channel)
    if integrations and channel in SOCIAL_PLATFORMS:
        # A post goes from an account: the platform is connected once one is listed.
        names = ", ".join(integration.name for integration in integrations)
        accounts = social_accounts(channel)
        if not accounts:
            return (False, f"{names} lists no {channel} account")
        return (True, f"through {names} ({len(accounts)} account(s))")
    if integrations:
        return (True, "through " + ", ".join(integration.name for integration in integrations))
    if channel == ChannelType.EMAIL:
        sender = Organisation.load().default_sender_email or settings.DEFAULT_FROM_EMAIL
        return (bool(sender), f"sender {sender}" if sender else "no sender address configured")
    if channel == ChannelType.SMS:
        return (True, f"gateway {sms_gateway().name}")
    return (False, "no integration connects this channel")


def _check_launchable(campaign: Campaign) -> None:
    integration = campaign.integration
    if integration is not None:
        if not integration.enabled:
            raise LaunchRefused(
                "integration", f"cannot launch: the integration {integration.name} is disabled"
            )
        missing = [c for c in campaign.channels if c not in integration.channels]
        if missing:
            raise LaunchRefused(
                "integration",
                f"cannot launch: the integration {integration.name} does not connect "
                f"{', '.join(missing)}",
            )
    for channel in campaign.channels:
        connected, how = channel_connection(channel)
        if not connected:
            raise LaunchRefused(
                "channels",
                f"cannot launch: channel {channel} is not connected ({how})",
                channel=channel,
            )
    if campaign.segment_id is None and campaign.audience_filter is None:
        raise LaunchRefused(
            "audienceId", "cannot launch without an audience (audienceId or audience)"
        )
    if campaign.type == CampaignType.DRIP:
        if not campaign.steps.exists():
            raise LaunchRefused("steps", "cannot launch a drip campaign without steps")
    elif campaign.template_id is None:
        raise LaunchRefused("templateId", "cannot launch without a template (templateId)")


def campaign_launch_refusal(campaign: Campaign) -> LaunchRefused | None:
    """Why the campaign could not launch now (the launch rule's refusal), else None: for
    pages that say so before anyone presses the button."""
    try:
        _check_launchable(campaign)
    except LaunchRefused as exc:
        return exc
    return None


def launch_summary(campaign: Campaign) -> dict[str, Any]:
    """What a launch (or scheduled start) of the campaign would do now, for the marketer to
    confirm: its reach per channel (counted as the run would materialise it, after
    suppressions and unsubscribes), how each channel sends, and whether the reach is large
    enough that the campaign's name must be typed to confirm."""
    reach = pipeline.launch_reach(campaign)
    total = sum(reach.values())
    channels = []
    for channel in campaign.channels:
        if campaign.integration is not None:
            how = campaign.integration.name
        else:
            how = channel_connection(channel)[1]
        channels.append({"channel": channel, "reach": reach.get(channel, 0), "how": how})
    return {
        "reach": total,
        "channels": channels,
        "name_required": total >= settings.HERALD_LAUNCH_CONFIRM_NAME_AT,
        "refusal": campaign_launch_refusal(campaign),
    }


# --- The status machine --------------------------------------------------------------------


def _lock(campaign: Campaign | int) -> Campaign:
    pk = campaign.pk if isinstance(campaign, Campaign) else campaign
    return Campaign.objects.select_for_update().get(pk=pk)


def _transition(locked: Campaign, status: str, reason: str = "") -> None:
    """Move a row this transaction holds locked; also keeps its beat entry in step."""
    allowed = TRANSITIONS[locked.status]
    if status not in allowed:
        raise IllegalTransition(locked.status, status, allowed)
    locked.status = status
    locked.status_reason = reason
    locked.save(update_fields=["status", "status_reason", "updated_at"])
    scheduling.schedule_sync(campaign=locked)


@transaction.atomic
def campaign_set_status(*, campaign: Campaign, status: str, reason: str = "") -> Campaign:
    locked = _lock(campaign)
    _transition(locked, status, reason)
    _copy(locked, campaign)
    return campaign


def _copy(source: Campaign, target: Campaign) -> None:
    if source is not target:
        for name in ("status", "status_reason", "periodic_task_id", "deleted_at", "updated_at"):
            setattr(target, name, getattr(source, name))


@transaction.atomic
def run_set_status(*, run: CampaignRun, status: str, reason: str = "") -> CampaignRun:
    locked = CampaignRun.objects.select_for_update().get(pk=run.pk)
    allowed = RUN_TRANSITIONS[locked.status]
    if status not in allowed:
        raise IllegalTransition(locked.status, status, allowed)
    locked.status = status
    locked.status_reason = reason
    if status in (RunStatus.COMPLETED, RunStatus.CANCELLED, RunStatus.FAILED):
        locked.finished_at = timezone.now()
    locked.save(update_fields=["status", "status_reason", "finished_at"])
    run.status, run.status_reason, run.finished_at = status, reason, locked.finished_at
    if status == RunStatus.RUNNING:
        transaction.on_commit(lambda: pipeline.run_enqueue(run_id=locked.pk))
    return run


def _runs_set(locked: Campaign, from_statuses: tuple, status: str, reason: str) -> list[int]:
    runs = list(locked.runs.select_for_update().filter(status__in=from_statuses))
    for run in runs:
        run_set_status(run=run, status=status, reason=reason)
    return [run.pk for run in runs]


def deliveries_skip(*, run_ids: list[int], reason: str) -> int:
    """Queued deliveries of ended runs will not be sent. Rows a live worker holds (a fresh
    claim) are left to it: they are in flight and get their real outcome."""
    if not run_ids:
        return 0
    stale = timezone.now() - policy.claim_lease()
    return Delivery.objects.filter(
        Q(claimed_at__isnull=True) | Q(claimed_at__lt=stale),
        run_id__in=run_ids,
        status=DeliveryStatus.QUEUED,
    ).update(status=DeliveryStatus.SKIPPED, error=reason, claimed_at=None, failed_at=timezone.now())


# --- Create, update, duplicate, delete -----------------------------------------------------


def _current_values(campaign: Campaign) -> dict:
    return {
        "pk": campaign.pk,
        "name": campaign.name,
        "type": campaign.type,
        "channels": campaign.channels,
        "template": campaign.template,
        "integration": campaign.integration,
        "cron": campaign.cron,
        "milestone": campaign.milestone,
        "start_at": campaign.start_at,
        "timezone": campaign.timezone,
    }


def _steps_replace(campaign: Campaign, steps: list[dict]) -> None:
    campaign.steps.all().delete()
    CampaignStep.objects.bulk_create(
        CampaignStep(
            campaign=campaign,
            position=step["position"],
            template=step["template"],
            delay=step["delay"],
        )
        for step in steps
    )


def _apply_status(locked: Campaign, status: str | None, user: Any) -> None:
    """The body's `status`: running = launch now (or at a future startAt: scheduled),
    scheduled = schedule, draft = unschedule, paused/cancelled = those actions.

    A draft that cannot start (a channel not connected, no template yet) stays a saved draft
    with the reason in statusReason — the CRM campaigns API: "will save and stay in draft"."""
    if status is None or status == locked.status:
        return
    try:
        if status == S.RUNNING:
            if locked.start_at is not None and locked.start_at > timezone.now():
                _schedule(locked)
            else:
                _launch(locked, user=user)
        elif status == S.SCHEDULED:
            _schedule(locked)
        elif status == S.PAUSED:
            _pause(locked, "paused by request")
        elif status == S.CANCELLED:
            _cancel(locked, "cancelled by request")
        else:
            _transition(locked, status)
    except LaunchRefused as exc:
        if exc.field.startswith("schedule."):
            raise CampaignInvalid({exc.field: exc.message}) from None
        if locked.status != S.DRAFT:
            raise
        locked.status_reason = exc.message
        locked.save(update_fields=["status_reason", "updated_at"])


def _save_keyed(campaign: Campaign) -> None:
    """Save; the external key's uniqueness is checked with the input, and a request that
    took the same key in the meantime is refused the same way."""
    try:
        with transaction.atomic():
            campaign.save()
    except IntegrityError:
        raise CampaignInvalid(
            {"externalId": f"another campaign has the external key {campaign.external_key!r}"}
        ) from None


@transaction.atomic
def campaign_create(*, data: dict, user: Any = None) -> Campaign:
    """Create from a CRM campaigns API body. Raises CampaignInvalid (400), IllegalTransition /
    LaunchRefused (409) for a `status` that cannot be honoured — except a launch refused for
    an unconnected channel, which leaves the campaign saved in draft with the reason (the CRM
    campaigns API: "will save and stay in draft")."""
    cleaned = campaign_input_clean(data)
    campaign = Campaign(
        created_by=user if getattr(user, "is_authenticated", False) else None, **cleaned.values
    )
    _save_keyed(campaign)
    if cleaned.steps is not None:
        _steps_replace(campaign, cleaned.steps)
    campaign_craft_apply(campaign=campaign, data=data, editable=True)
    _apply_status(_lock(campaign), cleaned.status, user)
    campaign.refresh_from_db()
    return campaign


@transaction.atomic
def campaign_update(*, campaign: Campaign, data: dict, user: Any = None) -> Campaign:
    """Change the fields the body carries. Only draft, scheduled and paused campaigns are
    editable; a scheduled one gets its beat entry replaced."""
    locked = _lock(campaign)
    if locked.deleted_at is not None:
        raise CampaignLocked("deleted")
    cleaned = campaign_input_clean(data, current=_current_values(locked))
    changed = [name for name, value in cleaned.values.items() if getattr(locked, name) != value]
    steps = cleaned.steps
    steps_changed = steps is not None and [
        (step["template"].pk, step["delay"]) for step in steps
    ] != list(locked.steps.order_by("position").values_list("template_id", "delay"))
    # Clients often PUT back what GET gave them with only `status` changed: unchanged fields
    # are not an edit.
    if (changed or steps_changed) and locked.status not in EDITABLE:
        raise CampaignLocked(locked.status)
    for name in changed:
        setattr(locked, name, cleaned.values[name])
    if changed:
        _save_keyed(locked)
    if steps is not None and steps_changed:
        _steps_replace(locked, steps)
    campaign_craft_apply(campaign=locked, data=data, editable=locked.status in EDITABLE)
    if locked.status == S.SCHEDULED and (cleaned.status in (None, S.SCHEDULED)):
        if locked.type not in scheduling.TICKING and (
            locked.start_at is None or locked.start_at <= timezone.now()
        ):
            raise CampaignInvalid(
                {"schedule.startAt": "a scheduled campaign needs a future startAt"}
            )
        scheduling.schedule_sync(campaign=locked)
    _apply_status(locked, cleaned.status, user)
    campaign.refresh_from_db()
    return campaign


@transaction.atomic
def campaign_duplicate(*, campaign: Campaign, user: Any = None) -> Campaign:
    """A draft copy (no schedule times: they are usually past), with its drip steps."""
    source = Campaign.objects.get(pk=campaign.pk)
    copy = Campaign.objects.create(
        name=f"{source.name} (copy)"[:200],
        type=source.type,
        channels=list(source.channels),
        segment_id=source.segment_id,
        audience_filter=source.audience_filter,
        template_id=source.template_id,
        integration_id=source.integration_id,
        timezone=source.timezone,
        cron=source.cron,
        milestone=source.milestone,
        send_local_time=source.send_local_time,
        send_window=source.send_window,
        error_threshold=source.error_threshold,
        **utm_copy(source),
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    CampaignStep.objects.bulk_create(
        CampaignStep(campaign=copy, position=s.position, template_id=s.template_id, delay=s.delay)
        for s in source.steps.all()
    )
    campaign_craft_copy(source=source, copy=copy)
    return copy


@transaction.atomic
def campaign_delete(*, campaign: Campaign) -> Campaign:
    """Soft delete: history and analytics stay; the beat entry goes; active runs stop."""
    locked = _lock(campaign)
    if locked.deleted_at is not None:
        return locked
    if S.CANCELLED in TRANSITIONS[locked.status]:
        _cancel(locked, "deleted")
    locked.deleted_at = timezone.now()
    locked.save(update_fields=["deleted_at", "updated_at"])
    scheduling.schedule_sync(campaign=locked)
    _copy(locked, campaign)
    return campaign


# --- Actions ---------------------------------------------------------------------------------


def _not_deleted(locked: Campaign) -> None:
    if locked.deleted_at is not None:
        raise IllegalTransition("deleted", "any", set())


def _schedule(locked: Campaign) -> None:
    if locked.type in scheduling.TICKING:
        _check_launchable(locked)
        # A recurring campaign without a future start is simply active: ticks start now.
        if locked.start_at is None or locked.start_at <= timezone.now():
            _transition(locked, S.RUNNING, "waiting for the next tick")
            return
        _transition(locked, S.SCHEDULED)
        return
    if locked.start_at is None or locked.start_at <= timezone.now():
        raise LaunchRefused("schedule.startAt", "scheduling needs a future schedule.startAt")
    _check_launchable(locked)
    _transition(locked, S.SCHEDULED)


@transaction.atomic
def campaign_schedule(*, campaign: Campaign) -> Campaign:
    locked = _lock(campaign)
    _not_deleted(locked)
    _schedule(locked)
    _copy(locked, campaign)
    return campaign


def _template_version(template: MessageTemplate, user: Any) -> tuple[TemplateVersion, bool]:
    """The latest published version; a template never published is published now (the
    marketer chose it for this campaign, and a run must send frozen content)."""
    version = template.versions.order_by("-number").first()
    if version is not None:
        return version, False
    try:
        # A savepoint: a refused publish must not spoil the caller's transaction.
        with transaction.atomic():
            return template_publish(template=template, user=user), True
    except TemplateValidationError as exc:
        problems = "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
        raise LaunchRefused(
            "templateId",
            f"cannot launch: template {template.pk} has no published version and cannot be "
            f"published ({problems})",
        ) from None


def _versions_ready(locked: Campaign, user: Any) -> tuple[TemplateVersion | None, str]:
    """Make sure every template the campaign sends has a published version (before any
    status change, so a refusal leaves the campaign as it was). Returns the run's version and
    a note naming what was published now."""
    templates = [
        step.template for step in locked.steps.order_by("position").select_related("template")
    ]
    if locked.template is not None and locked.type != CampaignType.DRIP:
        templates = [locked.template]
    version = None
    published_now = []
    for position, template in enumerate(templates):
        template_version, published = _template_version(template, user)
        if position == 0:
            version = template_version
        if published:
            published_now.append(f"template {template.pk} v{template_version.number}")
    note = ""
    if published_now:
        note = "published at launch (no published version existed): " + ", ".join(published_now)
    return version, note


def _run_start(locked: Campaign, *, version: TemplateVersion | None) -> CampaignRun:
    """Create the next run in the caller's transaction (the campaign row is locked, so the
    number cannot collide) and materialise its recipients; senders start on commit."""
    number = (locked.runs.aggregate(n=Max("number"))["n"] or 0) + 1
    run = CampaignRun.objects.create(campaign=locked, number=number, template_version=version)
    # A blast with an A/B test materialises only its test share now (campaigns.abtest).
    run.reach = abtest.run_materialise(run=run)
    CampaignRun.objects.filter(pk=run.pk).update(reach=run.reach)
    run_id = run.pk
    transaction.on_commit(lambda: pipeline.run_enqueue(run_id=run_id))
    return run


def _launch(locked: Campaign, *, user: Any = None) -> CampaignRun | None:
    _not_deleted(locked)
    allowed = TRANSITIONS[locked.status]
    if S.RUNNING not in allowed:
        raise IllegalTransition(locked.status, S.RUNNING, allowed)
    _check_launchable(locked)
    if locked.type in scheduling.TICKING:
        _transition(locked, S.RUNNING, "waiting for the next tick")
        return None
    version, note = _versions_ready(locked, user)
    _transition(locked, S.RUNNING, note)
    return _run_start(locked, version=version)


@transaction.atomic
def campaign_launch_now(*, campaign: Campaign, user: Any = None) -> CampaignRun | None:
    """Launch now. Returns the new run (None for recurring and milestone campaigns, whose
    launch activates their ticks). A second launch finds the campaign running → 409."""
    locked = _lock(campaign)
    run = _launch(locked, user=user)
    _copy(locked, campaign)
    return run


@transaction.atomic
def campaign_launch_scheduled(*, campaign_id: int) -> CampaignRun | None:
    """Beat's one-off start. Idempotent: anything but a scheduled campaign is left alone."""
    locked = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
    if locked is None or locked.status != S.SCHEDULED or locked.deleted_at is not None:
        return None
    try:
        return _launch(locked)
    except LaunchRefused as exc:
        _transition(locked, S.FAILED, f"scheduled launch refused: {exc.message}")
        return None


@transaction.atomic
def campaign_tick(*, campaign_id: int) -> CampaignRun | None:
    """A recurring or milestone tick: a new run, if the campaign is active and within its
    window. Ticks of paused, draft, ended or deleted campaigns do nothing."""
    locked = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
    if locked is None or locked.deleted_at is not None:
        return None
    now = timezone.now()
    if locked.end_at is not None and locked.end_at <= now:
        _end(locked, "endAt reached")
        return None
    if locked.status == S.SCHEDULED and locked.start_at is not None and locked.start_at > now:
        return None
    if locked.status not in (S.SCHEDULED, S.RUNNING):
        return None
    try:
        _check_launchable(locked)
        version, _ = _versions_ready(locked, None)
    except LaunchRefused as exc:
        if locked.status == S.SCHEDULED:
            _transition(locked, S.FAILED, f"scheduled launch refused: {exc.message}")
        else:
            # A running recurring campaign that lost a channel waits, resumable, rather than
            # failing for good.
            _pause(locked, f"tick skipped: {exc.message}")
        return None
    if locked.status == S.SCHEDULED:
        _transition(locked, S.RUNNING, "waiting for the next tick")
    return _run_start(locked, version=version)


def _pause(locked: Campaign, reason: str) -> None:
    _transition(locked, S.PAUSED, reason)
    _runs_set(locked, (RunStatus.RUNNING,), RunStatus.PAUSED, reason)


@transaction.atomic
def campaign_pause(*, campaign: Campaign, reason: str = "paused by request") -> Campaign:
    locked = _lock(campaign)
    _not_deleted(locked)
    _pause(locked, reason)
    _copy(locked, campaign)
    return campaign


@transaction.atomic
def campaign_resume(*, campaign: Campaign) -> Campaign:
    """Paused runs continue where they stopped (their queued rows are still queued)."""
    locked = _lock(campaign)
    _not_deleted(locked)
    if locked.status != S.PAUSED:
        raise IllegalTransition(
            locked.status,
            S.RUNNING,
            TRANSITIONS[locked.status],
            note="only a paused campaign can be resumed",
        )
    reason = "waiting for the next tick" if locked.type in scheduling.TICKING else ""
    _transition(locked, S.RUNNING, reason)
    _runs_set(locked, (RunStatus.PAUSED,), RunStatus.RUNNING, "resumed")
    _copy(locked, campaign)
    return campaign


def _cancel(locked: Campaign, reason: str) -> None:
    _transition(locked, S.CANCELLED, reason)
    ids = _runs_set(locked, ACTIVE_RUN, RunStatus.CANCELLED, reason)
    deliveries_skip(run_ids=ids, reason=f"campaign {reason}")


@transaction.atomic
def campaign_cancel(*, campaign: Campaign, reason: str = "cancelled by request") -> Campaign:
    locked = _lock(campaign)
    _not_deleted(locked)
    _cancel(locked, reason)
    _copy(locked, campaign)
    return campaign


def _end(locked: Campaign, reason: str) -> None:
    """endAt: active runs complete, their unsent rows are skipped, the campaign completes (a
    scheduled one whose window passed before it could start is cancelled)."""
    if locked.status in (S.RUNNING, S.PAUSED):
        _transition(locked, S.COMPLETED, reason)
        ids = _runs_set(locked, ACTIVE_RUN, RunStatus.COMPLETED, reason)
        deliveries_skip(run_ids=ids, reason=reason)
    elif locked.status == S.SCHEDULED:
        _transition(locked, S.CANCELLED, f"{reason} before the campaign started")


def campaigns_end_due(*, now: dt.datetime | None = None) -> int:
    """Beat: end every campaign whose endAt has passed. One transaction per campaign so one
    stuck row does not hold the others."""
    now = now or timezone.now()
    due = Campaign.objects.filter(
        deleted_at__isnull=True,
        end_at__lte=now,
        status__in=(S.SCHEDULED, S.RUNNING, S.PAUSED),
    ).values_list("pk", flat=True)
    ended = 0
    for pk in due:
        with transaction.atomic():
            locked = Campaign.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
            if locked and locked.end_at and locked.end_at <= now:
                _end(locked, "endAt reached")
                ended += 1
    return ended


# --- Reacting to the delivery engine --------------------------------------------------------


@transaction.atomic
def run_complete(*, run: CampaignRun) -> CampaignRun:
    """The engine found nothing left to send. A blast's campaign completes with its run; a
    recurring or milestone campaign keeps running for the next tick; a drip run stays open
    (later steps and new audience members) until endAt or cancel."""
    campaign = _lock(run.campaign_id)
    locked = CampaignRun.objects.select_for_update().get(pk=run.pk)
    if locked.status != RunStatus.RUNNING:
        return locked
    # An A/B test's run waits for its winner, who goes to the rest of the audience.
    if abtest.run_awaits_winner(locked):
        return locked
    if (
        campaign.type == CampaignType.DRIP
        and campaign.status == S.RUNNING
        and (campaign.end_at is None or campaign.end_at > timezone.now())
    ):
        return locked
    run_set_status(run=locked, status=RunStatus.COMPLETED)
    if (
        campaign.type == CampaignType.BLAST
        and campaign.status == S.RUNNING
        and not campaign.runs.filter(status__in=ACTIVE_RUN).exists()
    ):
        if resend.resend_pending(campaign):
            # Running until the resend to non-openers has gone too (campaigns.resend).
            campaign.status_reason = "waiting to resend to non-openers"
            campaign.save(update_fields=["status_reason", "updated_at"])
        else:
            _transition(campaign, S.COMPLETED)
    return locked


@transaction.atomic
def run_pause(*, run: CampaignRun, reason: str) -> CampaignRun:
    """The engine hit the error threshold: the run and its campaign pause with the reason."""
    campaign = _lock(run.campaign_id)
    locked = CampaignRun.objects.select_for_update().get(pk=run.pk)
    if locked.status == RunStatus.RUNNING:
        run_set_status(run=locked, status=RunStatus.PAUSED, reason=reason)
    if campaign.status == S.RUNNING:
        _pause(campaign, reason)
    return locked


def run_on_drained(sender: Any, *, run_id: int, **kwargs: Any) -> bool:
    """campaigns.delivery.signals.run_drained: complete a running run that has no queued
    delivery left. run_complete locks campaign then run and re-checks the status, so
    concurrent callers complete it once (and it keeps an open drip run running)."""
    run = CampaignRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).first()
    if run is None:
        return False
    if Delivery.objects.filter(run_id=run_id, status=DeliveryStatus.QUEUED).exists():
        return False
    return run_complete(run=run).status == RunStatus.COMPLETED


def run_on_failing(sender: Any, *, run_id: int, reason: str, **kwargs: Any) -> None:
    """campaigns.delivery.signals.run_failing: pause the run and its campaign."""
    run = CampaignRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).first()
    if run is not None:
        run_pause(run=run, reason=reason)


run_drained.connect(run_on_drained, dispatch_uid="campaigns-lifecycle-run-drained")
run_failing.connect(run_on_failing, dispatch_uid="campaigns-lifecycle-run-failing")


__all__ = [
    "TRANSITIONS",
    "CampaignInvalid",
    "CampaignLocked",
    "IllegalTransition",
    "LaunchRefused",
    "campaign_cancel",
    "campaign_create",
    "campaign_delete",
    "campaign_duplicate",
    "campaign_launch_now",
    "campaign_launch_refusal",
    "campaign_pause",
    "campaign_resume",
    "campaign_schedule",
    "campaign_set_status",
    "campaign_update",
    "run_complete",
    "run_pause",
    "run_set_status",
]

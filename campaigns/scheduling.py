"""The campaign's django-celery-beat entry, derived from the campaign alone.

One entry per campaign at most (Campaign.periodic_task):
- a blast or drip with a future start while scheduled → a one-off ClockedSchedule task
  "campaigns.launch_scheduled";
- a recurring campaign while scheduled or running → a CrontabSchedule in the campaign's time
  zone, task "campaigns.launch_recurring_tick" (each tick a new run), starting at startAt;
- a milestone campaign while scheduled or running → a daily crontab at milestone.sendAt in the
  campaign's time zone, the same tick task (each day a run of the contacts whose date it is);
- anything else (draft, paused blast, completed, cancelled, deleted) → no entry.

`schedule_sync` is called inside the lifecycle's transactions after every change, so the entry
always matches the campaign and a rolled-back change leaves the old entry in place.
"""

import json

from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, PeriodicTask

from campaigns.lifecycle_input import cron_fields
from campaigns.models import Campaign, CampaignStatus, CampaignType

LAUNCH_TASK = "campaigns.launch_scheduled"
TICK_TASK = "campaigns.launch_recurring_tick"
TICKING = (CampaignType.RECURRING, CampaignType.MILESTONE)
CRON_NAMES = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


def _crontab(*, expression: str, tz: str) -> CrontabSchedule:
    fields = cron_fields(expression)
    # Crontab rows are shared between tasks and never deleted here; reuse an identical one.
    existing = CrontabSchedule.objects.filter(**fields, timezone=tz).order_by("pk").first()
    return existing or CrontabSchedule.objects.create(**fields, timezone=tz)


def milestone_cron(campaign: Campaign) -> str:
    hour, minute = (campaign.milestone or {}).get("sendAt", "09:00").split(":")
    return f"{int(minute)} {int(hour)} * * *"


def campaign_cron(campaign: Campaign) -> str:
    """The cron the campaign ticks on ('' when it does not tick)."""
    if campaign.type == CampaignType.RECURRING:
        return campaign.cron
    if campaign.type == CampaignType.MILESTONE:
        return milestone_cron(campaign)
    return ""


def _wanted(campaign: Campaign) -> dict | None:
    """The entry the campaign should have, described without touching the database."""
    if campaign.deleted_at is not None:
        return None
    if campaign.type in TICKING:
        if campaign.status not in (CampaignStatus.SCHEDULED, CampaignStatus.RUNNING):
            return None
        return {
            "name": f"campaign-{campaign.pk}-tick",
            "task": TICK_TASK,
            "cron": campaign_cron(campaign),
            "start_time": campaign.start_at,
            "expires": campaign.end_at,
        }
    if campaign.status == CampaignStatus.SCHEDULED and campaign.start_at is not None:
        return {
            "name": f"campaign-{campaign.pk}-launch",
            "task": LAUNCH_TASK,
            "at": campaign.start_at,
        }
    return None


def _matches(task: PeriodicTask, wanted: dict) -> bool:
    if task.name != wanted["name"] or task.task != wanted["task"] or not task.enabled:
        return False
    if "at" in wanted:
        return task.clocked is not None and task.clocked.clocked_time == wanted["at"]
    crontab = task.crontab
    return (
        crontab is not None
        and cron_fields(wanted["cron"]) == {name: getattr(crontab, name) for name in CRON_NAMES}
        and str(crontab.timezone) == wanted["tz"]
        and task.start_time == wanted["start_time"]
        and task.expires == wanted["expires"]
    )


def _remove(task: PeriodicTask) -> None:
    clocked = task.clocked
    # Instance delete (not a queryset delete) so django-celery-beat's signal tells beat the
    # schedule changed.
    task.delete()
    if clocked is not None and not PeriodicTask.objects.filter(clocked=clocked).exists():
        clocked.delete()


def _create(campaign: Campaign, wanted: dict) -> PeriodicTask:
    common = {
        "name": wanted["name"],
        "task": wanted["task"],
        "args": json.dumps([campaign.pk]),
        "description": f"Campaign {campaign.pk}: {campaign.name}"[:200],
        "enabled": True,
    }
    if "at" in wanted:
        clocked = ClockedSchedule.objects.create(clocked_time=wanted["at"])
        return PeriodicTask.objects.create(clocked=clocked, one_off=True, **common)
    return PeriodicTask.objects.create(
        crontab=_crontab(expression=wanted["cron"], tz=wanted["tz"]),
        start_time=wanted["start_time"],
        expires=wanted["expires"],
        **common,
    )


def schedule_sync(*, campaign: Campaign) -> PeriodicTask | None:
    """Make the campaign's beat entry match its type, status and times. An entry that already
    matches is kept (re-creating it would reset beat's memory of the last tick); otherwise it
    is replaced, never edited in place, so beat never sees a half-changed entry."""
    wanted = _wanted(campaign)
    if wanted is not None:
        wanted["tz"] = campaign.timezone
    old = campaign.periodic_task
    if old is not None:
        if wanted is not None and _matches(old, wanted):
            return old
        if (
            wanted is None
            and old.one_off
            and old.clocked is not None
            and old.clocked.clocked_time <= timezone.now()
            and campaign.deleted_at is None
            and campaign.status not in (CampaignStatus.CANCELLED, CampaignStatus.DRAFT)
        ):
            # The one-off that launched this campaign: beat disables it itself after firing,
            # and deleting it under beat's feet could race that save; it goes with a cancel
            # or a delete. (One launched early by hand has not fired: it goes at once.)
            return old
        campaign.periodic_task = None
        Campaign.objects.filter(pk=campaign.pk).update(periodic_task=None)
        _remove(old)
    if wanted is None:
        return None
    task = _create(campaign, wanted)
    Campaign.objects.filter(pk=campaign.pk).update(periodic_task=task)
    campaign.periodic_task = task
    return task

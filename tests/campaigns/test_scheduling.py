"""Beat entries follow the campaign (created, kept, replaced, removed), and the beat tasks are
idempotent: a tick for a campaign that is not scheduled or running does nothing."""

import datetime as dt

import pytest
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, PeriodicTask

from campaigns import lifecycle
from campaigns.lifecycle_input import cron_next
from campaigns.models import Campaign, CampaignRun, CampaignStatus
from campaigns.tasks import launch_recurring_tick, launch_scheduled
from tests.campaigns.support import email_template, segment_with

pytestmark = pytest.mark.django_db


def iso(moment: dt.datetime) -> str:
    return moment.isoformat()


@pytest.fixture
def base(db):
    segment, _ = segment_with(2)
    return {
        "name": "Weekly news",
        "channels": ["email"],
        "audienceId": segment.pk,
        "templateId": email_template().pk,
    }


def test_scheduled_blast_gets_one_clocked_entry_and_cancel_removes_it(base):
    start = timezone.now() + dt.timedelta(hours=1)
    campaign = lifecycle.campaign_create(
        data={**base, "schedule": {"startAt": iso(start)}, "status": "scheduled"}
    )

    task = PeriodicTask.objects.get()
    assert campaign.periodic_task_id == task.pk
    assert task.name == f"campaign-{campaign.pk}-launch"
    assert task.clocked.clocked_time == start

    lifecycle.campaign_cancel(campaign=campaign)

    assert not PeriodicTask.objects.exists()
    assert not ClockedSchedule.objects.exists()
    assert Campaign.objects.get(pk=campaign.pk).periodic_task_id is None


def test_rescheduling_replaces_the_entry(base):
    campaign = lifecycle.campaign_create(
        data={
            **base,
            "schedule": {"startAt": iso(timezone.now() + dt.timedelta(hours=1))},
            "status": "scheduled",
        }
    )
    first = PeriodicTask.objects.get()
    later = timezone.now() + dt.timedelta(days=2)

    lifecycle.campaign_update(campaign=campaign, data={"schedule": {"startAt": iso(later)}})

    task = PeriodicTask.objects.get()
    assert task.pk != first.pk
    assert task.clocked.clocked_time == later
    assert ClockedSchedule.objects.count() == 1


def test_recurring_entry_is_a_crontab_in_the_campaign_time_zone_and_is_kept_across_ticks(base):
    campaign = lifecycle.campaign_create(
        data={
            **base,
            "type": "recurring",
            "recurring": {"cron": "30 8 * * 1-5"},
            "schedule": {"timezone": "Asia/Tokyo"},
            "status": "running",
        }
    )
    task = PeriodicTask.objects.get()
    assert task.task == "campaigns.launch_recurring_tick"
    assert str(task.crontab.timezone) == "Asia/Tokyo"
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == (
        "30",
        "8",
        "1-5",
    )

    first = launch_recurring_tick(campaign.pk)
    second = launch_recurring_tick(campaign.pk)

    runs = list(CampaignRun.objects.order_by("number").values_list("pk", "number", "reach"))
    assert runs == [(first, 1, 2), (second, 2, 2)]
    # The entry was kept, not re-created (beat remembers its last tick on the row).
    assert PeriodicTask.objects.get().pk == task.pk


def test_recurring_with_a_future_start_is_scheduled_and_its_first_tick_makes_it_running(base):
    start = timezone.now() + dt.timedelta(days=1)
    campaign = lifecycle.campaign_create(
        data={
            **base,
            "recurring": {"cron": "0 9 * * *"},
            "schedule": {"startAt": iso(start)},
            "status": "running",
        }
    )
    assert campaign.type == "recurring"
    assert campaign.status == CampaignStatus.SCHEDULED
    assert PeriodicTask.objects.get().start_time == start

    # A tick before startAt (beat honours start_time, but be safe) does nothing.
    assert launch_recurring_tick(campaign.pk) is None
    Campaign.objects.filter(pk=campaign.pk).update(start_at=timezone.now() - dt.timedelta(1))

    assert launch_recurring_tick(campaign.pk) is not None
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.RUNNING


@pytest.mark.parametrize("status", ["draft", "paused", "completed", "cancelled"])
def test_ticks_and_launches_of_inactive_campaigns_do_nothing(base, status):
    campaign = lifecycle.campaign_create(
        data={**base, "type": "recurring", "recurring": {"cron": "0 9 * * *"}}
    )
    Campaign.objects.filter(pk=campaign.pk).update(status=status)

    assert launch_recurring_tick(campaign.pk) is None
    assert launch_scheduled(campaign.pk) is None
    assert not CampaignRun.objects.exists()
    assert Campaign.objects.get(pk=campaign.pk).status == status


def test_launch_task_for_a_deleted_or_missing_campaign_does_nothing(base):
    campaign = lifecycle.campaign_create(data=base)
    lifecycle.campaign_delete(campaign=campaign)

    assert launch_scheduled(campaign.pk) is None
    assert launch_scheduled(987654) is None
    assert launch_recurring_tick(987654) is None


def test_scheduled_launch_refused_at_fire_time_fails_with_the_reason(base):
    campaign = lifecycle.campaign_create(
        data={
            **base,
            "schedule": {"startAt": iso(timezone.now() + dt.timedelta(hours=1))},
            "status": "scheduled",
        }
    )
    # A channel disconnected after scheduling (here: written straight to the row).
    Campaign.objects.filter(pk=campaign.pk).update(channels=["email", "viber"])

    assert launch_scheduled(campaign.pk) is None

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.FAILED
    assert "viber is not connected" in campaign.status_reason
    assert not CampaignRun.objects.exists()


def test_scheduled_launch_creates_the_run_and_keeps_the_spent_one_off(base):
    campaign = lifecycle.campaign_create(
        data={
            **base,
            "schedule": {"startAt": iso(timezone.now() + dt.timedelta(hours=1))},
            "status": "scheduled",
        }
    )

    # Beat fires the entry at its time.
    ClockedSchedule.objects.update(clocked_time=timezone.now() - dt.timedelta(seconds=1))
    run_id = launch_scheduled(campaign.pk)
    again = launch_scheduled(campaign.pk)

    assert CampaignRun.objects.get().pk == run_id
    assert again is None
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.RUNNING
    # Beat disables a fired one-off itself; deleting it under beat's feet would race that.
    assert PeriodicTask.objects.get().pk == campaign.periodic_task_id


def test_delete_removes_a_recurring_entry(base):
    campaign = lifecycle.campaign_create(
        data={**base, "recurring": {"cron": "0 9 * * *"}, "status": "running"}
    )
    assert PeriodicTask.objects.count() == 1

    lifecycle.campaign_delete(campaign=campaign)

    assert not PeriodicTask.objects.exists()
    campaign.refresh_from_db()
    assert campaign.deleted_at is not None
    assert campaign.status == CampaignStatus.CANCELLED


def test_pausing_a_recurring_campaign_removes_its_ticks_and_resume_restores_them(base):
    campaign = lifecycle.campaign_create(
        data={**base, "recurring": {"cron": "0 9 * * *"}, "status": "running"}
    )

    lifecycle.campaign_pause(campaign=campaign)
    assert not PeriodicTask.objects.exists()

    lifecycle.campaign_resume(campaign=campaign)
    assert PeriodicTask.objects.get().task == "campaigns.launch_recurring_tick"


def test_milestone_ticks_daily_at_send_at_in_the_campaign_time_zone(base):
    from contacts.models import CustomFieldType
    from tests.contacts.factories import CustomFieldFactory

    birthday = CustomFieldFactory(name="Birthday", type=CustomFieldType.DATE)
    lifecycle.campaign_create(
        data={
            **base,
            "type": "milestone",
            "milestone": {"fieldId": birthday.pk, "sendAt": "07:15"},
            "schedule": {"timezone": "Europe/Berlin"},
            "status": "running",
        }
    )

    crontab = PeriodicTask.objects.get().crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_week) == ("15", "7", "*")
    assert str(crontab.timezone) == "Europe/Berlin"


def test_cron_next_follows_the_time_zone_across_a_dst_change():
    after = dt.datetime(2026, 3, 27, 12, 0, tzinfo=dt.UTC)

    runs = cron_next("0 9 * * *", "Europe/Berlin", count=3, after=after)

    # Europe/Berlin moves to summer time on 29 March 2026: 09:00 local is 08:00Z on the 28th,
    # then 07:00Z.
    assert [run.astimezone(dt.UTC).isoformat() for run in runs] == [
        "2026-03-28T08:00:00+00:00",
        "2026-03-29T07:00:00+00:00",
        "2026-03-30T07:00:00+00:00",
    ]


def test_cron_next_finds_a_leap_day():
    after = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    (run,) = cron_next("0 0 29 2 *", "UTC", count=1, after=after)

    assert run.date() == dt.date(2028, 2, 29)


def test_launching_a_scheduled_campaign_early_removes_its_unfired_entry(base):
    campaign = lifecycle.campaign_create(
        data={
            **base,
            "schedule": {"startAt": iso(timezone.now() + dt.timedelta(hours=1))},
            "status": "scheduled",
        }
    )

    lifecycle.campaign_launch_now(campaign=campaign)

    assert not PeriodicTask.objects.exists()
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.RUNNING


def test_a_running_recurring_campaign_that_lost_a_channel_pauses_at_its_tick(base):
    campaign = lifecycle.campaign_create(
        data={**base, "recurring": {"cron": "0 9 * * *"}, "status": "running"}
    )
    Campaign.objects.filter(pk=campaign.pk).update(channels=["email", "telegram"])

    assert launch_recurring_tick(campaign.pk) is None

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED
    assert "telegram is not connected" in campaign.status_reason
    assert not PeriodicTask.objects.exists()

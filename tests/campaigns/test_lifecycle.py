"""The lifecycle services: the transition table, runs created once, endAt, and the calls the
sending pipeline makes (run_complete, run_pause)."""

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from campaigns import lifecycle
from campaigns.models import (
    Campaign,
    CampaignRun,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    RunStatus,
)
from campaigns.tasks import end_due
from config.core.api_errors import api_exception_handler
from tests.campaigns.support import email_template, segment_with


@pytest.fixture
def data(db):
    segment, _ = segment_with(4)
    return {
        "name": "Spring",
        "channels": ["email"],
        "audienceId": segment.pk,
        "templateId": email_template().pk,
    }


def test_every_status_has_a_row_in_the_table_and_final_ones_allow_nothing():
    assert set(lifecycle.TRANSITIONS) == set(CampaignStatus.values)
    for final in ("completed", "cancelled", "failed"):
        assert lifecycle.TRANSITIONS[final] == frozenset()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        (current, wanted)
        for current in CampaignStatus.values
        for wanted in CampaignStatus.values
        if wanted not in lifecycle.TRANSITIONS[current]
    ],
)
def test_set_status_refuses_every_move_outside_the_table(data, current, wanted):
    campaign = lifecycle.campaign_create(data=data)
    Campaign.objects.filter(pk=campaign.pk).update(status=current)

    with pytest.raises(lifecycle.IllegalTransition) as refused:
        lifecycle.campaign_set_status(campaign=campaign, status=wanted)

    assert refused.value.allowed == sorted(lifecycle.TRANSITIONS[current])
    assert Campaign.objects.get(pk=campaign.pk).status == current


@pytest.mark.django_db
def test_run_complete_completes_a_blast(data):
    campaign = lifecycle.campaign_create(data={**data, "status": "running"})
    run = CampaignRun.objects.get()

    lifecycle.run_complete(run=run)

    run.refresh_from_db()
    campaign.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and run.finished_at is not None
    assert campaign.status == CampaignStatus.COMPLETED
    # Twice is harmless.
    lifecycle.run_complete(run=run)


@pytest.mark.django_db
def test_run_complete_keeps_a_recurring_campaign_running(data):
    campaign = lifecycle.campaign_create(
        data={**data, "recurring": {"cron": "0 9 * * *"}, "status": "running"}
    )
    run = lifecycle.campaign_tick(campaign_id=campaign.pk)

    lifecycle.run_complete(run=run)

    assert CampaignRun.objects.get().status == RunStatus.COMPLETED
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.RUNNING


@pytest.mark.django_db
def test_run_pause_pauses_the_campaign_with_the_reason(data):
    campaign = lifecycle.campaign_create(data={**data, "status": "running"})
    run = CampaignRun.objects.get()

    lifecycle.run_pause(run=run, reason="62% of 120 sends failed")

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED
    assert campaign.status_reason == "62% of 120 sends failed"
    assert CampaignRun.objects.get().status == RunStatus.PAUSED


@pytest.mark.django_db
def test_end_at_ends_a_running_campaign_and_skips_what_was_not_sent(data):
    campaign = lifecycle.campaign_create(
        data={
            **data,
            "schedule": {"endAt": (timezone.now() + dt.timedelta(hours=1)).isoformat()},
            "status": "running",
        }
    )
    sent = Delivery.objects.order_by("pk").first()
    Delivery.objects.filter(pk=sent.pk).update(status=DeliveryStatus.SENT)
    Campaign.objects.filter(pk=campaign.pk).update(end_at=timezone.now() - dt.timedelta(1))

    assert end_due() == 1

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.COMPLETED
    assert campaign.status_reason == "endAt reached"
    assert CampaignRun.objects.get().status == RunStatus.COMPLETED
    statuses = sorted(Delivery.objects.values_list("status", flat=True))
    assert statuses == ["sent", "skipped", "skipped", "skipped"]
    assert end_due() == 0


@pytest.mark.django_db
def test_end_at_ends_a_recurring_campaign_and_removes_its_ticks(data):
    from django_celery_beat.models import PeriodicTask

    campaign = lifecycle.campaign_create(
        data={**data, "recurring": {"cron": "*/5 * * * *"}, "status": "running"}
    )
    Campaign.objects.filter(pk=campaign.pk).update(end_at=timezone.now() - dt.timedelta(1))

    assert lifecycle.campaign_tick(campaign_id=campaign.pk) is None

    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.COMPLETED
    assert not PeriodicTask.objects.exists()
    assert not CampaignRun.objects.exists()


@pytest.mark.django_db
def test_a_claimed_row_in_flight_is_not_skipped_by_cancel(data):
    campaign = lifecycle.campaign_create(data={**data, "status": "running"})
    claimed = Delivery.objects.order_by("pk").first()
    Delivery.objects.filter(pk=claimed.pk).update(claimed_at=timezone.now())

    lifecycle.campaign_cancel(campaign=campaign)

    claimed.refresh_from_db()
    assert claimed.status == DeliveryStatus.QUEUED
    assert Delivery.objects.filter(status=DeliveryStatus.SKIPPED).count() == 3


@pytest.mark.django_db
def test_update_keeps_a_past_start_that_did_not_change(data):
    campaign = lifecycle.campaign_create(data=data)
    past = timezone.now() - dt.timedelta(days=1)
    Campaign.objects.filter(pk=campaign.pk).update(start_at=past)

    lifecycle.campaign_update(
        campaign=campaign, data={"name": "Renamed", "schedule": {"startAt": past.isoformat()}}
    )

    assert Campaign.objects.get(pk=campaign.pk).name == "Renamed"


@pytest.mark.django_db
def test_editing_a_deleted_campaign_is_a_409_through_the_api_error_handler(data):
    # CampaignLocked once kept the campaign's status in `status`, the attribute that holds
    # the HTTP status of every HeraldError: the one error handler then failed (a 500).
    campaign = lifecycle.campaign_create(data=data)
    lifecycle.campaign_delete(campaign=campaign)

    with pytest.raises(lifecycle.CampaignLocked) as caught:
        lifecycle.campaign_update(campaign=campaign, data={"name": "Renamed"})

    assert caught.value.campaign_status == "deleted"
    response = api_exception_handler(caught.value, {})
    assert response.status_code == 409
    assert "a deleted campaign cannot be edited" in response.data["detail"]


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_launches_create_one_run(data):
    campaign = lifecycle.campaign_create(data=data)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def launch() -> None:
        barrier.wait()
        try:
            lifecycle.campaign_launch_now(campaign=Campaign.objects.get(pk=campaign.pk))
            outcomes.append("launched")
        except lifecycle.IllegalTransition:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=launch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["launched", "refused"]
    assert CampaignRun.objects.count() == 1
    assert Delivery.objects.count() == 4
    _purge_queue()


def _purge_queue() -> None:
    # The launch enqueued sender tasks on commit; nobody consumes this test's queue, so drop
    # them rather than hand them to a later worker test.
    from config.celery import app

    with app.connection_for_write() as conn:
        app.amqp.queues[app.conf.task_default_queue].bind(conn.default_channel).purge()


@pytest.mark.django_db
def test_status_changes_are_in_the_audit_log(data):
    from auditlog.models import LogEntry

    campaign = lifecycle.campaign_create(data=data)
    lifecycle.campaign_cancel(campaign=campaign)

    changes = [
        entry.changes_dict.get("status")
        for entry in LogEntry.objects.get_for_object(campaign).order_by("timestamp")
    ]
    assert ["draft", "cancelled"] in changes


@pytest.mark.django_db
def test_time_zone_defaults_to_the_organisation_s(data):
    from config.core.models import Organisation

    Organisation.objects.update_or_create(pk=1, defaults={"time_zone": "Europe/Lisbon"})

    campaign = lifecycle.campaign_create(data={**data, "recurring": {"cron": "0 9 * * *"}})

    assert campaign.timezone == "Europe/Lisbon"

"""Real `celery beat` + a real worker + a real SMTP server: a campaign scheduled a few seconds
ahead through the API goes scheduled → running → completed by itself, and every recipient
gets the message exactly once."""

import datetime as dt
from collections import Counter

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignRun, RunStatus
from tests.campaigns.support import CAMPAIGNS, CeleryBeat, email_template, segment_with
from tests.conftest import wait_for
from tests.support.smtp import SMTPSink
from tests.support.worker import CeleryWorker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

RECIPIENTS = 40


def test_a_campaign_scheduled_seconds_ahead_runs_and_completes_by_itself(api, full_key):
    segment, contacts = segment_with(RECIPIENTS)
    template = email_template()
    with SMTPSink() as sink, CeleryWorker(env={"EMAIL_URL": sink.url}), CeleryBeat() as beat:
        start = timezone.now() + dt.timedelta(seconds=5)
        response = api.post(
            CAMPAIGNS,
            key=full_key,
            body={
                "name": "Five seconds",
                "type": "blast",
                "channels": ["email"],
                "audienceId": segment.pk,
                "templateId": template.pk,
                "schedule": {"startAt": start.isoformat(), "timezone": "Europe/Paris"},
                "status": "running",
            },
        )
        assert response.status_code == 201, response.json()
        assert response.json()["status"] == "scheduled"
        campaign_id = response.json()["id"]
        assert not CampaignRun.objects.exists()

        try:
            running = wait_for(
                lambda: (
                    Campaign.objects.filter(pk=campaign_id, status="running").first()
                    or Campaign.objects.filter(pk=campaign_id, status="completed").first()
                ),
                timeout=60,
            )
        except AssertionError:
            raise AssertionError(f"beat did not launch the campaign:\n{beat.output()}") from None
        assert timezone.now() >= start
        assert running.status in ("running", "completed")

        wait_for(lambda: len(sink.received) >= RECIPIENTS, timeout=90)
        campaign = wait_for(
            lambda: Campaign.objects.filter(pk=campaign_id, status="completed").first(),
            timeout=60,
        )

    run = CampaignRun.objects.get(campaign=campaign)
    assert run.number == 1 and run.status == RunStatus.COMPLETED
    assert run.reach == RECIPIENTS
    counts = Counter(message["To"] for message in sink.messages)
    assert counts == Counter({contact.email: 1 for contact in contacts})
    detail = api.get(f"{CAMPAIGNS}/{campaign_id}", key=full_key).json()
    assert detail["status"] == "completed"
    assert detail["reach"] == RECIPIENTS
    assert detail["nextRuns"] == []


def test_a_recurring_campaign_ticks_from_beat_in_its_own_time_zone(api, full_key):
    segment, contacts = segment_with(5)
    template = email_template()
    with SMTPSink() as sink, CeleryWorker(env={"EMAIL_URL": sink.url}), CeleryBeat() as beat:
        response = api.post(
            CAMPAIGNS,
            key=full_key,
            body={
                "name": "Every minute",
                "type": "recurring",
                "channels": ["email"],
                "audienceId": segment.pk,
                "templateId": template.pk,
                # A +05:45 zone: a crontab read in the wrong zone would still tick every
                # minute, but the entry must carry the zone beat evaluates it in.
                "schedule": {"timezone": "Asia/Kathmandu"},
                "recurring": {"cron": "* * * * *"},
                "status": "running",
            },
        )
        assert response.status_code == 201, response.json()
        assert response.json()["status"] == "running"
        campaign_id = response.json()["id"]

        try:
            run = wait_for(
                lambda: CampaignRun.objects.filter(
                    campaign_id=campaign_id, status=RunStatus.COMPLETED
                ).first(),
                timeout=100,
            )
        except AssertionError:
            raise AssertionError(f"no tick ran:\n{beat.output()}") from None
        wait_for(lambda: len(sink.received) >= 5, timeout=30)

    assert run.number == 1 and run.reach == 5
    # The campaign keeps running between ticks.
    assert Campaign.objects.get(pk=campaign_id).status == "running"
    assert Counter(m["To"] for m in sink.messages[:5]) == Counter({c.email: 1 for c in contacts})

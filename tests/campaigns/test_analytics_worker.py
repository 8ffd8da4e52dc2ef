"""The beat entry's task runs on a real worker: registered under its explicit name and
refreshing the rollup of a running run."""

import pytest
from django.conf import settings
from django.utils import timezone

from campaigns.models import RunStats
from campaigns.tasks import stats_refresh_task
from tests.campaigns.test_analytics import make_campaign, make_delivery, make_run
from tests.conftest import wait_for

pytestmark = pytest.mark.worker


def test_beat_schedule_names_the_registered_task():
    assert (
        settings.CELERY_BEAT_SCHEDULE["campaigns-stats-refresh"]["task"] == stats_refresh_task.name
    )
    assert stats_refresh_task.name == "campaigns.stats_refresh"
    assert 30 <= settings.CELERY_BEAT_SCHEDULE["campaigns-stats-refresh"]["schedule"] <= 60


def test_real_worker_refreshes_a_running_run(celery_worker):
    run = make_run(make_campaign())
    # No queued rows: a sender task left on the test queue by another test must find nothing.
    make_delivery(run, 1, status="sent", sent_at=timezone.now())
    make_delivery(run, 2, status="failed")

    stats_refresh_task.delay()

    stats = wait_for(lambda: RunStats.objects.filter(run=run, channel="email").first(), timeout=30)
    assert (stats.recipients, stats.sends, stats.failures) == (2, 1, 1)

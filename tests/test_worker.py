import pytest

from config.core.models import Heartbeat
from config.core.tasks import heartbeat
from tests.conftest import wait_for

pytestmark = pytest.mark.worker


def test_real_worker_runs_the_heartbeat_task(celery_worker):
    heartbeat.delay()

    beat = wait_for(lambda: Heartbeat.objects.filter(name="worker").first(), timeout=30)
    assert beat.seen_at is not None

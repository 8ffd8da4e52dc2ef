"""More than one `celery beat` (two machines each started one) sends each entry once: only
the holder of the PostgreSQL advisory lock ticks (config.core.beat), and a waiting beat takes
over when the leader dies."""

import time
import uuid

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from config.celery import app
from tests.campaigns.support import CeleryBeat
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

LEADING = "beat is the leader now"


def queued(queue: str) -> int:
    """Messages waiting in `queue` (nobody consumes it): what the beats sent."""
    with app.connection_for_write() as connection:
        return connection.default_channel.queue_declare(queue=queue, durable=True).message_count


@pytest.fixture
def every_second():
    """A 1-second entry whose messages go to a queue of its own, where they are counted."""
    queue = f"scale-beat-{uuid.uuid4().hex[:8]}"
    PeriodicTask.objects.create(
        name="every second",
        task="core.heartbeat",
        queue=queue,
        interval=IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS),
    )
    queued(queue)  # declared before the beats send to it
    yield queue
    with app.connection_for_write() as connection:
        connection.default_channel.queue_delete(queue)


def sends_over(queue: str, seconds: float) -> tuple[int, float]:
    """(messages sent, seconds elapsed) over about `seconds`."""
    before, began = queued(queue), time.monotonic()
    time.sleep(seconds)
    return queued(queue) - before, time.monotonic() - began


def test_two_beats_send_a_one_second_entry_once_a_second_and_the_survivor_takes_over(
    every_second,
):
    with CeleryBeat() as first, CeleryBeat() as second:
        leader = wait_for(
            lambda: next((b for b in (first, second) if LEADING in b.output()), None),
            timeout=30,
        )
        follower = second if leader is first else first
        wait_for(lambda: queued(every_second) >= 2, timeout=30)
        sent, elapsed = sends_over(every_second, 6)
        # One beat: about one a second; two ticking would send about two.
        assert sent <= elapsed + 1.5, f"{sent} sends in {elapsed:.1f}s: doubled"
        assert sent >= elapsed - 2.5, f"{sent} sends in {elapsed:.1f}s: the leader stalls"
        assert LEADING not in follower.output()

        leader.process.kill()  # SIGKILL: no goodbye, PostgreSQL ends its session
        leader.process.wait()
        wait_for(lambda: LEADING in follower.output(), timeout=20)
        sent, elapsed = sends_over(every_second, 6)
        assert elapsed - 2.5 <= sent <= elapsed + 1.5, f"{sent} sends in {elapsed:.1f}s"

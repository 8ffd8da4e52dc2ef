"""The sending pipeline with real Celery workers and a real SMTP server: launch to completion,
pause and resume, retries, and a worker killed with SIGKILL mid-send."""

import datetime as dt
import os
import signal
import time
from collections import Counter

import psutil
import pytest

from campaigns import lifecycle, pipeline
from campaigns.models import CampaignRun, Delivery, DeliveryStatus, RunStatus
from tests.campaigns.test_pipeline import make_campaign, vip
from tests.conftest import wait_for
from tests.support.smtp import SMTPSink
from tests.support.worker import CeleryWorker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sink():
    with SMTPSink() as server:
        yield server


def worker_env(sink: SMTPSink, **extra) -> dict[str, str]:
    return {"EMAIL_URL": sink.url, "HERALD_RETRY_BASE": "1", **extra}


def launch(n: int, **campaign) -> tuple[list, CampaignRun]:
    people = vip(n)
    run = lifecycle.campaign_launch_now(campaign=make_campaign(status="draft", **campaign))
    return people, run


def assert_message_ids_match_the_ledger(messages: list, run: CampaignRun) -> None:
    ledger = dict(Delivery.objects.filter(run=run).values_list("locator", "message_id"))
    assert messages
    for message in messages:
        assert message["Message-ID"] == ledger[message["To"]]


def test_launch_sends_every_recipient_exactly_once_and_completes(sink):
    with CeleryWorker(env=worker_env(sink)):
        people, run = launch(450)
        wait_for(lambda: len(sink.received) >= 450, timeout=90)
        run = wait_for(
            lambda: CampaignRun.objects.filter(pk=run.pk, status=RunStatus.COMPLETED).first(),
            timeout=30,
        )
    messages = sink.messages
    assert Counter(m["To"] for m in messages) == Counter({p.email: 1 for p in people})
    assert_message_ids_match_the_ledger(messages, run)
    assert run.campaign.status == "completed"
    assert not Delivery.objects.filter(run=run).exclude(status=DeliveryStatus.SENT).exists()


def test_pause_stops_sending_within_seconds_and_resume_continues(sink):
    # 60 messages/s over the run's senders: slow enough to pause in the middle.
    env = worker_env(sink, HERALD_RATE_LIMIT_EMAIL="60")
    with CeleryWorker(env=env):
        people, run = launch(300)
        wait_for(lambda: len(sink.received) >= 40, timeout=60)
        lifecycle.campaign_pause(campaign=run.campaign)
        time.sleep(3)  # a chunk already handed to the SMTP server may still finish
        at_pause = len(sink.received)
        time.sleep(3)
        assert len(sink.received) == at_pause < 300
        assert not Delivery.objects.filter(run=run, claimed_at__isnull=False).exists()

        lifecycle.campaign_resume(campaign=run.campaign)
        wait_for(lambda: len(sink.received) >= 300, timeout=60)
        wait_for(lambda: CampaignRun.objects.get(pk=run.pk).status == RunStatus.COMPLETED)
    assert Counter(m["To"] for m in sink.messages) == Counter({p.email: 1 for p in people})


def test_transient_refusal_is_retried_by_the_worker_and_permanent_one_fails(sink):
    with CeleryWorker(env=worker_env(sink)):
        people = vip(20)
        busy, gone = people[3], people[7]
        sink.refuse(busy.email, "451 4.7.1 Greylisted, try again later", once=True)
        sink.refuse(gone.email, "550 5.1.1 No such user")
        run = lifecycle.campaign_launch_now(campaign=make_campaign(status="draft"))
        run = wait_for(
            lambda: CampaignRun.objects.filter(pk=run.pk, status=RunStatus.COMPLETED).first(),
            timeout=60,
        )
    assert sorted(m["To"] for m in sink.messages) == sorted(
        p.email for p in people if p is not gone
    )
    retried = Delivery.objects.get(run=run, locator=busy.email)
    assert (retried.status, retried.attempts) == (DeliveryStatus.SENT, 2)
    assert retried.events.filter(detail__contains="451").exists()
    failed = Delivery.objects.get(run=run, locator=gone.email)
    assert failed.status == DeliveryStatus.FAILED and "550" in failed.error


def kill_worker(worker: CeleryWorker) -> None:
    """SIGKILL the worker's main process and its pool children at once, as an OOM kill or
    a lost machine would: nothing gets to clean up or acknowledge."""
    main = psutil.Process(worker.process.pid)
    for process in [*main.children(recursive=True), main]:
        os.kill(process.pid, signal.SIGKILL)
    worker.process.wait()


def test_worker_killed_mid_send_loses_nobody_and_doubles_only_messages_in_flight(sink):
    people = vip(600)
    dead = CeleryWorker(env=worker_env(sink))
    with dead:
        run = lifecycle.campaign_launch_now(campaign=make_campaign(status="draft"))
        wait_for(lambda: len(sink.received) >= 150, timeout=60)
        kill_worker(dead)
    sent_before_kill = len(sink.received)
    assert sent_before_kill < 600, "the kill came too late to test anything"
    held = Delivery.objects.filter(run=run, status="queued", claimed_at__isnull=False).count()

    # No worker is alive now, so recovery may take back every claim and start senders at
    # once (the beat task waits for the claim timeout and a minute without progress).
    result = pipeline.runs_recover(older_than=dt.timedelta(0), stall=dt.timedelta(0))
    assert result["reclaimed"] == held
    assert result["enqueued"] == 1
    with CeleryWorker(env=worker_env(sink)):
        run = wait_for(
            lambda: CampaignRun.objects.filter(pk=run.pk, status=RunStatus.COMPLETED).first(),
            timeout=90,
        )

    messages = sink.messages
    counts = Counter(m["To"] for m in messages)
    assert set(counts) == {p.email for p in people}  # nobody lost
    doubled = [address for address, n in counts.items() if n > 1]
    print(f"killed after {sent_before_kill} sent, {held} claimed; {len(doubled)} sent twice")
    assert all(counts[address] == 2 for address in doubled)
    # Only messages in flight at the kill: unrecorded chunks of the two pool processes.
    assert len(doubled) <= 2 * pipeline.RECORD_EVERY
    # Copies carry one Message-ID, the ledger's, so receivers can drop them.
    assert_message_ids_match_the_ledger(messages, run)
    for address in doubled:
        assert len({m["Message-ID"] for m in messages if m["To"] == address}) == 1
    assert Delivery.objects.filter(run=run, status=DeliveryStatus.SENT).count() == 600

"""Three worker machines on RabbitMQ send one campaign; one is SIGKILLed mid-send. Every
recipient gets the campaign, and every copy a recipient got carries the one Message-ID the
ledger holds for them (what receivers deduplicate on): exactly once, as they see it.

HERALD_SCALE_RECIPIENTS sets the size (the normal run: 10,000; the full run: 100,000)."""

import logging
import os
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from email.parser import BytesHeaderParser

import pytest
from django.conf import settings

from campaigns.models import CampaignRun, Delivery, DeliveryStatus, RunStatus
from tests.campaigns.test_pipeline import make_campaign, make_template
from tests.conftest import wait_for
from tests.scale.machines import WorkerMachine, machines_ready
from tests.scale.rabbitmq import queue_delete, rabbitmq_url
from tests.support.smtp import SMTPSink

HEADERS = BytesHeaderParser()  # compat32: plain strings, no header objects to build
pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

RECIPIENTS = int(os.environ.get("HERALD_SCALE_RECIPIENTS", "10000"))
# Claims of the dead machine go back to the queue after this many seconds without progress.
LEASE = 10


def contacts_insert(count: int) -> None:
    """`count` confirmed vip contacts in one statement (factories would take minutes)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO contacts_contact (
                first_name, last_name, email, phone, extra_channels, region, town, address,
                postcode, language_code, time_zone, tags, fields, confirmed, source,
                created_at, updated_at)
            SELECT 'Person' || i, 'Scale', 'person' || i || '@example.com', '', '[]', '', '',
                   '', '', 'en', '', ARRAY['vip'], '{}', true, 'api', now(), now()
              FROM generate_series(1, %s) AS i
            """,
            [count],
        )


def control(*arguments: str, env: dict[str, str], timeout: float) -> str:
    """Run tests.scale.control as its own machine on the RabbitMQ broker."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.scale.control", *arguments],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture
def quiet_sink():
    """aiosmtpd logs every SMTP command at INFO: at thousands of messages a second, the
    logging would be the bottleneck of the test process."""
    logger = logging.getLogger("mail.log")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


@pytest.fixture
def amqp():
    url = rabbitmq_url()
    if url is None:
        pytest.skip("no RabbitMQ on 127.0.0.1:5672 (or set HERALD_TEST_AMQP_URL)")
    queue = f"herald-scale-{uuid.uuid4().hex[:8]}"
    yield url, queue
    queue_delete(url, queue)


def test_three_machines_send_a_campaign_exactly_once_while_one_is_killed(amqp, quiet_sink):
    broker, queue = amqp
    contacts_insert(RECIPIENTS)
    campaign = make_campaign(status="draft", template=make_template())
    with SMTPSink() as sink:
        machine_env = {"EMAIL_URL": sink.url, "HERALD_RETRY_BASE": "1"}
        machines = [
            WorkerMachine(host, broker_url=broker, queue=queue, env=machine_env)
            for host in ("alpha", "bravo", "charlie")
        ]
        control_env = {**machines[0].environment(), "HOSTNAME": "web"}
        with machines[0], machines[1], machines[2]:
            machines_ready(*machines)
            began = time.monotonic()
            run_id = int(control("launch", str(campaign.pk), env=control_env, timeout=120))
            wait_for(lambda: len(sink.received) >= RECIPIENTS // 5, timeout=300, interval=0.2)
            machines[1].kill()
            killed_at = len(sink.received)
            assert killed_at < RECIPIENTS, "the kill came too late to test anything"
            killed = time.monotonic()
            control("recover", str(run_id), str(LEASE), env=control_env, timeout=900)
            done = time.monotonic()
            logs = {machine.host: machine.output() for machine in machines}

    run = CampaignRun.objects.get(pk=run_id)
    assert run.status == RunStatus.COMPLETED
    ledger = dict(Delivery.objects.filter(run=run).values_list("locator", "message_id"))
    assert len(ledger) == RECIPIENTS
    assert Delivery.objects.filter(run=run, status=DeliveryStatus.SENT).count() == RECIPIENTS
    message_ids = defaultdict(set)
    copies = defaultdict(int)
    for received in sink.received:
        message = HEADERS.parsebytes(received.raw)  # the headers are all this needs
        message_ids[message["To"]].add(message["Message-ID"])
        copies[message["To"]] += 1
    assert set(message_ids) == set(ledger), "nobody lost, nobody unknown"
    assert all(ids == {ledger[address]} for address, ids in message_ids.items()), (
        "each recipient's copies carry the ledger's one Message-ID"
    )
    doubled = sum(1 for n in copies.values() if n > 1)
    print(
        f"{RECIPIENTS} sent by 3 machines in {done - began:.0f}s; one killed after {killed_at} "
        f"({killed - began:.0f}s); {doubled} recipients got a second copy"
    )
    for host in ("alpha", "charlie"):
        assert "campaigns.run_send" in logs[host], f"worker@{host} took part"

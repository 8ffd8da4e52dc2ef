"""Send rules with a real Celery worker and a real SMTP server: a launched campaign whose
capped recipients end skipped with the reason while the rest arrive, and the run completes."""

import datetime as dt
from collections import Counter

import pytest
from django.utils import timezone

from campaigns import lifecycle
from campaigns.models import CampaignRun, Delivery, DeliveryStatus, FrequencyCap, RunStatus
from contacts.models import ChannelType
from tests.campaigns.test_pipeline import make_campaign, make_run, vip
from tests.campaigns.test_pipeline_worker import worker_env
from tests.conftest import wait_for
from tests.support.smtp import SMTPSink
from tests.support.worker import CeleryWorker

pytestmark = pytest.mark.django_db(transaction=True)


def test_worker_skips_capped_recipients_with_the_reason_and_delivers_the_rest():
    FrequencyCap.objects.create(channel=ChannelType.EMAIL, limit=2, period_days=7)
    people = vip(40)
    capped = people[:15]
    earlier = make_run(make_campaign(name="Earlier", status="completed"))
    Delivery.objects.bulk_create(
        Delivery(
            run=earlier,
            step=step,
            contact=person,
            channel=ChannelType.EMAIL,
            locator=person.email,
            status=DeliveryStatus.SENT,
            sent_at=timezone.now() - dt.timedelta(days=step + 1),
        )
        for person in capped
        for step in (0, 1)
    )
    with SMTPSink() as sink, CeleryWorker(env=worker_env(sink)):
        run = lifecycle.campaign_launch_now(campaign=make_campaign(status="draft"))
        run = wait_for(
            lambda: CampaignRun.objects.filter(pk=run.pk, status=RunStatus.COMPLETED).first(),
            timeout=90,
        )
        received = Counter(m["To"] for m in sink.messages)

    assert received == Counter({person.email: 1 for person in people[15:]})
    skipped = Delivery.objects.filter(run=run, status=DeliveryStatus.SKIPPED)
    assert sorted(skipped.values_list("locator", flat=True)) == sorted(p.email for p in capped)
    assert set(skipped.values_list("error", flat=True)) == {"frequency cap: 2 emails in 7 days"}
    assert Delivery.objects.filter(run=run, status=DeliveryStatus.SENT).count() == 25

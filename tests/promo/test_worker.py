"""A campaign with promo codes sent by a real Celery worker into a real SMTP server: every
message carries a different code; a pool that runs out pauses the run, and resuming after an
upload sends the rest."""

import re
from collections import Counter

import pytest

from campaigns import lifecycle
from campaigns.models import Campaign, CampaignRun, RunStatus
from campaigns.promo.models import PromoCode
from campaigns.promo.services import promo_codes_add, promo_codes_generate, promo_pool_create
from contacts.models import ChannelType, Contact
from templates.services import template_create, template_publish
from tests.conftest import wait_for
from tests.contacts.factories import ContactFactory
from tests.support.smtp import SMTPSink
from tests.support.worker import CeleryWorker

pytestmark = pytest.mark.django_db(transaction=True)
CODE = re.compile(r"Your code: (\S+?)\.")


def launch(n: int) -> tuple[list[Contact], CampaignRun]:
    people = Contact.objects.bulk_create(ContactFactory.build_batch(n, tags=["vip"]))
    template = template_create(
        name="Spring codes",
        subject="A code for you",
        from_email="news@shop.example",
        html="<p>Your code: $!promo.SPRING.</p>",
    )
    template_publish(template=template)
    campaign = Campaign.objects.create(
        name="Spring codes",
        channels=[ChannelType.EMAIL],
        template=template,
        audience_filter={"tags": {"$in": ["vip"]}},
    )
    return people, lifecycle.campaign_launch_now(campaign=campaign)


def codes(messages) -> dict[str, str]:
    return {m["To"]: CODE.search(m.get_body(("html",)).get_content()).group(1) for m in messages}


def test_worker_sends_each_recipient_a_different_code_and_pauses_when_the_pool_runs_out():
    pool = promo_pool_create(name="Spring", key="SPRING")
    promo_codes_generate(pool=pool, count=150, prefix="SPR-", length=8)
    with SMTPSink() as sink, CeleryWorker(env={"EMAIL_URL": sink.url}):
        people, run = launch(200)
        run = wait_for(
            lambda: CampaignRun.objects.filter(pk=run.pk, status=RunStatus.PAUSED).first(),
            timeout=90,
        )
        assert run.status_reason == "promo pool SPRING has no free codes left (150 sent)"
        # Rows of a batch stopped by the pause keep their codes and go out after resuming.
        assert len(sink.received) <= 150
        assert PromoCode.objects.filter(pool=pool, assigned_at__isnull=True).count() == 0

        promo_codes_add(pool=pool, lines=[(n, f"LATE-{n}") for n in range(1, 51)])
        lifecycle.campaign_resume(campaign=run.campaign)
        wait_for(lambda: len(sink.received) >= 200, timeout=60)
        wait_for(
            lambda: CampaignRun.objects.get(pk=run.pk).status == RunStatus.COMPLETED, timeout=60
        )

        messages = sink.messages
    assert Counter(m["To"] for m in messages) == Counter({p.email: 1 for p in people})
    shown = codes(messages)
    assert len(set(shown.values())) == 200
    recorded = dict(
        PromoCode.objects.filter(pool=pool, delivery__isnull=False).values_list(
            "delivery__locator", "code"
        )
    )
    assert recorded == shown

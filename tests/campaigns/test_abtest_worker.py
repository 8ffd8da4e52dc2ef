"""An A/B campaign through a real Celery worker into a real SMTP server: each variant's
subject and sender name reach its share of the test, and once the winner is chosen the rest
of the audience gets the winner's, each recipient once."""

from collections import Counter
from email.utils import parseaddr

import pytest

from campaigns import abtest, lifecycle
from campaigns.models import ABTest, CampaignRun, Delivery, RunStatus
from tests.campaigns.test_pipeline import make_campaign, vip
from tests.conftest import wait_for
from tests.support.smtp import SMTPSink
from tests.support.worker import CeleryWorker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_each_variant_arrives_then_the_winner_goes_to_the_rest_once():
    people = vip(60)
    campaign = make_campaign(status="draft")
    abtest.ab_test_set(
        campaign=campaign,
        config=abtest.ab_test_clean(
            {
                "variants": [
                    {"subject": "Spring A"},
                    {"subject": "Spring B", "fromName": "Team B"},
                ],
                "testPercent": 50,
                "winnerSelection": "manual",
            },
            channel="email",
        ),
    )
    with SMTPSink() as sink, CeleryWorker(env={"EMAIL_URL": sink.url}):
        run = lifecycle.campaign_launch_now(campaign=campaign)
        wait_for(lambda: len(sink.received) >= 30, timeout=90)
        test_share = {
            m["To"]: (str(m["Subject"]), parseaddr(str(m["From"]))[0]) for m in sink.messages
        }
        variant_of = dict(Delivery.objects.filter(run=run).values_list("locator", "ab_variant"))
        assert Counter(subject for subject, _ in test_share.values()) == {
            "Spring A": 15,
            "Spring B": 15,
        }
        for address, (subject, name) in test_share.items():
            assert subject == ("Spring A", "Spring B")[variant_of[address]]
            if subject == "Spring B":
                assert name == "Team B"
        # The run waits for the winner: nothing more is sent, and it does not complete.
        assert CampaignRun.objects.get(pk=run.pk).status == RunStatus.RUNNING

        abtest.ab_winner_pick(test=ABTest.objects.get(run=run), variant="B")
        wait_for(lambda: len(sink.received) >= 60, timeout=90)
        wait_for(
            lambda: CampaignRun.objects.get(pk=run.pk).status == RunStatus.COMPLETED, timeout=90
        )
    messages = sink.messages
    assert Counter(m["To"] for m in messages) == Counter({p.email: 1 for p in people})
    rest = [m for m in messages if m["To"] not in test_share]
    assert len(rest) == 30
    assert {str(m["Subject"]) for m in rest} == {"Spring B"}

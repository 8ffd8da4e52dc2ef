"""When provider feedback suppresses an address: hard bounces and complaints at once, soft
bounces once HERALD_SOFT_BOUNCE_LIMIT of them fall within HERALD_SOFT_BOUNCE_WINDOW_DAYS
(the edges: one short of the limit, the limit, a bounce just outside the window), per
channel; a lifted address is suppressed again by its next hard bounce."""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.delivery.feedback import UpdateDeliveryStatus, actions_apply
from campaigns.delivery.providers import DeliveryStatus
from campaigns.models import Delivery, DeliveryEvent
from contacts.models import Suppression
from contacts.suppression import suppression_lift, suppressions_active

pytestmark = pytest.mark.django_db

_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def limits(settings):
    settings.HERALD_SOFT_BOUNCE_LIMIT = 3
    settings.HERALD_SOFT_BOUNCE_WINDOW_DAYS = 30


def bounce(address: str, *, soft: bool = True, days_ago: float = 0, channel: str = "email"):
    """A message to `address` that the provider reports bounced, `days_ago` days ago."""
    n = next(_ids)
    delivery = Delivery.objects.create(
        channel=channel, locator=address, status="sent", provider_message_id=f"pm-{n}"
    )
    report = actions_apply(
        [
            UpdateDeliveryStatus(
                status=DeliveryStatus.SOFT_BOUNCED if soft else DeliveryStatus.BOUNCED,
                message_id=f"pm-{n}",
                event_id=f"ev-{n}",
                detail="452 4.2.2 mailbox full" if soft else "550 5.1.1 unknown",
            )
        ],
        source="Echo ESP",
    )
    if days_ago:
        DeliveryEvent.objects.filter(delivery=delivery).update(
            at=timezone.now() - timedelta(days=days_ago)
        )
    return report


def test_one_soft_bounce_short_of_the_limit_does_not_suppress():
    bounce("full@example.com")
    report = bounce("full@example.com")
    assert report.changes["soft_bounced"] == 1 and report.changes["suppressed"] == 0
    assert not suppressions_active("email", ["full@example.com"])


def test_the_soft_bounce_that_reaches_the_limit_suppresses_with_the_reason():
    bounce("full@example.com", days_ago=29)
    bounce("full@example.com", days_ago=10)
    report = bounce("full@example.com")
    assert report.changes["suppressed"] == 1
    suppression = Suppression.objects.get(address="full@example.com")
    assert suppression.reason == "soft_bounces"
    assert suppression.detail == "3 soft bounces within 30 days"
    assert suppression.source == "Echo ESP"


def test_a_soft_bounce_outside_the_window_does_not_count():
    bounce("full@example.com", days_ago=31)
    bounce("full@example.com", days_ago=5)
    report = bounce("full@example.com")
    assert report.changes["suppressed"] == 0
    assert not suppressions_active("email", ["full@example.com"])
    # One more inside the window reaches the limit.
    assert bounce("full@example.com").changes["suppressed"] == 1


def test_soft_bounces_count_per_address_and_channel():
    bounce("a@example.com")
    bounce("b@example.com")
    bounce("+4915100000001", channel="sms")
    bounce("a@example.com")
    assert not Suppression.objects.exists()


def test_the_same_soft_bounce_reported_again_is_not_counted_twice():
    bounce("full@example.com")
    delivery = Delivery.objects.create(
        channel="email", locator="full@example.com", status="sent", provider_message_id="pm-x"
    )
    action = UpdateDeliveryStatus(
        status=DeliveryStatus.SOFT_BOUNCED, message_id="pm-x", event_id="same"
    )
    for _ in range(3):
        actions_apply([action])
    assert DeliveryEvent.objects.filter(delivery=delivery, status="bounced").count() == 1
    assert not suppressions_active("email", ["full@example.com"])


def test_a_hard_bounce_and_a_complaint_suppress_at_once():
    assert bounce("dead@example.com", soft=False).changes["suppressed"] == 1
    assert Suppression.objects.get(address="dead@example.com").detail == "550 5.1.1 unknown"
    delivery = Delivery.objects.create(
        channel="email", locator="angry@example.com", status="delivered", provider_message_id="c"
    )
    actions_apply(
        [UpdateDeliveryStatus(status=DeliveryStatus.COMPLAINED, message_id="c", event_id="c1")]
    )
    assert Suppression.objects.get(address="angry@example.com").reason == "complaint"
    delivery.refresh_from_db()
    assert delivery.status == "complained"


def test_a_lifted_address_is_suppressed_again_by_its_next_hard_bounce():
    bounce("back@example.com", soft=False)
    suppression_lift(suppression=Suppression.objects.get())
    assert not suppressions_active("email", ["back@example.com"])
    bounce("back@example.com", soft=False)
    assert set(suppressions_active("email", ["back@example.com"])) == {"back@example.com"}
    assert Suppression.objects.filter(address="back@example.com").count() == 2

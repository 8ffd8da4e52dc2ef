"""Launching and scheduling ask first: the confirmation page shows the reach the launch would
materialise (after suppressions and unsubscribes) and the channel's sender, and above the
threshold the campaign's name must be typed; the server refuses a POST without it."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns import lifecycle
from campaigns.models import Campaign, CampaignRun, Delivery
from contacts.models import ChannelType, Unsubscribed
from contacts.suppression import suppression_add_manual
from tests.campaigns.support import email_template, segment_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(db):
    segment, contacts = segment_with(5)
    # One unsubscribed, one suppressed, one unconfirmed: two of the five are left out... and
    # the unconfirmed one makes three.
    Unsubscribed.objects.create(email=contacts[0].email, reason="by link")
    suppression_add_manual(channel=ChannelType.EMAIL, address=contacts[1].email)
    contacts[2].confirmed = False
    contacts[2].save(update_fields=["confirmed"])
    return lifecycle.campaign_create(
        data={
            "name": "Autumn sale",
            "type": "blast",
            "channels": ["email"],
            "audienceId": segment.pk,
            "templateId": email_template().pk,
            "schedule": {"timezone": "Europe/Kyiv"},
        }
    )


def launch_url(campaign: Campaign, action: str = "launch") -> str:
    return reverse("campaign_action", args=[campaign.pk, action])


def test_the_detail_page_links_to_the_confirmation_not_a_direct_launch(client, marketer, campaign):
    client.force_login(marketer)
    page = client.get(reverse("campaign_detail", args=[campaign.pk])).content.decode()
    assert f'href="{launch_url(campaign)}"' in page


def test_confirmation_shows_the_reach_after_suppressions_and_the_sender(client, marketer, campaign):
    client.force_login(marketer)
    response = client.get(launch_url(campaign))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Send to 2 contacts now?" in page
    assert 'data-testid="reach-email">2<' in page
    # The channel's sender, as the launch rule reports it (the configured sender address).
    assert "sender " in page
    assert 'data-testid="confirm-name"' not in page  # 2 is below the default threshold
    assert Campaign.objects.get().status == "draft"
    assert not CampaignRun.objects.exists()


def test_confirmation_names_the_campaign_integration(client, marketer, campaign):
    from config.core.models import Integration

    integration = Integration.objects.create(
        name="Mailgun EU", kind="smtp", channels=["email"], enabled=True
    )
    Campaign.objects.filter(pk=campaign.pk).update(integration=integration)
    client.force_login(marketer)
    assert "Mailgun EU" in client.get(launch_url(campaign)).content.decode()


def test_launch_post_without_confirmation_is_refused_with_a_form_error(client, marketer, campaign):
    client.force_login(marketer)
    response = client.post(launch_url(campaign))
    assert response.status_code == 400
    assert "Confirm on this page first" in response.content.decode()
    assert Campaign.objects.get().status == "draft"
    assert not Delivery.objects.exists()


def test_confirmed_launch_sends_to_the_reach_shown(client, marketer, campaign):
    client.force_login(marketer)
    response = client.post(launch_url(campaign), {"confirm": "yes"})
    assert response.status_code == 302
    assert Campaign.objects.get().status == "running"
    assert CampaignRun.objects.get().reach == 2
    assert Delivery.objects.count() == 2


def test_above_the_threshold_the_typed_name_is_required(client, marketer, campaign, settings):
    settings.HERALD_LAUNCH_CONFIRM_NAME_AT = 2
    client.force_login(marketer)
    page = client.get(launch_url(campaign)).content.decode()
    assert 'data-testid="confirm-name"' in page

    missing = client.post(launch_url(campaign), {"confirm": "yes"})
    assert missing.status_code == 400
    assert "Type the campaign&#x27;s name exactly as shown" in missing.content.decode()
    wrong = client.post(launch_url(campaign), {"confirm": "yes", "typed_name": "Autumn"})
    assert wrong.status_code == 400
    assert Campaign.objects.get().status == "draft"
    assert not Delivery.objects.exists()

    right = client.post(launch_url(campaign), {"confirm": "yes", "typed_name": " Autumn sale "})
    assert right.status_code == 302
    assert Campaign.objects.get().status == "running"


def test_schedule_asks_with_the_same_summary_and_check(client, marketer, campaign, settings):
    settings.HERALD_LAUNCH_CONFIRM_NAME_AT = 1
    start = timezone.now() + dt.timedelta(days=2)
    Campaign.objects.filter(pk=campaign.pk).update(start_at=start)
    client.force_login(marketer)
    page = client.get(launch_url(campaign, "schedule")).content.decode()
    assert "Schedule for 2 contacts?" in page
    assert "(Europe/Kyiv)" in page
    refused = client.post(launch_url(campaign, "schedule"), {"confirm": "yes"})
    assert refused.status_code == 400
    assert Campaign.objects.get().status == "draft"
    done = client.post(
        launch_url(campaign, "schedule"), {"confirm": "yes", "typed_name": "Autumn sale"}
    )
    assert done.status_code == 302
    assert Campaign.objects.get().status == "scheduled"


def test_viewer_cannot_open_the_confirmation(client, viewer, campaign):
    client.force_login(viewer)
    assert client.get(launch_url(campaign)).status_code == 403


def test_confirmation_page_in_ukrainian(client, marketer, campaign):
    client.force_login(marketer)
    page = client.get(launch_url(campaign), HTTP_ACCEPT_LANGUAGE="uk").content.decode()
    assert "Надіслати 2 контактам зараз?" in page

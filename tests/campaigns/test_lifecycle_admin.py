"""Admin pages for campaigns, runs and the ledger, and the lifecycle actions."""

import pytest
from django.contrib.messages import get_messages

from campaigns import lifecycle
from campaigns.models import Campaign, CampaignRun, CampaignStatus, Delivery, RunStatus
from tests.campaigns.support import email_template, segment_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123")


@pytest.fixture
def running(db):
    segment, _ = segment_with(2)
    return lifecycle.campaign_create(
        data={
            "name": "Live",
            "channels": ["email"],
            "audienceId": segment.pk,
            "templateId": email_template().pk,
            "status": "running",
        }
    )


@pytest.mark.parametrize(
    "path",
    [
        "/admin/campaigns/campaign/",
        "/admin/campaigns/campaignrun/",
        "/admin/campaigns/delivery/",
        "/admin/campaigns/delivery/?q=person",
        "/admin/campaigns/delivery/?q=not-a-uuid&status__exact=queued",
        "/admin/campaigns/sendrequest/",
        "/admin/campaigns/deliveryevent/",
    ],
)
def test_admin_lists_open(client, superuser, running, path):
    client.force_login(superuser)
    assert client.get(path).status_code == 200


def test_admin_change_pages_open(client, superuser, running):
    client.force_login(superuser)
    run = CampaignRun.objects.get()
    delivery = Delivery.objects.first()
    for path in (
        f"/admin/campaigns/campaign/{running.pk}/change/",
        f"/admin/campaigns/campaignrun/{run.pk}/change/",
        f"/admin/campaigns/delivery/{delivery.pk}/change/",
    ):
        assert client.get(path).status_code == 200, path


def test_admin_pause_and_resume_actions_call_the_lifecycle(client, superuser, running):
    client.force_login(superuser)

    client.post(
        "/admin/campaigns/campaign/",
        {"action": "pause", "_selected_action": [running.pk]},
    )
    assert Campaign.objects.get(pk=running.pk).status == CampaignStatus.PAUSED
    assert CampaignRun.objects.get().status == RunStatus.PAUSED

    client.post(
        "/admin/campaigns/campaign/",
        {"action": "resume", "_selected_action": [running.pk]},
    )
    assert Campaign.objects.get(pk=running.pk).status == CampaignStatus.RUNNING


def test_admin_action_on_an_illegal_move_warns_and_changes_nothing(client, superuser, running):
    client.force_login(superuser)
    lifecycle.campaign_cancel(campaign=running)

    response = client.post(
        "/admin/campaigns/campaign/",
        {"action": "resume", "_selected_action": [running.pk]},
        follow=True,
    )

    texts = [str(message) for message in get_messages(response.wsgi_request)]
    assert any("cannot become running" in text for text in texts)
    assert Campaign.objects.get(pk=running.pk).status == CampaignStatus.CANCELLED

"""The campaign page's UTM section: its own form saves through the lifecycle, bad values are
form errors, and the detail and report pages show what is applied."""

import pytest
from django.urls import reverse

from campaigns.models import Campaign
from tests.campaigns.test_pipeline import make_campaign

pytestmark = pytest.mark.django_db


def test_set_utm_tags_and_see_them_on_the_detail_and_report(client, marketer):
    campaign = make_campaign(name="Spring Sale", status="draft")
    client.force_login(marketer)
    detail = client.get(reverse("campaign_detail", args=[campaign.pk])).content.decode()
    assert reverse("campaign_utm", args=[campaign.pk]) in detail
    response = client.post(
        reverse("campaign_utm", args=[campaign.pk]), {"enabled": "on", "content": "hero"}
    )
    assert response.status_code == 302
    campaign = Campaign.objects.get(pk=campaign.pk)
    assert (campaign.utm_source, campaign.utm_medium, campaign.utm_campaign) == (
        "herald",
        "email",
        "spring-sale",
    )
    detail = client.get(reverse("campaign_detail", args=[campaign.pk])).content.decode()
    assert "utm_campaign=spring-sale" in detail and "utm_content=hero" in detail
    report = client.get(reverse("campaign_report", args=[campaign.pk])).content.decode()
    assert "utm_campaign=spring-sale" in report


def test_a_bad_utm_value_is_a_form_error(client, marketer):
    campaign = make_campaign(status="draft")
    client.force_login(marketer)
    response = client.post(
        reverse("campaign_utm", args=[campaign.pk]), {"enabled": "on", "source": "a&b=c"}
    )
    assert response.status_code == 400
    assert "only letters, digits" in response.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).utm_enabled is False


def test_a_viewer_cannot_change_utm_tags(client, viewer):
    campaign = make_campaign(status="draft")
    client.force_login(viewer)
    response = client.post(reverse("campaign_utm", args=[campaign.pk]), {"enabled": "on"})
    assert response.status_code == 403


def test_admin_refuses_a_utm_value_that_is_not_plain(client, django_user_model):
    from campaigns.admin import CampaignAdminForm

    campaign = make_campaign(status="draft")
    bound = CampaignAdminForm(
        {"utm_enabled": True, "utm_source": "a&b", "utm_medium": "email"}, instance=campaign
    )
    assert not bound.is_valid()
    assert list(bound.errors) == ["utm_source"]

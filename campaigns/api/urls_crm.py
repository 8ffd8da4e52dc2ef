"""Seed-003 routes under /api/crm/marketing/ (each with and without a trailing slash)."""

from django.urls import include, path

from campaigns.api.campaigns import (
    CampaignActionView,
    CampaignsView,
    CampaignTypesView,
    CampaignView,
    HealthView,
    PlatformsView,
    SocialProfilesListView,
    SocialProfilesView,
)
from config.core.routes import api_path

ID = r"(?P<campaign_id>[0-9]{1,18})"
ACTIONS = ("schedule", "launch", "pause", "resume", "cancel", "duplicate")

urlpatterns: list = [
    api_path("campaigns", CampaignsView.as_view(), "crm-campaigns"),
    api_path(f"campaigns/{ID}", CampaignView.as_view(), "crm-campaign"),
    *(
        api_path(
            f"campaigns/{ID}/{action}",
            CampaignActionView.as_view(action=action),
            f"crm-campaign-{action}",
        )
        for action in ACTIONS
    ),
    api_path("platforms", PlatformsView.as_view(), "crm-platforms"),
    api_path("campaign-types", CampaignTypesView.as_view(), "crm-campaign-types"),
    api_path("social-profiles", SocialProfilesListView.as_view(), "crm-social-profiles"),
    api_path(
        r"social-profiles/(?P<platform>[^/]+)", SocialProfilesView.as_view(), "crm-social-profile"
    ),
    api_path("health", HealthView.as_view(), "crm-health"),
    path("", include("campaigns.api.urls_analytics")),
]

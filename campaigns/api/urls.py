"""Campaigns' API routes, one list per mount point (each route with and without a trailing
slash): the CRM campaigns API under /api/crm/marketing/ and the eSputnik v1 message routes
under /api/v1/, and Herald's own (A/B tests, promo codes) under /api/herald/ (mounted by
config.urls /
config.api_urls).

The README describes them ("The CRM campaigns API", "The eSputnik v1 API")."""

from rest_framework.routers import SimpleRouter

from campaigns.api.abtest import ABTestView, ABTestWinnerView
from campaigns.api.analytics import AggregatedMetricsView, CampaignAnalyticsView, DashboardView
from campaigns.api.campaigns import (
    CampaignActionView,
    CampaignPurgeView,
    CampaignsView,
    CampaignTypesView,
    CampaignView,
    HealthView,
    PlatformsView,
    SocialProfilesListView,
    SocialProfilesView,
)
from campaigns.api.messages import EmailView, SmartSendView, SMSView, StatusView, ViberView
from campaigns.api.send_rules import FrequencyCapsView
from campaigns.promo.api import CampaignPromoCodesView, PromoPoolViewSet
from config.core.external_keys import PATH_ID
from config.core.routes import api_path

ID = r"(?P<campaign_id>[0-9]{1,18})"
# The CRM campaigns API names a campaign by its numeric id or its external key (camp-1).
CRM_ID = f"(?P<campaign_id>{PATH_ID})"
ACTIONS = ("schedule", "launch", "pause", "resume", "cancel", "duplicate")

# The CRM campaigns API, under /api/crm/marketing/.
crm_urlpatterns: list = [
    api_path("campaigns", CampaignsView.as_view(), "crm-campaigns"),
    # Before campaigns/<id>, which would take it for a key (a campaign may not have that key:
    # campaigns.lifecycle_input.RESERVED_KEYS).
    api_path(
        "campaigns/aggregated-metrics", AggregatedMetricsView.as_view(), "crm-aggregated-metrics"
    ),
    api_path(f"campaigns/{CRM_ID}", CampaignView.as_view(), "crm-campaign"),
    *(
        api_path(
            f"campaigns/{CRM_ID}/{action}",
            CampaignActionView.as_view(action=action),
            f"crm-campaign-{action}",
        )
        for action in ACTIONS
    ),
    api_path(f"campaigns/{CRM_ID}/purge", CampaignPurgeView.as_view(), "crm-campaign-purge"),
    api_path("platforms", PlatformsView.as_view(), "crm-platforms"),
    api_path("campaign-types", CampaignTypesView.as_view(), "crm-campaign-types"),
    api_path("social-profiles", SocialProfilesListView.as_view(), "crm-social-profiles"),
    api_path(
        r"social-profiles/(?P<platform>[^/]+)", SocialProfilesView.as_view(), "crm-social-profile"
    ),
    api_path("health", HealthView.as_view(), "crm-health"),
    api_path(
        f"campaigns/{CRM_ID}/analytics",
        CampaignAnalyticsView.as_view(),
        "crm-campaign-analytics",
    ),
    api_path("dashboard", DashboardView.as_view(), "crm-dashboard"),
]

# The eSputnik v1 message routes (prepared message, email, SMS, status), under /api/v1/.
v1_urlpatterns: list = [
    # The message (template) by its numeric id or its external key.
    api_path(f"message/(?P<id>{PATH_ID})/smartsend", SmartSendView.as_view(), "smartsend"),
    api_path("message/email", EmailView.as_view(), "message-email"),
    api_path("message/sms", SMSView.as_view(), "message-sms"),
    api_path("message/viber", ViberView.as_view(), "message-viber"),
    api_path("message/status", StatusView.as_view(), "message-status"),
]

# Herald's own campaign resources (A/B tests, promo code pools, frequency caps), under
# /api/herald/.
_router = SimpleRouter()
_router.trailing_slash = "/?"
_router.register("promo-pools", PromoPoolViewSet, basename="promo-pool")

herald_urlpatterns: list = [
    api_path(f"campaigns/{ID}/ab-test", ABTestView.as_view(), "herald-campaign-ab-test"),
    api_path(
        f"campaigns/{ID}/ab-test/winner",
        ABTestWinnerView.as_view(),
        "herald-campaign-ab-test-winner",
    ),
    api_path(
        f"campaigns/{ID}/promo-codes", CampaignPromoCodesView.as_view(), "campaign-promo-codes"
    ),
    api_path("settings/frequency-caps", FrequencyCapsView.as_view(), "frequency-caps"),
    *_router.urls,
]

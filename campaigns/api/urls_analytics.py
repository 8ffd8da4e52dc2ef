"""Seed-003 analytics routes, included by campaigns.api.urls_crm under /api/crm/marketing/.

`campaigns/aggregated-metrics` cannot be taken for a campaign id: ids are digits only."""

from campaigns.api.analytics import AggregatedMetricsView, CampaignAnalyticsView, DashboardView
from config.core.routes import api_path

urlpatterns: list = [
    api_path(
        "campaigns/aggregated-metrics", AggregatedMetricsView.as_view(), "crm-aggregated-metrics"
    ),
    api_path(
        r"campaigns/(?P<campaign_id>[0-9]{1,18})/analytics",
        CampaignAnalyticsView.as_view(),
        "crm-campaign-analytics",
    ),
    api_path("dashboard", DashboardView.as_view(), "crm-dashboard"),
]

"""Routes under /api/. Seed APIs accept paths with and without a trailing slash."""

from django.urls import include, path

from config.core.routes import api_path
from integrations.api import AccountInfoView

v1_urlpatterns = [
    api_path("account/info", AccountInfoView.as_view(), "account-info"),
    # Event ingest is the busiest route: resolved before the dozens of contact routes.
    path("", include("marketing.api.urls_v1")),
    path("", include("contacts.api.urls_contacts")),
    path("", include("contacts.api.urls_segments")),
    path("", include("contacts.api.urls_import")),
    path("", include("campaigns.api.urls_messages")),
]

# Herald's own resources (not part of a seed API), under /api/herald/.
herald_urlpatterns = [
    path("", include("contacts.api.urls_native")),
    path("", include("templates.api_urls")),
    path("", include("marketing.api.urls_native")),
]

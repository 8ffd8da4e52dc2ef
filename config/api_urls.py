"""Routes under /api/. Seed APIs accept paths with and without a trailing slash."""

from django.urls import include, path

from config.core.routes import api_path
from contacts.api import urls as contacts_api_urls
from integrations.api import AccountInfoView

v1_urlpatterns = [
    api_path("account/info", AccountInfoView.as_view(), "account-info"),
    # Event ingest is the busiest route: resolved before the dozens of contact routes.
    path("", include("marketing.api.urls_v1")),
    path("", include(contacts_api_urls.urlpatterns)),
    path("", include("campaigns.api.urls_messages")),
]

# Herald's own resources (not part of a seed API), under /api/herald/.
herald_urlpatterns = [
    path("", include(contacts_api_urls.herald_urlpatterns)),
    path("", include("templates.api_urls")),
    path("", include("marketing.api.urls_native")),
]

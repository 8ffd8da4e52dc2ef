"""Routes under /api/. The eSputnik v1 API accepts paths with and without a trailing slash."""

from django.urls import include, path

from campaigns.api.urls import v1_urlpatterns as campaigns_v1
from integrations.api_urls import v1_urlpatterns as integrations_v1
from marketing.api.urls import native_urlpatterns as marketing_native
from marketing.api.urls import v1_urlpatterns as marketing_v1

v1_urlpatterns = [
    path("", include(integrations_v1)),
    # Event ingest is the busiest route: resolved before the dozens of contact routes.
    path("", include(marketing_v1)),
    path("", include("contacts.api.urls_contacts")),
    path("", include("contacts.api.urls_segments")),
    path("", include("contacts.api.urls_import")),
    path("", include(campaigns_v1)),
]

# Herald's own resources (not part of the eSputnik v1 API), under /api/herald/.
herald_urlpatterns = [
    path("", include("contacts.api.urls_native")),
    path("", include("templates.api_urls")),
    path("", include(marketing_native)),
]

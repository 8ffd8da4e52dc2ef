"""Routes under /api/. The eSputnik v1 API accepts paths with and without a trailing slash."""

from django.urls import include, path

from campaigns.api.urls import herald_urlpatterns as campaigns_native
from campaigns.api.urls import v1_urlpatterns as campaigns_v1
from contacts.api.urls import herald_urlpatterns as contacts_native
from contacts.api.urls import urlpatterns as contacts_v1
from integrations.api_urls import herald_urlpatterns as integrations_native
from integrations.api_urls import v1_urlpatterns as integrations_v1
from marketing.api.urls import native_urlpatterns as marketing_native
from marketing.api.urls import v1_urlpatterns as marketing_v1

v1_urlpatterns = [
    path("", include(integrations_v1)),
    # Event ingest is the busiest route: resolved before the dozens of contact routes.
    path("", include(marketing_v1)),
    path("", include(contacts_v1)),
    path("", include(campaigns_v1)),
]

# Herald's own resources (not part of the eSputnik v1 API), under /api/herald/.
herald_urlpatterns = [
    path("", include(contacts_native)),
    path("", include("templates.api_urls")),
    path("", include(marketing_native)),
    path("", include(integrations_native)),
    path("", include(campaigns_native)),
]

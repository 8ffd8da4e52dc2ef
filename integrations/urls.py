"""Integrations' marketer pages; the API route is in integrations.api_urls."""

from django.urls import path, re_path

from integrations import views, webhooks

urlpatterns = [
    # A provider's webhook: the key is the integration's secret; with or without the slash
    # (services are configured by hand and POSTs cannot follow a redirect).
    re_path(r"^webhooks/(?P<key>[\w-]+)/?$", webhooks.webhook_receive, name="webhook_receive"),
    path("integrations/", views.integrations_home, name="integrations_home"),
    path("settings/api-keys/", views.api_keys, name="api_keys"),
    path("settings/api-keys/<int:pk>/revoke/", views.api_key_revoke_view, name="api_key_revoke"),
]

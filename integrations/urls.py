"""Integrations' marketer pages; the API route is in integrations.api_urls."""

from django.urls import path, re_path

from integrations import views, webhooks

urlpatterns = [
    # A provider's webhook: the key is the integration's secret; with or without the slash
    # (services are configured by hand and POSTs cannot follow a redirect).
    re_path(r"^webhooks/(?P<key>[\w-]+)/?$", webhooks.webhook_receive, name="webhook_receive"),
    path("integrations/", views.integrations_home, name="integrations_home"),
    path("integrations/new/<str:kind>/", views.integration_new, name="integration_new"),
    path("integrations/<int:pk>/", views.integration_detail, name="integration_detail"),
    path("integrations/<int:pk>/test/", views.integration_test_view, name="integration_test"),
    path("integrations/<int:pk>/delete/", views.integration_delete_view, name="integration_delete"),
    path("integrations/<int:pk>/import/", views.integration_import_view, name="integration_import"),
    path("integrations/<int:pk>/imports/", views.integration_imports, name="integration_imports"),
    path(
        "templates/<int:pk>/publish-external/",
        views.template_publish_external_view,
        name="template_publish_external",
    ),
    path("settings/api-keys/", views.api_keys, name="api_keys"),
    path("settings/api-keys/<int:pk>/revoke/", views.api_key_revoke_view, name="api_key_revoke"),
]

"""Integrations' marketer pages; the API route is in integrations.api_urls."""

from django.urls import path

from integrations import views

urlpatterns = [
    path("integrations/", views.integrations_home, name="integrations_home"),
    path("settings/api-keys/", views.api_keys, name="api_keys"),
    path("settings/api-keys/<int:pk>/revoke/", views.api_key_revoke_view, name="api_key_revoke"),
]

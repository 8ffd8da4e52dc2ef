"""Integrations' API route (integrations.api): who an API key belongs to, under /api/v1/
(README: "The eSputnik v1 API")."""

from config.core.routes import api_path
from integrations.api import AccountInfoView

v1_urlpatterns: list = [api_path("account/info", AccountInfoView.as_view(), "account-info")]

"""Integrations' API route (integrations.api): who an API key belongs to, under /api/v1/."""

from config.core.routes import api_path
from integrations.api import AccountInfoView

v1_urlpatterns: list = [api_path("account/info", AccountInfoView.as_view(), "account-info")]

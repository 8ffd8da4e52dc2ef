"""Integrations' API routes (integrations.api): who an API key belongs to, under /api/v1/
(README: "The eSputnik v1 API"); Herald's own integration endpoints under /api/herald/."""

from config.core.routes import api_path
from integrations.api import AccountInfoView, TelegramSubscribeLinkView

v1_urlpatterns: list = [api_path("account/info", AccountInfoView.as_view(), "account-info")]

herald_urlpatterns: list = [
    api_path(
        r"integrations/(?P<pk>[^/]+)/telegram/subscribe-link",
        TelegramSubscribeLinkView.as_view(),
        "integration-telegram-subscribe-link",
    )
]

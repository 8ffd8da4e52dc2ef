"""Seed (eSputnik v1) routes for events and orders; included under /api/v1/."""

from config.core.routes import api_path
from marketing.api.events import EventView
from marketing.api.orders import OrdersView

urlpatterns: list = [
    api_path("event", EventView.as_view(), "event"),
    api_path("orders", OrdersView.as_view(), "orders"),
]

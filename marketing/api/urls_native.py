"""Herald's native routes for events, orders and RFM; included under /api/herald/."""

from rest_framework.routers import SimpleRouter

from config.core.routes import api_path
from marketing.api.native import EventTypeViewSet, EventViewSet, OrderViewSet, RFMView

router = SimpleRouter()
router.trailing_slash = "/?"
router.register("event-types", EventTypeViewSet, basename="event-type")
router.register("events", EventViewSet, basename="event")
router.register("orders", OrderViewSet, basename="order")

urlpatterns: list = [api_path("rfm", RFMView.as_view(), "rfm"), *router.urls]

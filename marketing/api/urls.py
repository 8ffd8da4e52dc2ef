"""Marketing's API routes, one list per mount point (each route with and without a trailing
slash): the eSputnik v1 event and order routes under /api/v1/, Generate event with nested
JSON params under /api/v2/, and Herald's own events, orders and RFM under /api/herald/
(mounted by config.urls / config.api_urls).

The README describes them ("The eSputnik v1 API", "Herald's own API, keys and limits")."""

from rest_framework.routers import SimpleRouter

from config.core.routes import api_path
from marketing.api.activity import ContactActivityView
from marketing.api.events import EventV2View, EventView
from marketing.api.native import EventTypeViewSet, EventViewSet, OrderViewSet, RFMView
from marketing.api.orders import OrdersView
from marketing.api.workflows import WorkflowButtonLinkView, WorkflowStartView
from marketing.signup.api import SignupFormViewSet

# The eSputnik v1 API, under /api/v1/.
v1_urlpatterns: list = [
    api_path("event", EventView.as_view(), "event"),
    api_path("orders", OrdersView.as_view(), "orders"),
]

# /api/v2/event: Generate event with nested JSON params.
v2_urlpatterns: list = [api_path("event", EventV2View.as_view(), "event-v2")]

# Herald's own resources, under /api/herald/.
_router = SimpleRouter()
_router.trailing_slash = "/?"
_router.register("event-types", EventTypeViewSet, basename="event-type")
_router.register("events", EventViewSet, basename="event")
_router.register("orders", OrderViewSet, basename="order")
_router.register("forms", SignupFormViewSet, basename="signup-form")

native_urlpatterns: list = [
    api_path("rfm", RFMView.as_view(), "rfm"),
    api_path(
        r"contacts/(?P<contact_id>[0-9]+)/activity",
        ContactActivityView.as_view(),
        "contact-activity",
    ),
    api_path(r"workflows/(?P<pk>[0-9]+)/start", WorkflowStartView.as_view(), "workflow-start"),
    api_path(
        r"workflows/(?P<pk>[0-9]+)/button-link",
        WorkflowButtonLinkView.as_view(),
        "workflow-button-link",
    ),
    *_router.urls,
]

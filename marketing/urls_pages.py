"""Pages: event history and types (under /automation/), orders and the RFM grid."""

from django.urls import path

from marketing import pages

urlpatterns = [
    path("automation/events/", pages.event_history, name="event_history"),
    path("automation/event-types/", pages.event_types, name="event_types"),
    path("automation/event-types/<int:pk>/", pages.event_type_edit, name="event_type_edit"),
    path("orders/", pages.order_list, name="orders_home"),
    path("orders/rfm/", pages.rfm_grid, name="rfm_grid"),
    path("orders/rfm/recompute/", pages.rfm_recompute, name="rfm_recompute"),
    path("orders/rfm/segment/", pages.rfm_segment, name="rfm_segment"),
    path("orders/<int:pk>/", pages.order_detail, name="order_detail"),
]

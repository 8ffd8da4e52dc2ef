"""Marketer pages of the message log."""

from django.urls import path

from campaigns import log_views

urlpatterns = [
    path("messages/", log_views.message_log, name="message_log"),
    path("messages/<uuid:request_id>/", log_views.message_detail, name="message_detail"),
    path(
        "templates/<int:pk>/test-send/",
        log_views.template_test_send_view,
        name="template_test_send",
    ),
]

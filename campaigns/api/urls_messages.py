"""Seed (eSputnik v1) message routes: prepared message, email, SMS, status."""

from campaigns.api.messages import EmailView, SmartSendView, SMSView, StatusView
from config.core.routes import api_path

urlpatterns: list = [
    api_path(r"message/(?P<id>[0-9]+)/smartsend", SmartSendView.as_view(), "smartsend"),
    api_path("message/email", EmailView.as_view(), "message-email"),
    api_path("message/sms", SMSView.as_view(), "message-sms"),
    api_path("message/status", StatusView.as_view(), "message-status"),
]

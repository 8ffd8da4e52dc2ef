"""Seed (eSputnik v1) contact routes: subscribe, bulk upsert, import status, one contact, search."""

from config.core.routes import api_path
from contacts.api.contacts import (
    ContactDetailView,
    ContactsView,
    ContactView,
    ImportStatusView,
    SubscribeView,
)

urlpatterns: list = [
    api_path("contact/subscribe", SubscribeView.as_view(), "contact-subscribe"),
    api_path("contacts", ContactsView.as_view(), "contacts"),
    api_path(
        r"importstatus/(?P<session_id>[^/]+)", ImportStatusView.as_view(), "contacts-import-status"
    ),
    api_path("contact", ContactView.as_view(), "contact"),
    api_path(r"contact/(?P<contact_id>[0-9]+)", ContactDetailView.as_view(), "contact-detail"),
]

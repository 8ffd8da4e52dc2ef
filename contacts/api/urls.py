"""API URLs of the contacts app, two lists: `urlpatterns`, the eSputnik v1 API's routes
(under /api/v1/: subscribe, bulk upsert, CSV upload, import status, one contact, search,
groups, the custom field catalog, the unsubscribed list), and `herald_urlpatterns`, Herald's
own resources (under /api/herald/: custom fields, segments with a `reach` action, the
suppression list, one contact's export).

The README describes them ("The eSputnik v1 API", "Herald's own API, keys and limits")."""

from rest_framework.routers import SimpleRouter

from config.core.routes import api_path
from contacts.api.contacts import (
    ContactDetailView,
    ContactsView,
    ContactView,
    ImportStatusView,
    SubscribeView,
)
from contacts.api.native import CustomFieldViewSet, SegmentViewSet
from contacts.api.privacy import ContactExportView
from contacts.api.segments import (
    AddressBooksView,
    GroupAttachView,
    GroupContactsView,
    GroupDetachView,
    GroupsView,
    UnsubscribedAddView,
    UnsubscribedDeleteView,
)
from contacts.api.suppressions import SuppressionLiftView, SuppressionsView
from contacts.api.upload import ContactsUploadView

urlpatterns: list = [
    # Contacts
    api_path("contact/subscribe", SubscribeView.as_view(), "contact-subscribe"),
    api_path("contacts", ContactsView.as_view(), "contacts"),
    api_path(
        r"importstatus/(?P<session_id>[^/]+)", ImportStatusView.as_view(), "contacts-import-status"
    ),
    api_path("contact", ContactView.as_view(), "contact"),
    api_path(r"contact/(?P<contact_id>[0-9]+)", ContactDetailView.as_view(), "contact-detail"),
    # Groups, the custom field catalog and the unsubscribed list
    api_path("groups", GroupsView.as_view(), "groups"),
    api_path(r"group/(?P<group_id>[0-9]+)/contacts", GroupContactsView.as_view(), "group-contacts"),
    api_path(
        r"group/(?P<group_id>[0-9]+)/contacts/attach", GroupAttachView.as_view(), "group-attach"
    ),
    api_path(
        r"group/(?P<group_id>[0-9]+)/contacts/detach", GroupDetachView.as_view(), "group-detach"
    ),
    api_path("addressbooks", AddressBooksView.as_view(), "addressbooks"),
    api_path("emails/unsubscribed/add", UnsubscribedAddView.as_view(), "unsubscribed-add"),
    api_path("emails/unsubscribed/delete", UnsubscribedDeleteView.as_view(), "unsubscribed-delete"),
    # Import from a CSV file at a URL
    api_path("contacts/upload", ContactsUploadView.as_view(), "contacts-upload"),
]

router = SimpleRouter()
# Like the eSputnik v1 routes, answer with or without the trailing slash (the constructor
# only takes a boolean, so the pattern is set afterwards).
router.trailing_slash = "/?"
router.register("custom-fields", CustomFieldViewSet, basename="custom-field")
router.register("segments", SegmentViewSet, basename="segment")

herald_urlpatterns: list = [
    api_path(
        r"contacts/(?P<contact_id>[0-9]{1,20})/export",
        ContactExportView.as_view(),
        "contact-export",
    ),
    api_path("suppressions", SuppressionsView.as_view(), "suppressions"),
    api_path(
        r"suppressions/(?P<suppression_id>[0-9]{1,20})/lift",
        SuppressionLiftView.as_view(),
        "suppression-lift",
    ),
    *router.urls,
]

"""Seed (eSputnik v1) routes for groups, custom fields catalog and the unsubscribed list."""

from config.core.routes import api_path
from contacts.api.segments import (
    AddressBooksView,
    GroupAttachView,
    GroupContactsView,
    GroupDetachView,
    GroupsView,
    UnsubscribedAddView,
    UnsubscribedDeleteView,
)

urlpatterns: list = [
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
]

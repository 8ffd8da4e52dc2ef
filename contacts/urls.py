"""Page URLs of the contacts app: the marketer pages (contacts.views) and the public double
opt-in confirmation link (contacts.public)."""

from django.urls import path

from contacts import public
from contacts.views import contacts, imports, segments, suppressions

urlpatterns = [
    path("contacts/", contacts.contact_list, name="contacts_home"),
    path("contacts/new/", contacts.contact_create, name="contact_create"),
    path("contacts/bulk/", contacts.contact_bulk, name="contact_bulk"),
    path("contacts/<int:pk>/", contacts.contact_detail, name="contact_detail"),
    path("contacts/<int:pk>/edit/", contacts.contact_edit, name="contact_edit"),
    path("contacts/<int:pk>/delete/", contacts.contact_delete, name="contact_delete"),
    path("contacts/<int:pk>/restore/", contacts.contact_restore, name="contact_restore"),
    path("contacts/<int:pk>/export/", contacts.contact_export, name="contact_export"),
    path("contacts/fields/", contacts.custom_field_list, name="custom_field_list"),
    path("contacts/fields/new/", contacts.custom_field_create, name="custom_field_create"),
    path("contacts/fields/<int:pk>/edit/", contacts.custom_field_edit, name="custom_field_edit"),
    path(
        "contacts/fields/<int:pk>/delete/",
        contacts.custom_field_delete,
        name="custom_field_delete",
    ),
    path("contacts/unsubscribed/", contacts.unsubscribed_list, name="unsubscribed_list"),
    path("contacts/unsubscribed/add/", contacts.unsubscribed_add, name="unsubscribed_add"),
    path("contacts/unsubscribed/remove/", contacts.unsubscribed_remove, name="unsubscribed_remove"),
    path("contacts/suppressions/", suppressions.suppression_list, name="suppression_list"),
    path("contacts/suppressions/add/", suppressions.suppression_add, name="suppression_add"),
    path(
        "contacts/suppressions/<int:pk>/lift/",
        suppressions.suppression_lift_view,
        name="suppression_lift",
    ),
    path("segments/", segments.segment_list, name="segments_home"),
    path("segments/new/", segments.segment_create, name="segment_create"),
    path("segments/reach/", segments.filter_reach_preview, name="segment_filter_reach"),
    path("segments/filter-row/", segments.filter_row, name="segment_filter_row"),
    path("segments/<int:pk>/", segments.segment_detail, name="segment_detail"),
    path("segments/<int:pk>/edit/", segments.segment_edit, name="segment_edit"),
    path("segments/<int:pk>/delete/", segments.segment_delete, name="segment_delete"),
    path("segments/<int:pk>/reach/", segments.segment_reach_badge, name="segment_reach"),
    path("segments/<int:pk>/filter/", segments.segment_filter_save, name="segment_filter_save"),
    path("segments/<int:pk>/members/add/", segments.members_add, name="segment_members_add"),
    path(
        "segments/<int:pk>/members/remove/", segments.members_remove, name="segment_members_remove"
    ),
    path("contacts/import/", imports.import_home, name="import_home"),
    path("contacts/import/<uuid:session_id>/", imports.import_detail, name="import_detail"),
    path(
        "contacts/import/<uuid:session_id>/columns/",
        imports.import_mapping,
        name="import_mapping",
    ),
    path(
        "contacts/import/<uuid:session_id>/progress/",
        imports.import_progress,
        name="import_progress",
    ),
    path(
        "contacts/import/<uuid:session_id>/failed.csv",
        imports.import_failures_csv,
        name="import_failures_csv",
    ),
    path("contacts/export.csv", imports.contacts_export_csv, name="contacts_export_csv"),
    path("confirm/<str:token>/", public.contact_confirm, name="contact_confirm"),
]

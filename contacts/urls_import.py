"""Marketer pages for CSV import and export, and the public double opt-in confirmation link."""

from django.urls import path

from contacts import import_views

urlpatterns = [
    path("contacts/import/", import_views.import_home, name="import_home"),
    path("contacts/import/<uuid:session_id>/", import_views.import_detail, name="import_detail"),
    path(
        "contacts/import/<uuid:session_id>/progress/",
        import_views.import_progress,
        name="import_progress",
    ),
    path(
        "contacts/import/<uuid:session_id>/failed.csv",
        import_views.import_failures_csv,
        name="import_failures_csv",
    ),
    path("contacts/export.csv", import_views.contacts_export_csv, name="contacts_export_csv"),
    path("confirm/<str:token>/", import_views.contact_confirm, name="contact_confirm"),
]

"""Marketer pages for contacts, segments, custom fields and the unsubscribed list."""

from django.urls import path

from contacts import views, views_segments

urlpatterns = [
    path("contacts/", views.contact_list, name="contacts_home"),
    path("contacts/new/", views.contact_create, name="contact_create"),
    path("contacts/<int:pk>/", views.contact_detail, name="contact_detail"),
    path("contacts/<int:pk>/edit/", views.contact_edit, name="contact_edit"),
    path("contacts/<int:pk>/delete/", views.contact_delete, name="contact_delete"),
    path("contacts/<int:pk>/restore/", views.contact_restore, name="contact_restore"),
    path("contacts/fields/", views.custom_field_list, name="custom_field_list"),
    path("contacts/fields/new/", views.custom_field_create, name="custom_field_create"),
    path("contacts/fields/<int:pk>/edit/", views.custom_field_edit, name="custom_field_edit"),
    path("contacts/fields/<int:pk>/delete/", views.custom_field_delete, name="custom_field_delete"),
    path("contacts/unsubscribed/", views.unsubscribed_list, name="unsubscribed_list"),
    path("contacts/unsubscribed/add/", views.unsubscribed_add, name="unsubscribed_add"),
    path("contacts/unsubscribed/remove/", views.unsubscribed_remove, name="unsubscribed_remove"),
    path("segments/", views_segments.segment_list, name="segments_home"),
    path("segments/new/", views_segments.segment_create, name="segment_create"),
    path("segments/reach/", views_segments.filter_reach_preview, name="segment_filter_reach"),
    path("segments/filter-row/", views_segments.filter_row, name="segment_filter_row"),
    path("segments/<int:pk>/", views_segments.segment_detail, name="segment_detail"),
    path("segments/<int:pk>/edit/", views_segments.segment_edit, name="segment_edit"),
    path("segments/<int:pk>/delete/", views_segments.segment_delete, name="segment_delete"),
    path("segments/<int:pk>/reach/", views_segments.segment_reach_badge, name="segment_reach"),
    path(
        "segments/<int:pk>/filter/", views_segments.segment_filter_save, name="segment_filter_save"
    ),
    path("segments/<int:pk>/members/add/", views_segments.members_add, name="segment_members_add"),
    path(
        "segments/<int:pk>/members/remove/",
        views_segments.members_remove,
        name="segment_members_remove",
    ),
]

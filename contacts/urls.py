"""Marketer pages for contacts, segments, custom fields and the unsubscribed list."""

urlpatterns: list = []

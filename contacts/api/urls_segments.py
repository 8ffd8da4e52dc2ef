"""Seed (eSputnik v1) routes for groups, custom fields catalog and the unsubscribed list."""

urlpatterns: list = []

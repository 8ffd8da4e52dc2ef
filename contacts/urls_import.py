"""Marketer pages for CSV import and export, and the public double opt-in confirmation link."""

urlpatterns: list = []

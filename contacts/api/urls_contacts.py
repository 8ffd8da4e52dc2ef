"""Seed (eSputnik v1) contact routes: subscribe, bulk upsert, import status, one contact, search."""

urlpatterns: list = []

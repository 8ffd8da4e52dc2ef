"""URL helpers every app's API routes use."""

from django.urls import re_path


def api_path(route: str, view, name: str):
    """`route` without slashes at either end; matches with or without a trailing slash (the
    eSputnik clients in the field send both)."""
    return re_path(rf"^{route}/?$", view, name=name)

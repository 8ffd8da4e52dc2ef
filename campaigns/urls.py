"""Public endpoints reached from inside emails: no login, the signed token is the credential."""

from django.urls import re_path

from campaigns import views

# Tokens are base 36, a dot and base 32 (tracking.token_make); any case is accepted.
SIGNED = r"(?P<token>[0-9A-Za-z]{1,13}\.[0-9A-Za-z]{1,32})"

urlpatterns = [
    re_path(rf"^t/o/{SIGNED}\.gif$", views.open_pixel, name="tracking_open"),
    re_path(rf"^t/c/{SIGNED}/?$", views.click_redirect, name="tracking_click"),
    re_path(rf"^u/{SIGNED}/?$", views.unsubscribe, name="unsubscribe"),
]

"""Herald's native templates API (under /api/herald/); README: "Herald's own API, keys and
limits"."""

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from templates.api import TemplateViewSet
from templates.api_languages import TemplateLanguagesView, TemplateLanguageView

router = SimpleRouter()
# Like the other routes, answer with or without the trailing slash.
router.trailing_slash = "/?"
router.register("templates", TemplateViewSet, basename="template")

urlpatterns: list = [
    re_path(
        r"^templates/(?P<pk>[0-9]+)/languages/?$",
        TemplateLanguagesView.as_view(),
        name="template-languages",
    ),
    re_path(
        r"^templates/(?P<pk>[0-9]+)/languages/(?P<code>[A-Za-z0-9_-]{1,20})/?$",
        TemplateLanguageView.as_view(),
        name="template-language",
    ),
    *router.urls,
]

"""Herald's native templates API (under /api/herald/); README: "Herald's own API, keys and
limits"."""

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from templates.api import TemplateViewSet
from templates.api_languages import TemplateLanguagesView, TemplateLanguageView
from templates.design_api import ImageUploadView, TemplateDesignView

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
    re_path(
        r"^templates/(?P<pk>[0-9]+)/design/?$", TemplateDesignView.as_view(), name="template-design"
    ),
    re_path(r"^images/?$", ImageUploadView.as_view(), name="image-upload"),
    *router.urls,
]

"""Herald's native templates API (under /api/herald/); README: "Herald's own API, keys and
limits"."""

from rest_framework.routers import SimpleRouter

from templates.api import TemplateViewSet

router = SimpleRouter()
# Like the other routes, answer with or without the trailing slash.
router.trailing_slash = "/?"
router.register("templates", TemplateViewSet, basename="template")

urlpatterns: list = router.urls

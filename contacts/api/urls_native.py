"""Herald's native DRF viewsets (custom fields, segments with a `reach` action)."""

from rest_framework.routers import SimpleRouter

from contacts.api.native import CustomFieldViewSet, SegmentViewSet

# "/?": like the seed routes, answer with or without the trailing slash.
router = SimpleRouter(trailing_slash="/?")
router.register("custom-fields", CustomFieldViewSet, basename="custom-field")
router.register("segments", SegmentViewSet, basename="segment")

urlpatterns: list = router.urls

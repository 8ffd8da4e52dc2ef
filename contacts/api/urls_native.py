"""Herald's native DRF viewsets (custom fields, segments with a `reach` action)."""

from rest_framework.routers import SimpleRouter

from contacts.api.native import CustomFieldViewSet, SegmentViewSet

router = SimpleRouter()
# Like the seed routes, answer with or without the trailing slash (the constructor only
# takes a boolean, so the pattern is set afterwards).
router.trailing_slash = "/?"
router.register("custom-fields", CustomFieldViewSet, basename="custom-field")
router.register("segments", SegmentViewSet, basename="segment")

urlpatterns: list = router.urls

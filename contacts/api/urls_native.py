"""Herald's native DRF viewsets (custom fields, segments with a `reach` action)."""

urlpatterns: list = []

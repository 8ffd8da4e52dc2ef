"""POST /v1/contacts/upload: import from a CSV file at a URL."""

urlpatterns: list = []

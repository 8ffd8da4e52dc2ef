"""POST /v1/contacts/upload: import from a CSV file at a URL."""

from config.core.routes import api_path
from contacts.api.upload import ContactsUploadView

urlpatterns: list = [
    api_path("contacts/upload", ContactsUploadView.as_view(), "contacts-upload"),
]

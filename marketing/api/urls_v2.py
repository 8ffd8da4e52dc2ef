"""/api/v2/event: Generate event with nested JSON params."""

from config.core.routes import api_path
from marketing.api.events import EventV2View

urlpatterns: list = [api_path("event", EventV2View.as_view(), "event-v2")]

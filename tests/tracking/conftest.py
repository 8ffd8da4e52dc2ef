from urllib.parse import urlsplit

import pytest

from campaigns.models import Delivery, DeliveryStatus

BASE = "https://herald.example.com"


@pytest.fixture(autouse=True)
def public_base_url(settings):
    settings.HERALD_BASE_URL = BASE
    settings.HERALD_UNSUBSCRIBE_MAILTO_DOMAIN = ""


@pytest.fixture
def make_delivery(db):
    def make(locator="ann@example.com", status=DeliveryStatus.SENT, channel="email", **fields):
        return Delivery.objects.create(locator=locator, status=status, channel=channel, **fields)

    return make


@pytest.fixture
def delivery(make_delivery):
    return make_delivery()


def local(url: str) -> str:
    """The path and query of an absolute link from an email, for the test client."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == BASE, url
    return parts.path + (f"?{parts.query}" if parts.query else "")

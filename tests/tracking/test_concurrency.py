"""Hits arriving at the same time on one delivery: every one is counted, none is lost."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client

from campaigns import tracking
from campaigns.models import Delivery
from contacts.models import Unsubscribed
from tests.tracking.conftest import local

THREADS = 6
HITS_PER_THREAD = 10


def _hit(path: str, method: str = "get", **kwargs) -> list[int]:
    try:
        client = Client(enforce_csrf_checks=True)
        return [getattr(client, method)(path, **kwargs).status_code for _ in range(HITS_PER_THREAD)]
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_concurrent_opens_and_clicks_are_all_counted():
    delivery = Delivery.objects.create(locator="ann@example.com", channel="email", status="sent")
    open_path = local(tracking.open_url(delivery.pk))
    click_path = local(tracking.click_url(delivery.pk, "https://example.org/"))

    with ThreadPoolExecutor(THREADS) as pool:
        opens = [pool.submit(_hit, open_path) for _ in range(THREADS // 2)]
        clicks = [pool.submit(_hit, click_path) for _ in range(THREADS // 2)]
        statuses = [s for f in opens + clicks for s in f.result()]

    assert set(statuses) <= {200, 302}
    delivery.refresh_from_db()
    expected = THREADS // 2 * HITS_PER_THREAD
    assert (delivery.open_count, delivery.click_count) == (expected, expected)
    assert delivery.status == "clicked"
    assert delivery.events.count() == 2 * expected


@pytest.mark.django_db(transaction=True)
def test_concurrent_one_click_posts_leave_one_entry_and_one_history_row():
    delivery = Delivery.objects.create(locator="ann@example.com", channel="email", status="sent")
    path = local(tracking.unsubscribe_url(delivery.pk))
    body = {
        "data": "List-Unsubscribe=One-Click",
        "content_type": "application/x-www-form-urlencoded",
    }

    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(_hit, path, "post", **body) for _ in range(THREADS)]
        statuses = [s for f in futures for s in f.result()]

    assert set(statuses) == {200}
    assert Unsubscribed.objects.filter(email="ann@example.com").count() == 1
    assert delivery.events.filter(status="unsubscribed").count() == 1

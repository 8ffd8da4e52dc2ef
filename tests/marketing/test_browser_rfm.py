"""The marketer reads the RFM grid in a real Chromium and saves cells as a segment."""

import pytest
from playwright.sync_api import expect

from contacts.filters.compiler import segment_reach
from contacts.models import Segment
from marketing.orders import orders_upsert
from tests.factories import PASSWORD
from tests.marketing.test_api_orders import order
from tests.support import browser as browser_support
from tests.support.browser import log_in, open_page

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_marketer_recomputes_rfm_and_saves_two_cells_as_a_segment(page, marketer, tmp_path):
    orders_upsert(
        orders=[
            order(
                externalOrderId=str(n),
                email=f"buyer{n}@example.com",
                status="DELIVERED",
                date=f"2026-01-0{n + 1}T00:00:00Z",
            )
            for n in range(5)
        ]
    )
    log_in(page, marketer.username, PASSWORD)
    open_page(page, "/orders/rfm/")
    expect(page.get_by_test_id("empty-state")).to_be_visible()
    page.get_by_test_id("rfm-recompute").click()
    expect(page.get_by_text("RFM scores recomputed for 5 contacts.")).to_be_visible()
    expect(page.get_by_test_id("rfm-cell-5-1")).to_contain_text("1")
    page.get_by_label("Cell R5 F1").check()
    page.get_by_label("Cell R4 F1").check()
    page.screenshot(path=str(tmp_path / "rfm.png"), full_page=True)
    page.get_by_label("Segment name").fill("Latest buyers")
    page.get_by_test_id("rfm-save-segment").click()
    expect(page.get_by_role("heading", name="Latest buyers")).to_be_visible()
    assert segment_reach(Segment.objects.get(name="Latest buyers")) == 2

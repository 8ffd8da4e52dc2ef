"""Events, orders and frequency caps with data, in a real Chromium: accessible, fitting a
phone, and in Ukrainian for a Ukrainian reader."""

import pytest
from playwright.sync_api import expect

from marketing.models import Order
from marketing.orders import orders_upsert
from marketing.services import event_emit
from tests.factories import PASSWORD
from tests.marketing.test_api_orders import DOCUMENTED_ORDER, order
from tests.support import browser as browser_support
from tests.support.a11y import assert_accessible, assert_fits_phone
from tests.support.browser import log_in, open_page

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def activity():
    long_key = "a-customer-with-a-very-long-address-" + "x" * 40 + "@example.com"
    event_emit(
        type_key="cartAbandonedWithAVeryLongEventTypeName",
        key_value=long_key,
        params={"sku": "X1", "note": "a long parameter value " * 10},
    )
    event_emit(type_key="pageViewed", key_value="b@example.com")
    orders_upsert(orders=[DOCUMENTED_ORDER, order(externalOrderId="2", status="DELIVERED")])
    return Order.objects.get(external_order_id="100500")


def test_events_orders_and_caps_are_accessible_and_fit_a_phone(page, admin_user, activity):
    log_in(page, admin_user.username, PASSWORD)
    pages = {
        "event history": "/automation/events/",
        "event types": "/automation/event-types/",
        "orders": "/orders/",
        "order": f"/orders/{activity.pk}/",
        "frequency caps": "/settings/frequency-caps/",
    }
    for name, path in pages.items():
        open_page(page, path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert_accessible(page, name)
        assert_fits_phone(page, path)

    # The caps form with an error shown.
    open_page(page, "/settings/frequency-caps/")
    page.locator("input[name=email_limit]").fill("3")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Give both the number of messages and the days")).to_be_visible()
    assert_accessible(page, "frequency caps with an error")


def test_orders_and_events_speak_ukrainian(browser, live_server, admin_user, activity):
    context = browser.new_context(base_url=live_server.url, locale="uk-UA")
    try:
        uk_page = context.new_page()
        log_in(uk_page, admin_user.username, PASSWORD)
        open_page(uk_page, "/orders/")
        expect(uk_page.get_by_role("heading", name="Замовлення", level=1)).to_be_visible()
        open_page(uk_page, "/automation/events/")
        expect(uk_page.get_by_role("heading", name="Історія подій")).to_be_visible()
        open_page(uk_page, "/settings/audit-log/")
        expect(uk_page.get_by_role("heading", name="Журнал змін")).to_be_visible()
    finally:
        context.close()

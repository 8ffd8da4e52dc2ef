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


def test_marketer_declares_params_sees_a_flagged_event_and_deletes_it(page, marketer):
    from auditlog.models import LogEntry

    from marketing.api.events import event_store
    from marketing.models import Event, EventType

    event_type = EventType.objects.create(key="purchase")
    log_in(page, marketer.username, PASSWORD)
    open_page(page, f"/automation/event-types/{event_type.pk}/declaration/")
    page.get_by_label("Name of param 1").fill("amount")
    page.get_by_label("Type of param 1").select_option("number")
    page.get_by_role("checkbox", name="Required").first.check()
    page.get_by_label("Store it, flagged invalid").check()
    page.get_by_role("button", name="Save declaration").click()
    expect(page.get_by_text("Declared params of purchase saved.")).to_be_visible()
    assert_accessible(page, "event type declaration")

    # The next event breaks it: stored, flagged, shown with its problem.
    event_id = event_store(
        {"eventTypeKey": "purchase", "keyValue": "a@example.com", "params": []}, version=1
    )
    open_page(page, "/automation/events/?invalid=true")
    page.get_by_test_id("event-link").click()
    expect(page.get_by_test_id("event-problem")).to_contain_text("amount: required")
    assert_accessible(page, "flagged event")
    assert_fits_phone(page, f"/automation/events/{event_id}/")

    asked = []

    def accept(dialog):
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.get_by_test_id("event-delete").click()
    expect(page.get_by_role("heading", name="Event history", level=1)).to_be_visible()
    assert asked and "audit log" in asked[0]
    assert not Event.objects.filter(pk=event_id).exists()
    assert LogEntry.objects.filter(object_id=event_id, action=LogEntry.Action.DELETE).exists()

    open_page(page, "/automation/events/analytics/")
    expect(page.get_by_role("heading", name="Event analytics", level=1)).to_be_visible()
    assert_accessible(page, "event analytics")

"""The marketer follows a contact's activity in a real Chromium: from the contact's page to
its timeline, filters it to clicks, and loads older items."""

import pytest
from playwright.sync_api import expect

from marketing.models import Event
from marketing.services import event_emit
from tests.factories import PASSWORD
from tests.marketing.test_activity import ago, history  # noqa: F401 (fixture)
from tests.support import browser as browser_support
from tests.support.browser import log_in, open_page

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_marketer_opens_the_timeline_filters_clicks_and_loads_older(
    page,
    marketer,
    history,  # noqa: F811
):
    ann = history["ann"]
    # Enough older events for a second page (a page holds 50 items).
    for n in range(50):
        event = event_emit(type_key="pageViewed", params={"n": n}, contact_id=ann.pk)
        Event.objects.filter(pk=event.pk).update(created_at=ago(days=2, minutes=n))

    log_in(page, marketer.username, PASSWORD)
    open_page(page, f"/contacts/{ann.pk}/")
    page.get_by_test_id("activity-link").click()
    expect(page.get_by_role("heading", name=f"Activity of {ann}")).to_be_visible()
    rows = page.get_by_test_id("activity-row")
    expect(rows).to_have_count(50)
    expect(rows.first).to_have_attribute("data-kind", "workflow")

    expect(page.get_by_text("Spring sale").first).to_be_visible()

    page.get_by_test_id("load-older").click()
    expect(rows).to_have_count(6)  # the oldest six of the 56
    expect(rows.last).to_contain_text("n=49")
    expect(page.get_by_test_id("load-older")).to_have_count(0)

    open_page(page, f"/contacts/{ann.pk}/activity/")
    page.get_by_label("Clicks").check()
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(page.get_by_test_id("clicked-link")).to_have_text("https://shop.example/sale")

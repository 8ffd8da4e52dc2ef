"""The audit log in a real Chromium: readable, filterable, accessible, and fits a phone."""

import pytest
from auditlog.context import set_actor
from playwright.sync_api import expect

from campaigns import lifecycle
from tests.contacts.factories import ContactFactory
from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.a11y import assert_accessible, assert_fits_phone
from tests.support.browser import log_in, open_page

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_NAME = "Spring sale for every loyal customer of the Kyiv and Lviv shops " * 2


def test_admin_reads_filters_and_pages_the_audit_log(page, admin_user, marketer):
    with set_actor(marketer):
        campaign = lifecycle.campaign_create(
            data={"name": LONG_NAME.strip(), "type": "blast", "channels": ["email"]}
        )
        campaign.status = "scheduled"
        campaign.save(update_fields=["status"])
    with set_actor(admin_user):
        for n in range(60):
            ContactFactory(email=f"chloé.müller{n}-with-a-rather-long-mailbox@bücher.example")

    log_in(page, admin_user.username, PASSWORD)
    open_page(page, "/settings/audit-log/")
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    expect(page.get_by_test_id("audit-entry")).to_have_count(50)
    assert_accessible(page, "audit log")
    assert_fits_phone(page, "/settings/audit-log/")

    page.get_by_label("Person").select_option(label=marketer.username)
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("Status changed from Draft to Scheduled")).to_be_visible()
    assert_accessible(page, "audit log filtered by person")

    open_page(page, "/settings/audit-log/?page=2")
    expect(page.locator("[aria-current=page]")).to_have_text("2")

    answer = page.goto("/settings/audit-log/?since=2026-12-10&until=2026-12-01")
    assert answer is not None and answer.status == 400
    expect(page.get_by_text("The end date is before the start date.")).to_be_visible()
    assert_accessible(page, "audit log with a filter error")

"""The API documentation page (Swagger UI at /api/docs/): Herald's schema with the
specification documents' examples, readable by everyone (axe with operations opened, their
examples and schemas shown) and usable on a phone."""

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.a11y import assert_accessible, assert_fits_phone
from tests.support.browser import log_in, open_page

# The shared fixtures, made visible to pytest in this module (conftest.py is shared by all).
browser = browser_support.browser
page = browser_support.page

pytestmark = pytest.mark.browser

OPENED = [
    # A request body with the eSputnik document's example, and a long one with several.
    "operations-v1-v1_contact_subscribe_create",
    "operations-v1-v1_contacts_create",
    # Answers with examples: numbers, booleans and nulls in the highlighted code.
    "operations-v1-v1_message_status_retrieve",
    "operations-crm-crm_marketing_campaigns_create",
]


def test_api_docs_show_the_documents_examples_and_pass_axe(page, admin_user):
    log_in(page, admin_user.username, PASSWORD)
    open_page(page, "/api/docs/")
    # Swagger UI renders the whole schema (about a hundred operations) before showing it.
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Herald API", timeout=30_000)
    assert page.locator("html").get_attribute("lang") == "en"

    for operation in OPENED:
        block = page.locator(f"#{operation}")
        block.locator(".opblock-summary-control").click()
        expect(block.locator(".opblock-body")).to_be_visible()
    subscribe = page.locator(f"#{OPENED[0]}")
    expect(subscribe.locator(".body-param__example")).to_contain_text('"formType": "abc"')
    campaign = page.locator(f"#{OPENED[3]}")
    expect(campaign.locator("select.examples-select-element").first).to_contain_text(
        "A campaign body (the campaigns document)"
    )
    # The deep link inside the operation's button is gone, the operation still opens by it.
    assert subscribe.locator(".opblock-summary-control a[href]").count() == 0

    assert_accessible(page, "/api/docs/ with operations open")
    assert_fits_phone(page, "/api/docs/")

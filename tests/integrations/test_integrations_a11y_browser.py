"""The integrations pages with data, in a real Chromium: accessible, fitting a phone, and in
Ukrainian for a Ukrainian reader."""

import pytest
from playwright.sync_api import expect

from config.core.models import Integration
from tests.factories import PASSWORD
from tests.integrations.test_integration_pages import KIND, connected
from tests.support import browser as browser_support
from tests.support.a11y import assert_accessible, assert_fits_phone
from tests.support.browser import log_in, open_page

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_integrations_list_and_form_are_accessible_and_fit_a_phone(page, admin_user):
    integration = connected(is_default=True)
    Integration.objects.filter(pk=integration.pk).update(
        last_error="535 5.7.8 authentication failed: the username and password were not accepted"
    )
    log_in(page, admin_user.username, PASSWORD)

    open_page(page, "/integrations/")
    expect(page.get_by_test_id("integration-row")).to_have_count(1)
    assert_accessible(page, "integrations list")
    assert_fits_phone(page, "/integrations/")

    # The integration's own page and the connect form: their fields come from the shared field
    # partial (integrations/_field.html), whose help-text ids are the workspace shell's.
    assert_fits_phone(page, f"/integrations/{integration.pk}/")
    open_page(page, f"/integrations/new/{KIND}/")
    page.get_by_test_id("save").click()
    expect(page.locator(".flash-error").first).to_be_visible()
    assert_fits_phone(page, f"/integrations/new/{KIND}/")

    # A key form sent empty: the error is shown next to its field.
    open_page(page, "/settings/api-keys/")
    page.get_by_text("Create an API key").click()
    # The server's answer, not the browser's own check of the required name.
    page.locator("details form").evaluate("form => form.setAttribute('novalidate', '')")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("small.flash-error").first).to_be_visible()
    assert_accessible(page, "API keys with an error")

    open_page(page, "/settings/api-keys/")
    assert_accessible(page, "API keys")
    assert_fits_phone(page, "/settings/api-keys/")


def test_integrations_speak_ukrainian(browser, live_server, admin_user):
    context = browser.new_context(base_url=live_server.url, locale="uk-UA")
    try:
        uk_page = context.new_page()
        log_in(uk_page, admin_user.username, PASSWORD)
        open_page(uk_page, "/integrations/")
        expect(uk_page.get_by_role("heading", name="Підключити провайдера")).to_be_visible()
    finally:
        context.close()

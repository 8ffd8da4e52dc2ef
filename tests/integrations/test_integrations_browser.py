"""In a real Chromium: an admin connects a provider through the Integrations page, sees the
provider's own error for a wrong key, fixes it, passes the connection test, copies the
webhook URL, and finds it offered as a campaign's Email service while the channels fit."""

import re

import pytest
from playwright.sync_api import expect

from config.core.models import Integration
from tests.factories import PASSWORD
from tests.integrations.test_integration_pages import KIND, LIVE_KEY, AccountAPI
from tests.support import browser as browser_support
from tests.support.browser import log_in, open_page

browser = browser_support.browser
page = browser_support.page

pytestmark = pytest.mark.browser


@pytest.fixture
def account_api():
    with AccountAPI() as api:
        yield api


def test_admin_connects_a_provider_tests_it_and_copies_the_webhook_url(
    page, admin_user, account_api, live_server, settings
):
    settings.HERALD_BASE_URL = live_server.url
    settings.HERALD_IMPORT_ALLOW_PRIVATE_URLS = True  # the account API is a local server
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, admin_user.username, PASSWORD)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Integrations").click()
    expect(page.get_by_role("heading", name="Integrations", level=1)).to_be_visible()
    page.get_by_test_id(f"connect-{KIND}").click()
    expect(page.get_by_role("heading", name="Connect Acme Mail (test)")).to_be_visible()

    # A wrong URL first: the form names the field and keeps nothing.
    page.get_by_label(re.compile(r"^Name")).fill("Acme bulk")
    page.get_by_label("Email", exact=True).check()
    page.get_by_label(re.compile(r"^API base URL")).fill("not a url")
    page.get_by_label(re.compile(r"^API key")).fill("key-wrong")
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("error-setting_base_url")).to_contain_text("http(s) URL")
    assert not Integration.objects.exists()
    assert "key-wrong" not in page.content()

    # The password field was not filled back: type the (wrong) key again with a good URL.
    page.get_by_label(re.compile(r"^API base URL")).fill(account_api.url)
    page.get_by_label(re.compile(r"^API key")).fill("key-wrong")
    page.get_by_test_id("save").click()
    expect(page.get_by_role("heading", name="Acme bulk", level=1)).to_be_visible()

    page.get_by_test_id("test-connection").click()
    expect(page.get_by_role("status").filter(has_text="Connection test failed")).to_contain_text(
        "401 invalid API key"
    )
    expect(page.get_by_test_id("last-error")).to_have_text("401 invalid API key")

    # Fix the key; the other settings stay as saved.
    page.get_by_label(re.compile(r"^API key")).fill(LIVE_KEY)
    page.get_by_test_id("save").click()
    expect(page.get_by_role("status").filter(has_text="saved")).to_be_visible()
    page.get_by_test_id("test-connection").click()
    expect(page.get_by_role("status").filter(has_text="Connection test passed")).to_contain_text(
        "account Acme Mail (pro)"
    )
    expect(page.get_by_test_id("last-check")).to_contain_text("connected")

    integration = Integration.objects.get()
    assert integration.secrets() == {"api_key": LIVE_KEY}
    assert LIVE_KEY not in page.content()

    webhook = f"{live_server.url}/webhooks/{integration.webhook_key}/"
    expect(page.get_by_test_id("webhook-url")).to_have_text(webhook)
    page.get_by_test_id("copy-webhook-url").click()
    expect(page.get_by_test_id("copy-webhook-url")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == webhook

    open_page(page, "/integrations/")
    row = page.get_by_test_id("integration-row")
    expect(row).to_contain_text("Acme bulk")
    expect(row).to_contain_text("Email")
    expect(row).to_contain_text("ok")

    # The campaign form offers it as the Email service while the campaign's channels fit it.
    open_page(page, "/campaigns/new/")
    option = page.locator("#id_integration option", has_text="Acme bulk")
    expect(option).to_be_enabled()
    sms = page.locator('input[name="channels"][value="sms"]')
    sms.check()
    expect(option).to_be_disabled()
    sms.uncheck()
    expect(option).to_be_enabled()

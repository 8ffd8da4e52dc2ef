"""The marketer's suppression journey in a real Chromium: from a contact whose address
bounced to the suppression list, lift it after confirming, add another by hand (a bad
address first)."""

import pytest
from playwright.sync_api import expect

from contacts.models import Suppression
from tests.contacts.factories import ContactFactory
from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.browser import log_in, open_page

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_marketer_sees_why_an_address_is_suppressed_lifts_it_and_adds_another(page, marketer):
    contact = ContactFactory(email="gone@example.com")
    Suppression.objects.create(
        channel="email",
        address="gone@example.com",
        reason="hard_bounce",
        detail="550 5.1.1 no such user",
        source="SES",
    )
    log_in(page, marketer.username, PASSWORD)
    open_page(page, f"/contacts/{contact.pk}/")
    banner = page.get_by_test_id("suppressed-banner")
    expect(banner).to_contain_text("hard bounce: 550 5.1.1 no such user")
    banner.get_by_test_id("suppression-link").click()

    rows = page.get_by_test_id("suppression-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("gone@example.com")
    asked: list[str] = []

    def dismiss(dialog):
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    rows.first.get_by_test_id("lift").click()
    expect(rows).to_have_count(1)  # dismissed: nothing happened
    assert asked and "gone@example.com" in asked[0]
    assert Suppression.objects.get().lifted_at is None

    page.once("dialog", lambda dialog: dialog.accept())
    rows.first.get_by_test_id("lift").click()
    expect(page.get_by_text("gone@example.com is no longer suppressed")).to_be_visible()
    expect(rows).to_have_count(0)

    page.get_by_role("button", name="Add address").click()
    page.locator("#id_address").fill("not an address")
    page.get_by_role("button", name="Suppress this address").click()
    expect(page.locator("small.error")).to_contain_text("is not a valid email address")
    page.locator("#id_address").fill("Legal@Example.com")
    page.locator("#id_detail").fill("legal request")
    page.get_by_role("button", name="Suppress this address").click()
    expect(page.get_by_text("legal@example.com is suppressed")).to_be_visible()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Added by hand")
    expect(rows.first).to_contain_text("legal request")

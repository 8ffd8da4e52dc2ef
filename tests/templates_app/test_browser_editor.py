"""A marketer writes a template in a real Chromium and watches the sandboxed preview follow."""

import pytest
from playwright.sync_api import expect

from contacts.models import Contact
from templates.models import MessageTemplate
from tests.contacts.factories import ContactFactory
from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.browser import log_in, open_page

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_marketer_types_and_the_preview_iframe_updates(page, marketer):
    contact: Contact = ContactFactory(first_name="Zoé", email="zoe@example.com")
    log_in(page, marketer.username, PASSWORD)
    open_page(page, "/templates/")
    page.get_by_role("button", name="Write the first template").click()

    page.get_by_label("Name *", exact=True).fill("Welcome")
    page.get_by_label("Subject", exact=True).fill("Hello $!contact.firstName")
    page.get_by_label("HTML", exact=True).fill(
        "<h1>Hi $!contact.firstName</h1><p>Code $!data.get('code')</p>"
    )
    frame = page.frame_locator('[data-testid="preview-frame"]')
    expect(frame.locator("h1")).to_have_text("Hi Alex")
    expect(page.get_by_test_id("preview-subject")).to_have_text("Hello Alex")

    # Sample data and a real contact flow into the preview.
    page.get_by_label("Sample data ($data), JSON", exact=True).fill('{"code": "SAVE10"}')
    expect(frame.locator("p")).to_have_text("Code SAVE10")
    page.get_by_label("Contact", exact=True).fill("zoe@example.com")
    expect(frame.locator("h1")).to_have_text("Hi Zoé")

    # A syntax error replaces the preview with the field, line and column.
    page.get_by_label("HTML", exact=True).fill("<h1>Hi</h1>\n#if($x)")
    errors = page.get_by_test_id("preview-errors")
    expect(errors).to_contain_text("HTML")
    expect(errors).to_contain_text("Line 2")
    page.get_by_label("Sample data ($data), JSON", exact=True).fill('{"code": ')
    page.get_by_label("HTML", exact=True).fill("<h1>Fixed $!contact.firstName</h1>")
    expect(errors).to_contain_text("Invalid JSON")
    page.get_by_label("Sample data ($data), JSON", exact=True).fill("")
    expect(frame.locator("h1")).to_have_text("Fixed Zoé")

    # The sandbox forbids scripts; mobile width narrows the frame.
    iframe = page.get_by_test_id("preview-frame")
    expect(iframe).to_have_attribute("sandbox", "")
    page.get_by_test_id("width-mobile").check()
    expect(iframe).to_have_css("width", "375px")

    page.get_by_role("button", name="Create template").click()
    expect(page.get_by_role("heading", name="Welcome", level=1)).to_be_visible()
    template = MessageTemplate.objects.get()
    assert template.html == "<h1>Fixed $!contact.firstName</h1>"
    assert contact.pk  # the contact stayed untouched by previews
    # The editor of the saved template renders its preview on load.
    expect(frame.locator("h1")).to_have_text("Fixed Alex")

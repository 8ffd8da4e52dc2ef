"""The template pages with a template on them, in a real Chromium: the editor, version history,
languages and the block design page are accessible and fit a phone; they speak Ukrainian."""

import json

import pytest
from playwright.sync_api import expect

from templates.languages import template_language_create
from templates.services import template_create, template_publish
from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.a11y import assert_fits_phone, axe_findings
from tests.support.browser import log_in, open_page

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def assert_accessible(page, where: str) -> None:
    """tests.support.a11y.assert_accessible, except for axe's "frame-tested" on message
    previews: a preview is a sandboxed srcdoc frame that runs no script (the email is the
    marketer's content, shown as a mail client would), so axe cannot run inside it and always
    leaves it "to be tested". Any other frame, or any other finding, still fails."""
    sandboxed = page.evaluate(
        "() => [...document.querySelectorAll('iframe')].every(f => f.hasAttribute('sandbox')"
        " && !f.sandbox.contains('allow-scripts'))"
    )
    findings = [
        finding
        for finding in axe_findings(page)
        if not (finding["rule"] == "frame-tested" and sandboxed)
    ]
    assert not findings, f"axe on {where}:\n" + json.dumps(findings, indent=1)


LONG_SUBJECT = (
    "Spring prices in $!contact.fields.get('City') are down this week for every loyal customer"
)


@pytest.fixture
def spring():
    template = template_create(
        name="Spring sale for the Kyiv and Lviv shops, second reminder with the full catalogue",
        subject=LONG_SUBJECT,
        from_name="Крамниця Бюхер",
        from_email="news@shop.example",
        html="<h1>Hello $!contact.firstName</h1><p>A_very_long_unbroken_word_" + "x" * 80 + "</p>",
    )
    template_publish(template=template)
    template_publish(template=template)
    template_language_create(
        template=template, language_code="uk", subject="Весняний розпродаж", html="<p>Привіт</p>"
    )
    return template


def test_template_pages_are_accessible_and_fit_a_phone(page, marketer, spring):
    log_in(page, marketer.username, PASSWORD)
    pages = {
        "templates list": "/templates/",
        "template editor": f"/templates/{spring.pk}/",
        "version history": f"/templates/{spring.pk}/versions/",
        "one version": f"/templates/{spring.pk}/versions/1/",
        "languages": f"/templates/{spring.pk}/languages/",
        "block design starters": f"/templates/{spring.pk}/design/?pick=1",
    }
    for name, path in pages.items():
        open_page(page, path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert_accessible(page, name)
        assert_fits_phone(page, path)

    # The editor with an error shown next to its field (the field's notes come from the
    # shared field partial, templates/_field.html, whose error ids are the workspace shell's).
    open_page(page, f"/templates/{spring.pk}/")
    page.get_by_label("Subject", exact=True).fill("#if($x")
    page.get_by_test_id("save").click()
    expect(page.locator("[aria-invalid=true]").first).to_be_visible()
    assert_fits_phone(page, f"/templates/{spring.pk}/")


def test_template_pages_speak_ukrainian(browser, live_server, marketer, spring):
    context = browser.new_context(base_url=live_server.url, locale="uk-UA")
    try:
        uk_page = context.new_page()
        log_in(uk_page, marketer.username, PASSWORD)
        open_page(uk_page, f"/templates/{spring.pk}/versions/")
        expect(uk_page.get_by_role("heading", name=f"Версії шаблону {spring.name}")).to_be_visible()
        open_page(uk_page, f"/templates/{spring.pk}/languages/")
        expect(uk_page.get_by_role("heading", name="Додати мовну версію")).to_be_visible()
    finally:
        context.close()

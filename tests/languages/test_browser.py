"""A marketer adds a language version in a real Chromium and previews it per language."""

import pytest
from playwright.sync_api import expect

from templates.services import template_create
from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.browser import log_in, open_page

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_marketer_adds_a_language_version_and_previews_it(page, marketer):
    template = template_create(
        name="Spring", subject="Spring sale, $!contact.firstName", html="<h1>Hello</h1>"
    )
    log_in(page, marketer.username, PASSWORD)
    open_page(page, f"/templates/{template.pk}/")
    page.get_by_test_id("languages-link").click()
    expect(page.get_by_test_id("empty-state")).to_be_visible()

    form = page.get_by_test_id("language-form")
    form.get_by_label("Language code").fill("uk")
    form.get_by_label("Subject", exact=True).fill("Весна, $!contact.firstName")
    form.get_by_label("HTML", exact=True).fill("<h1>Привіт</h1>")
    page.get_by_test_id("add-language").click()

    expect(page.get_by_test_id("language-row")).to_have_count(1)
    expect(page.get_by_test_id("preview-subject")).to_have_text("Весна, Alex")
    frame = page.frame_locator('[data-testid="preview-frame"]')
    expect(frame.locator("h1")).to_have_text("Привіт")

    # The language selector switches the preview back to the main content.
    page.get_by_test_id("preview-language").select_option("")
    page.get_by_test_id("preview-show").click()
    expect(page.get_by_test_id("preview-subject")).to_have_text("Spring sale, Alex")

    # The same language again is a form error, and nothing is added.
    form = page.get_by_test_id("language-form")
    form.get_by_label("Language code").fill("UK")
    form.get_by_label("Subject", exact=True).fill("x")
    page.get_by_test_id("add-language").click()
    expect(page.get_by_test_id("error-language_code")).to_contain_text("already has")
    expect(page.get_by_test_id("language-row")).to_have_count(1)


def test_the_editor_preview_switches_to_a_saved_language_version(page, marketer):
    from templates.languages import template_language_create

    template = template_create(name="Spring", subject="Spring sale", html="<h1>Hello</h1>")
    template_language_create(
        template=template, language_code="uk", subject="Весна", html="<h1>Привіт</h1>"
    )
    log_in(page, marketer.username, PASSWORD)
    open_page(page, f"/templates/{template.pk}/")
    expect(page.get_by_test_id("preview-subject")).to_have_text("Spring sale")
    page.get_by_test_id("editor-preview-language").select_option("uk")
    expect(page.get_by_test_id("preview-subject")).to_have_text("Весна")
    frame = page.frame_locator('[data-testid="preview-frame"]')
    expect(frame.locator("h1")).to_have_text("Привіт")

"""The promo code journey in Chromium: from the navigation to a new pool, a CSV upload with a
duplicate, a generation, and the counts on the list."""

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.browser import log_in, open_page

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_marketer_uploads_a_pool_and_sees_the_counts(page, marketer, tmp_path):
    csv_file = tmp_path / "codes.csv"
    csv_file.write_text("code\nSPRING-1\nSPRING-2\nSPRING-1\nSPRING-3\n", encoding="utf-8")

    log_in(page, marketer.username, PASSWORD)
    open_page(page, "/")
    page.get_by_role("link", name="Promo codes").click()
    expect(page.get_by_test_id("empty-state")).to_be_visible()
    form = page.get_by_test_id("pool-form")
    form.get_by_label("Name").fill("Spring sale")
    form.get_by_label("Key").fill("SPRING")
    form.get_by_role("button", name="Create pool").click()

    upload = page.get_by_test_id("upload-form")
    upload.get_by_label("CSV file").set_input_files(str(csv_file))
    upload.get_by_role("button", name="Upload").click()
    expect(page.get_by_text("3 codes added; 1 duplicates skipped.")).to_be_visible()
    expect(page.get_by_test_id("duplicate-row")).to_contain_text("repeats line 2")
    expect(page.get_by_test_id("pool-free")).to_have_text("3")

    generate = page.get_by_test_id("generate-form")
    generate.get_by_label("Count *", exact=True).fill("20")
    generate.get_by_label("Prefix", exact=True).fill("SPR-")
    generate.get_by_role("button", name="Generate").click()
    expect(page.get_by_text("20 codes generated.")).to_be_visible()

    page.get_by_role("link", name="All pools").click()
    row = page.get_by_test_id("pool-row")
    expect(row).to_contain_text("Spring sale")
    expect(row.get_by_test_id("pool-free")).to_have_text("23")
    expect(row.get_by_test_id("pool-assigned")).to_have_text("0")

"""A marketer sets up UTM tags on a campaign in a real Chromium."""

import pytest
from playwright.sync_api import expect

from tests.campaigns.test_pipeline import make_campaign
from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.browser import log_in, open_page

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_marketer_sets_utm_tags_on_a_campaign(page, marketer):
    campaign = make_campaign(name="Autumn Drop", status="draft")
    log_in(page, marketer.username, PASSWORD)
    open_page(page, f"/campaigns/{campaign.pk}/")
    expect(page.get_by_test_id("campaign-utm")).to_contain_text("off")
    page.get_by_test_id("utm-link").click()

    form = page.get_by_test_id("utm-form")
    form.get_by_label("Add UTM tags to tracked links").check()
    form.get_by_label("Medium").fill("news letter")
    form.get_by_label("Source").fill("bad/value")
    page.get_by_test_id("save-utm").click()
    expect(page.get_by_test_id("utm-form")).to_contain_text("only letters, digits")

    page.get_by_test_id("utm-form").get_by_label("Source").fill("")
    page.get_by_test_id("save-utm").click()
    utm = page.get_by_test_id("campaign-utm")
    expect(utm).to_contain_text("utm_source=herald")
    expect(utm).to_contain_text("utm_medium=news letter")
    expect(utm).to_contain_text("utm_campaign=autumn-drop")

"""Send rules in a real Chromium: a marketer sets a campaign's local send time and sending
window on its form and sees them on the campaign page; an admin sets a frequency cap."""

import pytest
from playwright.sync_api import expect

from campaigns.models import Campaign, FrequencyCap
from tests.campaigns.support import email_template, segment_with
from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.browser import log_in, open_page

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_marketer_sets_local_send_time_and_window_on_a_campaign(page, marketer):
    segment, _ = segment_with(2, name="Night owls")
    template = email_template("Quiet mail")
    log_in(page, marketer.username, PASSWORD)
    open_page(page, "/campaigns/new/")
    page.get_by_label("Name").fill("Morning news")
    page.get_by_label("Audience (saved segment)").select_option(str(segment.pk))
    page.locator("#id_template").select_option(str(template.pk))
    rules = page.get_by_test_id("send-rules")
    rules.get_by_label("Send at (each contact's local time)").fill("10:00")
    # A window that never opens is refused on its field, and nothing is saved.
    rules.get_by_label("Allowed from").fill("09:00")
    rules.get_by_label("until").fill("09:00")
    page.get_by_test_id("save-campaign").click()
    expect(rules.locator(".error")).to_contain_text("never opens")
    assert not Campaign.objects.exists()

    rules.get_by_label("until").fill("20:00")
    for day in ("Mon", "Tue", "Wed", "Thu", "Fri"):
        rules.get_by_label(day, exact=True).check()
    page.get_by_test_id("save-campaign").click()

    expect(page.get_by_test_id("send-rules")).to_have_text(
        "at 10:00 in each contact's time zone; only 09:00 to 20:00 on Mon, Tue, Wed, Thu, Fri "
        "(recipient's time)"
    )
    campaign = Campaign.objects.get()
    assert campaign.send_window == {"from": "09:00", "to": "20:00", "days": [1, 2, 3, 4, 5]}
    assert campaign.send_local_time.strftime("%H:%M") == "10:00"

    # The edit form shows what was saved.
    open_page(page, f"/campaigns/{campaign.pk}/edit/")
    expect(page.locator("#id_send_local_time")).to_have_value("10:00")
    expect(page.locator("#id_window_to")).to_have_value("20:00")
    expect(page.get_by_test_id("send-rules").get_by_label("Sat", exact=True)).not_to_be_checked()


def test_admin_sets_a_frequency_cap_from_the_settings_page(page, admin_user):
    log_in(page, admin_user.username, PASSWORD)
    open_page(page, "/settings/")
    page.get_by_role("link", name="Frequency caps").click()
    form = page.get_by_test_id("frequency-caps")
    form.locator("#id_email_limit").fill("3")
    form.locator("#id_email_period").fill("7")
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Frequency caps saved.")).to_be_visible()
    assert list(FrequencyCap.objects.values_list("channel", "limit", "period_days")) == [
        ("email", 3, 7)
    ]

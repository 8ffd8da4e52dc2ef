"""The campaign section in a real Chromium: a campaign created through the form (type
switching, the time-zone picker), a test send into a real SMTP server, a launch confirmed by
typing the campaign's name, the run sent and completed; and every campaign page (list, form
with errors, detail, launch confirmation, A/B test and resend, UTM, promo codes, message log)
passes axe and fits a phone with realistic data on it."""

import pytest
from playwright.sync_api import expect

from campaigns import lifecycle
from campaigns.delivery.engine import run_send, send_request_process
from campaigns.models import Campaign, CampaignRun, Delivery
from campaigns.promo.services import promo_codes_generate, promo_pool_create
from tests.campaigns.support import email_template, segment_with
from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.a11y import assert_accessible, assert_fits_phone
from tests.support.browser import log_in, open_page
from tests.support.smtp import SMTPSink, use_sink

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_NAME = "Spring collection launch for returning customers in Kyiv, Lviv and Odesa 2027"


@pytest.fixture
def sink(settings):
    with SMTPSink() as server:
        use_sink(settings, server)
        yield server


def test_marketer_creates_tests_launches_with_confirmation_and_sees_it_complete(
    page, marketer, sink, settings
):
    settings.HERALD_LAUNCH_CONFIRM_NAME_AT = 2
    segment, _ = segment_with(3, name="Spring prospects")
    template = email_template("Spring mail")
    log_in(page, marketer.username, PASSWORD)
    open_page(page, "/campaigns/new/")

    page.get_by_label("Name").fill("Spring blast")
    cron_box = page.get_by_test_id("cron-box")
    expect(cron_box).to_be_hidden()
    page.locator("#id_type").select_option("recurring")
    expect(cron_box).to_be_visible()
    page.locator("#id_type").select_option("blast")
    expect(cron_box).to_be_hidden()
    zone = page.locator("#id_timezone")
    expect(zone).to_have_attribute("list", "time-zones")
    zone.fill("Europe/Kyiv")
    page.get_by_label("Audience (saved segment)").select_option(str(segment.pk))
    expect(page.get_by_test_id("reach")).to_have_text("3")
    page.locator("#id_template").select_option(str(template.pk))
    page.get_by_test_id("save-campaign").click()
    expect(page.get_by_role("heading", name="Spring blast", level=1)).to_be_visible()
    campaign = Campaign.objects.get()
    assert campaign.timezone == "Europe/Kyiv" and campaign.cron == ""

    page.get_by_test_id("test-send").locator("summary").click()
    page.get_by_test_id("test-send-email").fill("me@shop.example")
    page.get_by_test_id("test-send-button").click()
    expect(page.locator(".flash-success")).to_contain_text("Test message to me@shop.example")
    test = Delivery.objects.get(locator="me@shop.example")
    send_request_process(send_request_id=test.send_request_id)
    [mail] = sink.messages
    assert str(mail["Subject"]).startswith("[Test] Spring is here") and mail["X-Herald-Test"]

    page.get_by_test_id("action-launch").click()
    expect(page.get_by_test_id("confirm-heading")).to_have_text("Send to 3 contacts now?")
    name_box = page.get_by_test_id("confirm-name")
    name_box.fill("Spring")
    page.get_by_test_id("confirm-launch").click()
    expect(page.get_by_role("alert")).to_contain_text("exactly as shown")
    expect(page.get_by_test_id("confirm-name")).to_have_attribute("aria-invalid", "true")
    assert Campaign.objects.get().status == "draft"
    page.get_by_test_id("confirm-name").fill("Spring blast")
    page.get_by_test_id("confirm-launch").click()
    expect(page.get_by_test_id("campaign-status")).to_have_text("Running")

    run = CampaignRun.objects.get(campaign=campaign)
    run_send(run_id=run.pk)
    assert len(sink.messages) == 4
    page.reload()
    expect(page.get_by_test_id("campaign-status")).to_have_text("Completed")


def test_campaign_pages_are_accessible_and_fit_a_phone(page, marketer, settings):
    settings.HERALD_LAUNCH_CONFIRM_NAME_AT = 2
    segment, _ = segment_with(4, name="Returning customers with a long segment name, Kyiv")
    template = email_template("Spring newsletter with a rather long template name")
    body = {
        "type": "blast",
        "channels": ["email"],
        "audienceId": segment.pk,
        "templateId": template.pk,
        "schedule": {"timezone": "Europe/Kyiv"},
        "utm": {"enabled": True, "campaign": "spring-collection-2027"},
    }
    draft = lifecycle.campaign_create(data={**body, "name": LONG_NAME})
    for number in range(3):
        lifecycle.campaign_create(data={**body, "name": f"Weekly digest {number + 1}"})
    sent = lifecycle.campaign_create(data={**body, "name": "Autumn sale"})
    run = lifecycle.campaign_launch_now(campaign=sent)
    pool = promo_pool_create(name="Spring discount codes for returning customers", key="SPRING")
    promo_codes_generate(pool=pool, count=25)
    delivery = Delivery.objects.filter(run=run).first()

    log_in(page, marketer.username, PASSWORD)
    pages = [
        "/campaigns/",
        f"/campaigns/{draft.pk}/",
        f"/campaigns/{sent.pk}/",
        f"/campaigns/{draft.pk}/edit/",
        f"/campaigns/{draft.pk}/launch/",
        f"/campaigns/{draft.pk}/ab-test/",
        f"/campaigns/{draft.pk}/utm/",
        "/promo-codes/",
        f"/promo-codes/{pool.pk}/",
        "/messages/",
        f"/messages/{delivery.request_id}/",
    ]
    for path in pages:
        open_page(page, path)
        assert_accessible(page, path)
        assert_fits_phone(page, path)

    # Forms with their errors shown.
    open_page(page, "/campaigns/new/")
    page.get_by_test_id("save-campaign").click()
    expect(page.locator("small.error").first).to_be_visible()
    assert_accessible(page, "campaign form with errors")
    open_page(page, f"/campaigns/{draft.pk}/launch/")
    page.get_by_test_id("confirm-launch").click()
    expect(page.get_by_test_id("confirm-name")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page, "launch confirmation with its error")


def test_the_confirmation_in_russian(browser, live_server, marketer):
    segment, _ = segment_with(2)
    campaign = lifecycle.campaign_create(
        data={
            "name": "Spring",
            "type": "blast",
            "channels": ["email"],
            "audienceId": segment.pk,
            "templateId": email_template().pk,
        }
    )
    context = browser.new_context(base_url=live_server.url, locale="ru-RU")
    try:
        tab = context.new_page()
        log_in(tab, marketer.username, PASSWORD)
        open_page(tab, f"/campaigns/{campaign.pk}/launch/")
        expect(tab.get_by_test_id("confirm-heading")).to_have_text("Отправить 2 контактам сейчас?")
    finally:
        context.close()

"""Campaign pages in a real Chromium: the report draws its Chart.js timeline without
JavaScript errors, and the form's live reach and recurrence helpers answer."""

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from campaigns.analytics import stats_refresh
from tests.campaigns.support import email_template, segment_with
from tests.campaigns.test_analytics import add_event, make_campaign, make_delivery, make_run
from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.browser import log_in, open_page

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_report_draws_the_timeline_chart_and_lists_links(page, viewer):
    campaign = make_campaign("Spring launch")
    run = make_run(campaign, 1)
    t0 = run.started_at
    clicked = make_delivery(
        run,
        1,
        status="clicked",
        sent_at=t0,
        opened_at=t0,
        clicked_at=t0,
        open_count=1,
        click_count=1,
    )
    add_event(clicked, "opened", t0)
    add_event(clicked, "clicked", t0 + timedelta(hours=1), url="https://shop.example/spring")
    make_delivery(run, 2, status="sent", sent_at=t0)
    stats_refresh(run_ids=[run.pk])

    log_in(page, viewer.username, PASSWORD)
    open_page(page, f"/campaigns/{campaign.pk}/report/")
    expect(page.get_by_test_id("total-sends")).to_have_text("2")
    canvas = page.get_by_test_id("timeline-chart")
    expect(canvas).to_be_visible()
    # Chart.js drew into the canvas: it sized it and registered the chart on it.
    page.wait_for_function("() => window.heraldTimeline && window.Chart.getChart('timeline-chart')")
    points = page.evaluate("() => window.heraldTimeline.data.datasets.map(d => d.data)")
    assert points == [[1, 0], [0, 1]]
    assert page.evaluate("() => document.getElementById('timeline-chart').width") > 0
    expect(page.get_by_test_id("link-row")).to_contain_text("https://shop.example/spring")


def test_form_shows_live_reach_and_next_runs(page, marketer):
    segment, _ = segment_with(3, name="Spring prospects")
    email_template()
    log_in(page, marketer.username, PASSWORD)
    open_page(page, "/campaigns/")
    page.get_by_test_id("new-campaign").click()
    page.get_by_label("Audience (saved segment)").select_option(str(segment.pk))
    expect(page.get_by_test_id("reach")).to_have_text("3")
    page.locator("#id_type").select_option("recurring")
    page.locator("#id_timezone").fill("Europe/Berlin")
    page.get_by_label("Repeat (cron)").fill("0 9 * * 1")
    expect(page.get_by_test_id("recurrence-description")).to_contain_text(
        "At 09:00 AM, only on Monday"
    )
    expect(page.get_by_test_id("recurrence-next").locator("li")).to_have_count(5)


def test_marketer_creates_launches_and_watches_a_campaign(page, marketer):
    segment, _ = segment_with(3, name="Spring prospects")
    template = email_template("Spring mail")
    log_in(page, marketer.username, PASSWORD)
    open_page(page, "/campaigns/")
    expect(page.get_by_test_id("empty-state")).to_contain_text("No campaigns yet — create one")
    page.get_by_test_id("new-campaign").click()
    page.get_by_label("Name").fill("Spring blast")
    page.get_by_label("Audience (saved segment)").select_option(str(segment.pk))
    page.locator("#id_template").select_option(str(template.pk))
    expect(page.get_by_test_id("template-preview")).to_have_attribute(
        "href", f"/templates/{template.pk}/"
    )
    page.get_by_test_id("save-campaign").click()
    expect(page.get_by_role("heading", name="Spring blast")).to_be_visible()
    expect(page.get_by_test_id("campaign-status")).to_have_text("Draft")

    page.get_by_test_id("action-launch").click()
    expect(page.get_by_test_id("confirm-heading")).to_have_text("Send to 3 contacts now?")
    page.get_by_test_id("confirm-launch").click()
    expect(page.get_by_test_id("campaign-status")).to_have_text("Running")
    expect(page.get_by_test_id("progress")).to_contain_text("of 3 recipients")
    expect(page.get_by_test_id("action-pause")).to_be_visible()
    page.get_by_test_id("action-pause").click()
    expect(page.get_by_test_id("campaign-status")).to_have_text("Paused")

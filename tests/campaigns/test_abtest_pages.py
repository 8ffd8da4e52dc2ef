"""The A/B test page: set up before launch (form errors from the same rules as the API),
results after with the marketer's pick, the variants in the report; and a real Chromium
going through setting up a test and reading the report."""

import pytest
from playwright.sync_api import expect

from campaigns import abtest, lifecycle
from campaigns.models import ABTest, CampaignResend, Delivery
from tests.campaigns.test_pipeline import make_campaign, vip
from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.browser import log_in, open_page

browser = browser_support.browser
page = browser_support.page

FORM = {
    "enabled": "on",
    "test_percent": "50",
    "winner_metric": "clicks",
    "wait_hours": "2",
    "winner_selection": "manual",
    "v0_subject": "Spring A",
    "v1_subject": "Spring B",
    "v2_from_name": "Team C",
    "resend_enabled": "on",
    "resend_after_hours": "24",
    "resend_subject": "Did you miss it?",
}


@pytest.mark.django_db
def test_page_saves_the_test_and_resend_through_the_campaign_rules(client, marketer):
    campaign = make_campaign(status="draft")
    client.force_login(marketer)

    response = client.post(f"/campaigns/{campaign.pk}/ab-test/", FORM)

    assert response.status_code == 302
    test = ABTest.objects.get(campaign=campaign)
    assert (test.test_percent, test.winner_metric, test.winner_selection) == (
        50,
        "clicks",
        "manual",
    )
    assert list(test.variants.values_list("subject", "from_name")) == [
        ("Spring A", ""),
        ("Spring B", ""),
        ("", "Team C"),
    ]
    assert CampaignResend.objects.get(campaign=campaign).subject == "Did you miss it?"
    detail = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert f"/campaigns/{campaign.pk}/ab-test/" in detail


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"test_percent": "60"}, "test_percent", "between 1 and 50"),
        ({"wait_hours": "-2"}, "wait_hours", "between 0"),
        ({"resend_subject": ""}, "resend_subject", "is required"),
    ],
)
def test_page_shows_bad_input_on_its_field_and_saves_nothing(
    client, marketer, change, field, words
):
    campaign = make_campaign(status="draft")
    client.force_login(marketer)

    response = client.post(f"/campaigns/{campaign.pk}/ab-test/", {**FORM, **change})

    assert response.status_code == 400
    assert words in " ".join(response.context["form"].errors[field])
    assert not ABTest.objects.filter(campaign=campaign).exists()
    assert not CampaignResend.objects.filter(campaign=campaign).exists()


@pytest.mark.django_db
def test_viewer_cannot_change_the_ab_test_settings(client, viewer):
    campaign = make_campaign(status="draft")
    client.force_login(viewer)

    response = client.post(
        f"/campaigns/{campaign.pk}/ab-test/", {"variant_subject": ["A", "B"], "test_percent": 50}
    )

    assert response.status_code == 403
    assert not ABTest.objects.filter(campaign=campaign).exists()


def test_viewer_reads_results_but_cannot_pick(client, viewer):
    vip(20)
    campaign = make_campaign(status="draft")
    abtest.ab_test_set(
        campaign=campaign,
        config=abtest.ab_test_clean(
            {"variants": [{"subject": "A"}, {"subject": "B"}], "testPercent": 50},
            channel="email",
        ),
    )
    lifecycle.campaign_launch_now(campaign=campaign)
    client.force_login(viewer)

    page_html = client.get(f"/campaigns/{campaign.pk}/ab-test/").content.decode()
    picked = client.post(f"/campaigns/{campaign.pk}/ab-test/winner/", {"variant": "A"})

    assert 'data-testid="ab-variants"' in page_html
    assert "ab-pick-A" not in page_html
    assert picked.status_code == 403
    assert ABTest.objects.get(campaign=campaign).winner is None


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_marketer_sets_up_a_test_launches_and_picks_the_winner_from_the_report(page, marketer):
    vip(40)
    campaign = make_campaign(status="draft", name="Spring sale")
    log_in(page, marketer.username, PASSWORD)

    open_page(page, f"/campaigns/{campaign.pk}/")
    page.get_by_test_id("ab-test-link").click()
    page.get_by_label("Test variants of this campaign").check()
    page.get_by_label("Test share (% of the audience)").fill("50")
    page.get_by_label("Winner chosen").select_option("manual")
    page.get_by_label("A: subject").fill("Spring A")
    page.get_by_label("B: subject").fill("Spring B")
    page.get_by_test_id("save-ab").click()
    expect(page.get_by_text("A/B test and resend saved.")).to_be_visible()

    open_page(page, f"/campaigns/{campaign.pk}/")
    page.get_by_test_id("action-launch").click()
    page.get_by_test_id("confirm-launch").click()
    expect(page.get_by_test_id("campaign-status")).to_have_text("Running")
    test = ABTest.objects.get(campaign=campaign)
    run_id = test.run_id
    Delivery.objects.filter(run_id=run_id, ab_variant=1).update(
        opened_at="2026-01-01T00:00:00Z", clicked_at="2026-01-01T00:00:00Z"
    )
    abtest.ab_figures_refresh(test=test)

    open_page(page, f"/campaigns/{campaign.pk}/report/")
    rows = page.get_by_test_id("ab-variant-row")
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_contain_text("Spring B")
    expect(rows.nth(1)).to_contain_text("100.0%")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("ab-pick-B").click()
    expect(page.get_by_test_id("ab-winner")).to_have_text("variant B")
    assert Delivery.objects.filter(run_id=run_id).count() == 40

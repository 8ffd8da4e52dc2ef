"""The marketer's day in a real Chromium, on pages full of data: the contact list (sorting,
paging, bulk actions with the keyboard), a contact's page with its activity, the RFM grid and
a campaign report with its people. Each page passes axe and fits a phone."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from campaigns.analytics import stats_refresh
from contacts.models import Contact
from marketing.orders import orders_upsert
from marketing.rfm import rfm_recompute
from tests.campaigns.test_analytics import make_campaign, make_delivery, make_run
from tests.factories import PASSWORD
from tests.marketing.test_activity import history  # noqa: F401 (fixture)
from tests.marketing.test_api_orders import order
from tests.support import browser as browser_support
from tests.support.a11y import assert_accessible, assert_fits_phone
from tests.support.browser import log_in, open_page

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG = "Maximiliana-Konstantynivna-Oleksandr"  # 36 of the 40 a name may hold


def crowd(n: int = 60) -> None:
    now = timezone.now()
    Contact.objects.bulk_create(
        [
            Contact(
                first_name=f"{LONG}{i:02}",
                last_name="Shevchenko-Kvitka-Osnovianenko",
                email=f"very.long.address.number.{i:02}@subdomain.example-shop.com.ua",
                phone=f"+3809425836{i:02}",
                tags=["vip", "newsletter", "kyiv", "b2b", "summer-sale-2026", "loyal"],
            )
            for i in range(n)
        ]
    )
    Contact.objects.update(created_at=now - timedelta(days=1))


def test_contact_list_sorts_pages_and_bulk_tags_with_the_keyboard(page, marketer):
    crowd()
    log_in(page, marketer.username, PASSWORD)
    open_page(page, "/contacts/?sort=email&size=25")
    expect(page.get_by_test_id("contact-count")).to_contain_text("60 contacts")
    expect(page.get_by_test_id("contact-row")).to_have_count(25)
    expect(page.locator("th[aria-sort=ascending]")).to_contain_text("Email")
    assert_accessible(page, "contact list")

    # Sorting descending keeps the page size; page 3 holds the last ten.
    page.get_by_test_id("sort-email").click()
    expect(page.locator("th[aria-sort=descending]")).to_contain_text("Email")
    page.get_by_test_id("page-last").click()
    expect(page.get_by_test_id("contact-row")).to_have_count(10)
    expect(page.get_by_test_id("contact-row").last).to_contain_text("number.00@")

    # Keyboard only: tick two rows with Space, pick the action, type the tag, Enter.
    boxes = page.locator(".row-select")
    boxes.nth(0).focus()
    page.keyboard.press("Space")
    boxes.nth(1).focus()
    page.keyboard.press("Space")
    expect(page.get_by_test_id("bulk-selected")).to_have_text("Selected: 2")
    page.get_by_test_id("bulk-tag").focus()
    page.keyboard.type("spring")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Tag “spring” added to 2 contacts.")).to_be_visible()
    assert Contact.objects.filter(tags__contains=["spring"]).count() == 2

    # Select the whole page, ask for the deletion, see the count, confirm.
    page.get_by_test_id("select-page").check()
    page.get_by_test_id("bulk-action").select_option("delete")
    page.get_by_test_id("bulk-apply").click()
    expect(page.get_by_test_id("bulk-question")).to_have_text("Delete 10 contacts?")
    assert_accessible(page, "bulk confirmation")
    page.get_by_test_id("bulk-confirm").click()
    expect(page.get_by_text("10 contacts deleted.")).to_be_visible()
    assert Contact.objects.alive().count() == 50

    assert_fits_phone(page, "/contacts/?size=100")


def test_contact_list_in_ukrainian(browser, live_server, marketer):
    crowd(3)
    context = browser.new_context(base_url=live_server.url, locale="uk-UA")
    try:
        ukrainian = context.new_page()
        log_in(ukrainian, marketer.username, PASSWORD)
        open_page(ukrainian, "/contacts/")
        expect(ukrainian.get_by_role("heading", level=1)).to_have_text("Контакти")
        expect(ukrainian.get_by_test_id("contact-count")).to_contain_text("3 контакти")
    finally:
        context.close()


def test_contact_page_shows_the_latest_activity(page, marketer, history):  # noqa: F811
    ann = history["ann"]
    ann.tags = ["vip", "kyiv"]
    ann.last_name = LONG
    ann.save()
    log_in(page, marketer.username, PASSWORD)
    open_page(page, f"/contacts/{ann.pk}/")
    section = page.get_by_test_id("activity-section")
    expect(section.get_by_test_id("activity-row")).to_have_count(6)
    expect(section).to_contain_text("Spring sale")
    expect(section).to_contain_text("Clicked a link")
    expect(section.get_by_test_id("activity-all")).to_be_visible()
    assert_accessible(page, "contact page")
    assert_fits_phone(page, f"/contacts/{ann.pk}/")
    open_page(page, f"/contacts/{ann.pk}/activity/")
    assert_accessible(page, "activity page")


def test_rfm_grid_names_its_groups_and_makes_a_segment(page, marketer):
    orders_upsert(
        orders=[
            order(
                externalOrderId=str(n),
                email=f"buyer{n % 7}@example.com",
                status="DELIVERED",
                date=f"2026-01-{n + 1:02}T00:00:00Z",
            )
            for n in range(20)
        ]
    )
    rfm_recompute()
    log_in(page, marketer.username, PASSWORD)
    open_page(page, "/orders/rfm/")
    groups = page.get_by_test_id("rfm-groups")
    expect(groups).to_contain_text("Champions")
    expect(groups).to_contain_text("Can't lose them")
    expect(page.get_by_test_id("rfm-group-hibernating")).to_contain_text("Hibernating")
    assert_accessible(page, "RFM grid")
    assert_fits_phone(page, "/orders/rfm/")
    open_page(page, "/orders/rfm/")
    # A group with contacts and no segment yet offers to create one, named after it.
    row = page.locator("tr:has([data-testid=rfm-group-create])").first
    name = row.locator("th").inner_text()
    row.get_by_test_id("rfm-group-create").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    open_page(page, "/orders/rfm/")
    expect(page.locator("tr", has_text=name).get_by_test_id("rfm-group-segment")).to_be_visible()


def test_campaign_report_lists_the_people_who_opened(page, marketer):
    campaign = make_campaign(name="Spring launch with a rather long name for a phone screen")
    run = make_run(campaign)
    t0 = timezone.now() - timedelta(hours=2)
    for n in range(60):
        make_delivery(
            run,
            n,
            status="opened" if n % 2 else "sent",
            sent_at=t0,
            opened_at=t0 + timedelta(minutes=n) if n % 2 else None,
            open_count=1 if n % 2 else 0,
        )
    make_delivery(run, 99, status="bounced", sent_at=t0, failed_at=t0)
    stats_refresh(run_ids=[run.pk])
    log_in(page, marketer.username, PASSWORD)
    open_page(page, f"/campaigns/{campaign.pk}/report/")
    expect(page.get_by_test_id("total-delivered")).to_have_text("60")
    expect(page.get_by_test_id("delivered-basis")).to_contain_text("sent and not bounced")
    assert_accessible(page, "report")
    assert_fits_phone(page, f"/campaigns/{campaign.pk}/report/")
    open_page(page, f"/campaigns/{campaign.pk}/report/")
    page.get_by_test_id("people-opened").click()
    expect(page.get_by_test_id("person-row")).to_have_count(30)
    expect(page.get_by_test_id("people-csv")).to_be_visible()
    assert_accessible(page, "people who opened")
    assert_fits_phone(page, f"/campaigns/{campaign.pk}/report/opened/")

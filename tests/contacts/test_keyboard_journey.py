"""Keyboard only, in a real Chromium: build a dynamic segment with two conditions, save it,
then schedule a blast campaign to it. Every interaction is `page.keyboard` (Tab, Shift+Tab,
Enter, Space, arrows, typing); the test only reads where focus is."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from campaigns.models import Campaign
from contacts.models import Segment
from tests.campaigns.support import email_template
from tests.contacts.factories import ContactFactory
from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.browser import log_in, open_page

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MAX_TABS = 80


def focused(page, selector: str) -> bool:
    return page.evaluate(
        "(s) => !!document.activeElement && document.activeElement.matches(s)", selector
    )


def tab_to(page, selector: str, *, backwards: bool = False) -> None:
    """Press Tab (or Shift+Tab) until the focused element matches `selector`."""
    for _ in range(MAX_TABS):
        if focused(page, selector):
            return
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
    raise AssertionError(f"{selector} never took focus in {MAX_TABS} presses of Tab")


def wait_focus(page, selector: str) -> None:
    page.wait_for_function(
        "(s) => !!document.activeElement && document.activeElement.matches(s)", arg=selector
    )


def build_segment_with_the_keyboard(page) -> None:
    open_page(page, "/segments/new/")
    tab_to(page, "#id_name")
    page.keyboard.type("Kyiv VIPs")
    tab_to(page, "input[name=kind]")
    # Arrow keys move through a radio group and check the option they land on.
    for _ in range(3):
        if focused(page, "input[name=kind][value=dynamic]"):
            break
        page.keyboard.press("ArrowDown")
    assert focused(page, "input[name=kind][value=dynamic]:checked")
    page.keyboard.press("Enter")  # submits the form
    expect(page.get_by_role("heading", name="Kyiv VIPs")).to_be_visible()
    reach = page.get_by_test_id("reach")
    expect(reach).to_have_text("4")
    rows = page.get_by_test_id("filter-row")

    # First condition: Town is Kyiv. A new condition takes focus on its field.
    tab_to(page, "#add-condition")
    page.keyboard.press("Enter")
    expect(rows).to_have_count(1)
    wait_focus(page, ".filter-row select[name=field]")
    page.keyboard.type("Town")  # type-ahead picks the option; the row is re-rendered
    expect(rows.nth(0)).to_have_attribute("data-field", "town")
    # Focus came back to the same control after the re-render.
    wait_focus(page, ".filter-row select[name=field]")
    page.keyboard.press("Tab")  # operator: "is"
    page.keyboard.press("Tab")  # value
    assert focused(page, ".filter-row input[name=value]")
    page.keyboard.type("Kyiv")
    expect(reach).to_have_text("3")

    # Second condition: Tags has vip.
    tab_to(page, "#add-condition")
    page.keyboard.press("Enter")
    expect(rows).to_have_count(2)
    wait_focus(page, ".filter-row:nth-child(2) select[name=field]")
    page.keyboard.type("Tags")
    expect(rows.nth(1)).to_have_attribute("data-field", "tags")
    wait_focus(page, ".filter-row:nth-child(2) select[name=field]")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.type("vip")
    expect(reach).to_have_text("2")

    # A third condition added and removed with the keyboard: focus stays in the builder.
    tab_to(page, "#add-condition")
    page.keyboard.press("Enter")
    expect(rows).to_have_count(3)
    wait_focus(page, ".filter-row:nth-child(3) select[name=field]")
    tab_to(page, ".filter-row:nth-child(3) button[data-remove-closest]")
    page.keyboard.press("Enter")
    expect(rows).to_have_count(2)
    wait_focus(page, "#add-condition, .filter-row select[name=field]")

    tab_to(page, "[data-testid=save-filter]")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Filter of Kyiv VIPs saved.")).to_be_visible()


def schedule_campaign_with_the_keyboard(page, *, segment_name: str, template_name: str) -> None:
    """Today's campaign form (the campaigns engineer is changing it: adapt here only)."""
    open_page(page, "/campaigns/new/")
    tab_to(page, "#id_name")
    page.keyboard.type("Kyiv VIP spring blast")
    tab_to(page, "#id_segment")
    page.keyboard.type(segment_name)
    tab_to(page, "#id_template")
    page.keyboard.type(template_name)
    tab_to(page, "#id_start_at")
    start = timezone.now() + timedelta(days=30)
    # Chromium's datetime-local takes the digits segment by segment: mm dd yyyy, then hh mm.
    page.keyboard.type(start.strftime("%m%d%Y"))
    page.keyboard.press("ArrowRight")
    page.keyboard.type("0930")
    page.keyboard.type("A")
    tab_to(page, "[data-testid=save-campaign]")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Kyiv VIP spring blast")).to_be_visible()
    tab_to(page, "[data-testid=action-schedule]")
    page.keyboard.press("Enter")
    # Scheduling asks first: the confirmation page says who receives it, then, for a large
    # audience, asks for the campaign's name typed in; the keyboard does both.
    expect(page.get_by_test_id("confirm-heading")).to_have_text("Schedule for 2 contacts?")
    if page.get_by_test_id("confirm-name").count():
        tab_to(page, "[data-testid=confirm-name]")
        page.keyboard.type("Kyiv VIP spring blast")
    tab_to(page, "[data-testid=confirm-schedule]")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("campaign-status")).to_have_text("Scheduled")


def test_a_marketer_builds_a_segment_and_schedules_a_campaign_with_the_keyboard(page, marketer):
    for town, tags in [("Kyiv", ["vip"]), ("Kyiv", ["vip"]), ("Kyiv", []), ("Lviv", ["vip"])]:
        ContactFactory(town=town, tags=tags)
    email_template("Spring mail")
    log_in(page, marketer.username, PASSWORD)

    build_segment_with_the_keyboard(page)
    segment = Segment.objects.get(name="Kyiv VIPs")
    assert segment.kind == "dynamic"

    schedule_campaign_with_the_keyboard(page, segment_name="Kyiv VIPs", template_name="Spring mail")
    campaign = Campaign.objects.get(name="Kyiv VIP spring blast")
    assert campaign.status == "scheduled"
    assert campaign.segment_id == segment.pk
    assert campaign.start_at > timezone.now() + timedelta(days=29)

"""The marketer builds a dynamic segment in a real Chromium: rows, live reach, save."""

import re

import pytest
from playwright.sync_api import expect

from contacts.models import CustomField, CustomFieldType, Segment
from tests.contacts.factories import ContactFactory
from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.browser import log_in, open_page

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def settled(row) -> None:
    """htmx marks swapped-in content `htmx-added` until it has wired the element's own hx-*
    attributes; a change made before that would go unheard."""
    expect(row).not_to_have_class(re.compile(r"\bhtmx-added\b"))


def test_marketer_builds_a_dynamic_segment_and_watches_the_reach(page, marketer):
    points = CustomField.objects.create(name="Points", key="POINTS", type=CustomFieldType.NUMBER)
    for town, tags, score in [
        ("Kyiv", ["vip"], 150),
        ("Kyiv", [], 20),
        ("Kyiv", ["vip"], 90),
        ("Lviv", ["vip"], 300),
    ]:
        ContactFactory(town=town, tags=tags, fields={str(points.pk): score})

    log_in(page, marketer.username, PASSWORD)
    open_page(page, "/segments/")
    page.get_by_role("button", name="New segment").click()
    page.get_by_label("Name").fill("Kyiv VIPs")
    page.get_by_label("Dynamic").check()
    page.get_by_role("button", name="Create segment").click()
    expect(page.get_by_role("heading", name="Kyiv VIPs")).to_be_visible()
    reach = page.get_by_test_id("reach")
    expect(reach).to_have_text("4")

    # First condition: town is Kyiv.
    page.get_by_test_id("add-condition").click()
    rows = page.get_by_test_id("filter-row")
    expect(rows).to_have_count(1)
    first = rows.nth(0)
    settled(first)
    first.get_by_label("Field").select_option("town")
    # The row is re-rendered for its new field; typing before that would be swapped away.
    expect(first).to_have_attribute("data-field", "town")
    first.get_by_label("Value").fill("Kyiv")
    expect(reach).to_have_text("3")

    # Second condition on a custom field: its operators come from the server on field change.
    page.get_by_test_id("add-condition").click()
    expect(rows).to_have_count(2)
    second = rows.nth(1)
    settled(second)
    second.get_by_label("Field").select_option(label="Points")
    expect(second).to_have_attribute("data-field", f"fields.{points.pk}")
    settled(second)
    second.get_by_label("Operator").select_option("$gte")
    expect(second).to_have_attribute("data-op", "$gte")
    expect(second.get_by_label("Value")).to_have_attribute("type", "number")
    second.get_by_label("Value").fill("100")
    expect(reach).to_have_text("1")

    # Any instead of all.
    page.get_by_label("any of these conditions (OR)").check()
    expect(reach).to_have_text("4")
    page.get_by_label("all of these conditions (AND)").check()
    expect(reach).to_have_text("1")

    # Removing a condition recounts too.
    second.get_by_role("button", name="Remove condition").click()
    expect(rows).to_have_count(1)
    expect(reach).to_have_text("3")

    page.get_by_test_id("save-filter").click()
    expect(page.get_by_text("Filter of Kyiv VIPs saved.")).to_be_visible()
    assert Segment.objects.get(name="Kyiv VIPs").filter == {"town": {"$eq": "Kyiv"}}
    expect(page.get_by_test_id("filter-row")).to_have_count(1)
    expect(page.get_by_test_id("reach")).to_have_text("3")


def test_a_bad_value_shows_the_filter_path_live(page, marketer):
    points = CustomField.objects.create(name="Points", key="POINTS", type=CustomFieldType.NUMBER)
    segment = Segment.objects.create(name="Scores", kind="dynamic", filter={})
    log_in(page, marketer.username, PASSWORD)
    open_page(page, f"/segments/{segment.pk}/")
    page.get_by_text("Filter as JSON (for power users)").click()
    page.get_by_label("Filter as JSON").fill(f'{{"fields.{points.pk}": {{"$gt": "many"}}}}')
    expect(page.get_by_test_id("filter-error")).to_contain_text(
        f"fields.{points.pk}.$gt: expected a number"
    )
    page.get_by_label("Filter as JSON").fill(f'{{"fields.{points.pk}": {{"$gt": 5}}}}')
    expect(page.get_by_test_id("reach")).to_have_text("0")
    page.get_by_test_id("save-filter").click()
    expect(page.get_by_text("Filter of Scores saved.")).to_be_visible()
    segment.refresh_from_db()
    assert segment.filter == {f"fields.{points.pk}": {"$gt": 5}}

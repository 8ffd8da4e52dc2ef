"""In a real Chromium: a marketer sets a group schedule and stop conditions, adds a contact
block from the "Contact" group and fills it, and activates; the editor passes axe. The public
button page asks before it starts the workflow, passes axe and fits a phone."""

import pytest
from playwright.sync_api import expect

from contacts.models import SegmentKind
from marketing.models import EventType
from marketing.workflows.buttons import button_url
from marketing.workflows.models import Workflow, WorkflowRun
from tests.contacts.factories import ContactFactory, SegmentFactory
from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.a11y import assert_accessible, assert_fits_phone
from tests.support.browser import log_in, open_page
from tests.workflows.conftest import chain, make_workflow

browser = browser_support.browser
page = browser_support.page

pytestmark = pytest.mark.browser


def test_marketer_sets_a_schedule_stop_conditions_and_a_contact_block(page, marketer):
    group = SegmentFactory(name="Club members", kind=SegmentKind.STATIC)
    purchase = EventType.objects.create(key="purchase", name="Purchase")
    workflow = make_workflow({"start": "", "steps": []}, activate=False)
    log_in(page, marketer.username, PASSWORD)
    open_page(page, f"/automation/workflows/{workflow.pk}/")

    page.get_by_label("Starts when").select_option("schedule")
    page.locator("#id_segment").select_option(str(group.pk))
    page.get_by_label("Schedule", exact=True).select_option("week")
    page.get_by_label("Schedule at (HH:MM, organisation time)").fill("10:30")
    page.get_by_label("On (weekly schedule)").select_option("5")
    page.get_by_label("Stop a run when its contact produces one of these events").select_option(
        str(purchase.pk)
    )
    page.get_by_label("Stop a run when its contact unsubscribes").check()
    page.get_by_test_id("save-settings").click()
    expect(page.locator(".flash-success")).to_contain_text("Trigger and settings saved.")

    kinds = page.get_by_label("Kind of the new first step")
    expect(kinds.locator("optgroup[label='Contact'] option")).to_have_count(5)
    kinds.select_option("contact")
    page.get_by_test_id("add-first-step").click()
    step = page.get_by_test_id("step-s1")
    step.get_by_label("Fields, one per line").fill("firstName = {name}\ntown = Kyiv")
    step.get_by_label("Add tags (comma-separated)").fill("club, new")
    step.get_by_test_id("save-step-s1").click()
    expect(page.locator(".flash-success")).to_contain_text("Step s1 saved.")
    assert_accessible(page, "the editor with a contact block")
    page.get_by_test_id("activate").click()
    expect(page.locator(".flash-success")).to_contain_text("Active on version 1")

    workflow = Workflow.objects.get(pk=workflow.pk)
    assert workflow.trigger_kind == "schedule" and workflow.segment == group
    assert workflow.schedule == {"every": "week", "time": "10:30", "weekday": 5}
    assert workflow.stop_conditions == [
        {"type": "event", "event_type_id": purchase.pk},
        {"type": "unsubscribed"},
    ]
    [block] = workflow.current_version.graph["steps"]
    assert block["fields"] == [
        {"field": "firstName", "param": "name"},
        {"field": "town", "value": "Kyiv"},
    ]
    assert block["tags_add"] == ["club", "new"] and block["create"] is True

    step = page.get_by_test_id("step-s1")
    step.get_by_label("Fields, one per line").fill("shoeSize = 42")
    step.get_by_test_id("save-step-s1").click()
    expect(page.get_by_test_id("step-s1").get_by_role("alert")).to_contain_text(
        "shoeSize is not a contact field"
    )


def test_the_button_page_asks_first_then_thanks_and_is_accessible(page):
    ann = ContactFactory(email="ann@example.com")
    workflow = make_workflow(
        chain({"kind": "wait", "mode": "duration", "seconds": 3600}), trigger_kind="button"
    )
    path = "/" + button_url(workflow=workflow, contact_id=ann.pk).split("/", 3)[3]
    open_page(page, path)
    assert_accessible(page, "the button page")
    assert_fits_phone(page, path)
    assert not WorkflowRun.objects.exists()
    open_page(page, path)
    page.get_by_test_id("button-confirm").click()
    expect(page.get_by_test_id("button-done")).to_be_visible()
    assert_accessible(page, "the button page's thanks")
    assert WorkflowRun.objects.get().contact == ann

"""The workflow editor in a real Chromium: an event type created in place, a two-row
condition on the event's parameters, activation, then events through the API: the one that
matches starts a run, the one that does not is left alone. And the editor of a multi-step
workflow passes axe and fits a phone."""

import pytest
from playwright.sync_api import expect

from marketing.events import events_process_pending
from marketing.models import EventType
from marketing.workflows.models import Workflow, WorkflowRun
from tests.contacts.factories import ContactFactory
from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.a11y import assert_accessible, assert_fits_phone
from tests.support.browser import log_in, open_page
from tests.workflows.conftest import chain, make_workflow, published

browser = browser_support.browser
page = browser_support.page

pytestmark = pytest.mark.browser


def event(api, api_key, type_key, *, email, total, city):
    body = {
        "eventTypeKey": type_key,
        "keyValue": email,
        "params": [{"name": "totalCost", "value": total}, {"name": "city", "value": city}],
    }
    response = api.post("/api/v1/event", key=api_key, body=body)
    assert response.status_code in (200, 201), response.content


def test_marketer_builds_an_event_workflow_with_an_inline_event_type_and_row_conditions(
    page, marketer, api, full_key
):
    olena = ContactFactory(email="olena@example.com", first_name="Olena")
    petro = ContactFactory(email="petro@example.com", first_name="Petro")
    log_in(page, marketer.username, PASSWORD)
    open_page(page, "/automation/")
    page.get_by_label("Name").fill("Big orders from Kyiv")
    page.get_by_test_id("create-workflow").click()
    expect(page.get_by_role("heading", name="Big orders from Kyiv", level=1)).to_be_visible()

    page.get_by_test_id("event-type-new").click()
    key_box = page.get_by_test_id("event-type-key")
    expect(key_box).to_be_focused()
    key_box.fill("bigOrder")
    page.get_by_test_id("event-type-name").fill("Big order")
    page.get_by_test_id("event-type-create").click()
    expect(page.get_by_test_id("event-type-created")).to_contain_text("bigOrder")
    created = EventType.objects.get(key="bigOrder")
    expect(page.get_by_test_id("event-type-select")).to_have_value(str(created.pk))
    expect(page.get_by_test_id("event-type-select")).to_be_focused()

    page.get_by_test_id("add-param-row").click()
    page.get_by_test_id("add-param-row").click()
    rows = page.get_by_test_id("param-row")
    expect(rows).to_have_count(2)
    rows.nth(0).get_by_label("Event parameter").fill("totalCost")
    rows.nth(0).get_by_label("Comparison").select_option("gte")
    rows.nth(0).get_by_label("Value").fill("100")
    rows.nth(1).get_by_label("Event parameter").fill("city")
    rows.nth(1).get_by_label("Value").fill("Kyiv")
    page.get_by_test_id("save-settings").click()
    expect(page.locator(".flash-success")).to_contain_text("Trigger and settings saved.")

    page.get_by_label("Kind of the new first step").select_option("wait")
    page.get_by_test_id("add-first-step").click()
    expect(page.locator(".flash-success")).to_contain_text("Step s1 added.")
    page.get_by_test_id("activate").click()
    expect(page.locator(".flash-success")).to_contain_text("Active on version 1")

    workflow = Workflow.objects.get()
    assert workflow.event_type == created
    assert workflow.trigger_conditions == [
        {"param": "totalCost", "op": "gte", "value": "100"},
        {"param": "city", "op": "eq", "value": "Kyiv"},
    ]
    event(api, full_key, "bigOrder", email=olena.email, total="250", city="Kyiv")
    event(api, full_key, "bigOrder", email=petro.email, total="250", city="Lviv")
    events_process_pending()
    runs = WorkflowRun.objects.filter(workflow=workflow)
    assert [run.contact_id for run in runs] == [olena.pk]


def test_the_editor_of_a_multi_step_workflow_is_accessible_and_fits_a_phone(page, marketer):
    template = published("Spring newsletter with a rather long name for the message")
    workflow = make_workflow(
        chain(
            {"kind": "send", "template_id": template.pk, "channel": "email", "label": "Hello"},
            {"kind": "wait", "mode": "duration", "seconds": 86400},
            {
                "kind": "condition",
                "label": "Is a VIP from Lviv",
                "check": {"type": "contact", "filter": {"tags": "vip", "town": "Lviv"}},
                "yes": "s4",
                "no": "s5",
            },
            {"kind": "update_field", "field": "town", "value": "Lviv", "next": "s5"},
            {"kind": "exit"},
        ),
        event_key="cartAbandonedWithAVeryLongEventTypeKeyName",
        trigger_conditions=[{"param": "totalCost", "op": "gte", "value": "100"}],
        activate=False,
    )
    Workflow.objects.filter(pk=workflow.pk).update(
        name="Abandoned cart follow-up for customers who spent more than a hundred"
    )
    log_in(page, marketer.username, PASSWORD)
    path = workflow.get_absolute_url()
    open_page(page, path)
    page.get_by_test_id("event-type-new").click()
    expect(page.get_by_test_id("event-type-key")).to_be_visible()
    expect(page.get_by_test_id("contact-rows")).to_be_visible()
    assert_accessible(page, "workflow editor")
    assert_fits_phone(page, path)


def test_the_editor_in_ukrainian(browser, live_server, marketer):
    workflow = make_workflow(chain({"kind": "exit"}), activate=False)
    context = browser.new_context(base_url=live_server.url, locale="uk-UA")
    try:
        tab = context.new_page()
        log_in(tab, marketer.username, PASSWORD)
        open_page(tab, workflow.get_absolute_url())
        expect(tab.get_by_role("heading", name="Кроки")).to_be_visible()
    finally:
        context.close()

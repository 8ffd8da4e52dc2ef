"""The marketer's journey in a real Chromium: a workflow from a ready-made scenario, a
template chosen for its message step, activation refused then accepted, the simulator."""

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.browser import log_in, open_page
from tests.workflows.conftest import published

browser = browser_support.browser
page = browser_support.page

pytestmark = pytest.mark.browser


def test_marketer_starts_from_a_scenario_fills_the_template_and_activates(page, marketer):
    published("Cart reminder")
    log_in(page, marketer.username, PASSWORD)
    open_page(page, "/automation/")
    page.get_by_label("Name").fill("Cart rescue")
    page.get_by_label("Start from").select_option(label="Order feedback request")
    page.get_by_test_id("create-workflow").click()

    expect(page.get_by_role("heading", name="Cart rescue", level=1)).to_be_visible()
    problems = page.get_by_test_id("problems")
    expect(problems).to_contain_text("(s2): choose the message template to send")
    page.get_by_test_id("activate").click()
    expect(page.locator(".flash-error").first).to_contain_text("choose the message template")

    step = page.locator("#step-s2")
    step.get_by_label("Template").select_option(label="Cart reminder")
    step.get_by_role("button", name="Save step").click()
    expect(page.locator(".flash-success")).to_contain_text("Step s2 saved.")
    page.get_by_test_id("activate").click()
    expect(page.locator(".flash-success")).to_contain_text("Active on version 1")
    expect(page.get_by_test_id("workflow-status")).to_contain_text("Active")

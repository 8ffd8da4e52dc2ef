"""The A/B split in the editor, in a real Chromium: added as a step, given three branches
with their shares, a step hung on one branch; the page shows the branches, passes axe and
fits a phone."""

import pytest
from playwright.sync_api import expect

from marketing.workflows import graph as wf_graph
from marketing.workflows.models import Workflow
from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.a11y import assert_accessible, assert_fits_phone
from tests.support.browser import log_in, open_page
from tests.workflows.conftest import chain, make_workflow

browser = browser_support.browser
page = browser_support.page

pytestmark = pytest.mark.browser


def test_marketer_splits_a_workflow_into_three_branches_and_adds_a_step_on_one(page, marketer):
    workflow = make_workflow(chain({"kind": "exit", "label": "Done"}), activate=False)
    log_in(page, marketer.username, PASSWORD)
    path = workflow.get_absolute_url()
    open_page(page, path)

    page.get_by_label("Kind of the new first step").select_option("split")
    page.get_by_test_id("add-first-step").click()
    expect(page.locator(".flash-success")).to_contain_text("Step s2 added.")
    split = page.get_by_test_id("step-s2")
    rows = split.get_by_test_id("split-branch")
    expect(rows).to_have_count(3)  # A and B of a new split, and an empty row for C
    split.get_by_label("Share of branch A (%)").fill("20")
    split.get_by_label("Share of branch B (%)").fill("30")
    split.get_by_label("Share of branch C (%)").fill("40")
    split.get_by_test_id("save-step-s2").click()
    expect(page.get_by_test_id("step-s2")).to_contain_text("add up to 90%")

    page.get_by_test_id("step-s2").get_by_label("Share of branch C (%)").fill("50")
    page.get_by_test_id("step-s2").get_by_label("Branch C goes to").select_option("s1")
    page.get_by_test_id("save-step-s2").click()
    expect(page.locator(".flash-success")).to_contain_text("Step s2 saved.")
    saved = wf_graph.steps_by_id(Workflow.objects.get().draft_graph)["s2"]
    assert [(b["key"], b["percent"], b["next"]) for b in saved["branches"]] == [
        ("A", 20, "s1"),
        ("B", 30, ""),
        ("C", 50, "s1"),
    ]

    split = page.get_by_test_id("step-s2")
    split.get_by_label("Kind of step to add").select_option("wait")
    split.get_by_test_id("add-on-branch-s2").select_option("B")
    split.get_by_role("button", name="Add step after").click()
    expect(page.locator(".flash-success")).to_contain_text("Step s3 added.")
    expect(page.get_by_text("Branch B:")).to_be_visible()
    saved = wf_graph.steps_by_id(Workflow.objects.get().draft_graph)["s2"]
    assert saved["branches"][1]["next"] == "s3"

    assert_accessible(page, "workflow editor with an A/B split")
    assert_fits_phone(page, path)

"""The message blocks in the workflow editor, in a real Chromium: a "one of many" step added,
given its channels in order and activated; the editor with every message block passes axe
and fits a phone."""

import pytest
from playwright.sync_api import expect

from contacts.models import ChannelType
from marketing.workflows.models import Workflow
from templates.services import template_create, template_publish
from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.a11y import assert_accessible, assert_fits_phone
from tests.support.browser import log_in, open_page
from tests.workflows.conftest import chain, make_workflow, published

browser = browser_support.browser
page = browser_support.page

pytestmark = pytest.mark.browser


@pytest.fixture
def chat_template(telegram_bot):
    template = template_create(
        name="Order chat", channel=ChannelType.TELEGRAM, sms_text="Order $!order.externalOrderId"
    )
    template_publish(template=template)
    return template


def test_marketer_adds_a_one_of_many_step_and_activates_it(page, marketer, chat_template):
    email = published("Order mail")
    workflow = make_workflow({"start": "", "steps": []}, activate=False)
    log_in(page, marketer.username, PASSWORD)
    open_page(page, workflow.get_absolute_url())
    page.get_by_label("Kind of the new first step").select_option("send_one_of")
    page.get_by_test_id("add-first-step").click()
    expect(page.locator(".flash-success")).to_contain_text("Step s1 added.")

    step = page.get_by_test_id("step-s1")
    channel_1 = step.locator('select[name="s1-option1_channel"]')
    # Only channels a provider serves are offered.
    expect(channel_1.locator('option[value="telegram"]')).to_have_count(1)
    expect(channel_1.locator('option[value="viber"]')).to_have_count(0)
    channel_1.select_option("telegram")
    step.locator('select[name="s1-option1_template"]').select_option(str(chat_template.pk))
    step.locator('select[name="s1-option2_channel"]').select_option("email")
    step.locator('select[name="s1-option2_template"]').select_option(str(email.pk))
    page.get_by_test_id("save-step-s1").click()
    expect(page.locator(".flash-success")).to_contain_text("Step s1 saved.")
    page.get_by_test_id("activate").click()
    expect(page.locator(".flash-success")).to_contain_text("Active on version 1")

    workflow = Workflow.objects.get()
    assert workflow.current_version.graph["steps"][0]["options"] == [
        {"channel": "telegram", "template_id": chat_template.pk},
        {"channel": "email", "template_id": email.pk},
    ]


def test_the_editor_with_every_message_block_is_accessible_and_fits_a_phone(
    page, marketer, chat_template
):
    email = published("Order mail")
    workflow = make_workflow(
        chain(
            {"kind": "send", "template_id": chat_template.pk, "channel": "telegram"},
            {
                "kind": "send_one_of",
                "options": [
                    {"channel": "telegram", "template_id": chat_template.pk},
                    {"channel": "email", "template_id": email.pk},
                ],
            },
            {
                "kind": "send_group",
                "template_id": email.pk,
                "channel": "email",
                "segment_id": None,
                "addresses": ["manager@shop.example"],
            },
        ),
        activate=False,
    )
    log_in(page, marketer.username, PASSWORD)
    path = workflow.get_absolute_url()
    open_page(page, path)
    expect(page.locator('textarea[name="s3-addresses"]')).to_have_value("manager@shop.example")
    assert_accessible(page, "workflow editor with message blocks")
    assert_fits_phone(page, path)

"""Herald's pages under their Content-Security-Policy in a real Chromium: no page breaks the
policy (no inline script, no eval), and what inline handlers used to do still happens."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from campaigns import tracking
from campaigns.analytics import stats_refresh
from campaigns.models import Campaign, Delivery
from contacts.models import Contact, Segment
from tests.campaigns.support import email_template
from tests.campaigns.test_analytics import add_event, make_campaign, make_delivery, make_run
from tests.contacts.factories import ContactFactory
from tests.factories import PASSWORD, UserFactory
from tests.support import browser as browser_support
from tests.support.browser import log_in, open_page

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (event) {
  window.heraldCspViolation(
    event.violatedDirective + " blocked " + (event.blockedURI || "inline") + " at " +
    event.sourceFile + ":" + event.lineNumber + " " + (event.sample || ""));
}, true);
"""


class Violations:
    """Every CSP violation the page meets: the DOM event (main frames) and Chromium's console
    message (any frame, including the sandboxed preview)."""

    def __init__(self, page) -> None:
        self.seen: list[str] = []
        page.expose_function("heraldCspViolation", self._reported)
        page.add_init_script(REPORT_VIOLATIONS)
        page.on("console", self._console)

    def _reported(self, violation: str) -> None:
        self.seen.append(violation)

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.seen.append(f"console: {message.text}")

    def take(self) -> list[str]:
        seen, self.seen = self.seen, []
        return seen


def visit(page, path: str) -> None:
    response = page.goto(path)
    assert response is not None and response.ok, f"GET {path} answered {response}"
    policy = response.header_value("content-security-policy") or ""
    script_src = re.search(r"script-src ([^;]*)", policy)
    assert script_src and script_src.group(1).strip() == "'self'", f"{path}: {policy!r}"


def test_main_pages_meet_no_policy_violation(page, live_server):
    violations = Violations(page)
    superuser = UserFactory(role="admin", username="sam-super")
    superuser.is_superuser = True
    superuser.save(update_fields=["is_superuser"])
    contact = ContactFactory(first_name="Zoé", email="zoe@example.com")
    segment = Segment.objects.create(name="Kyiv", kind="dynamic", filter={"town": {"$eq": "Kyiv"}})
    template = email_template("Spring mail")
    campaign = make_campaign("Spring launch")
    run = make_run(campaign, 1)
    clicked = make_delivery(run, 1, status="clicked", sent_at=run.started_at, click_count=1)
    add_event(clicked, "opened", run.started_at)
    add_event(clicked, "clicked", run.started_at + timedelta(hours=1), url="https://shop.example")
    stats_refresh(run_ids=[run.pk])

    log_in(page, superuser.username, PASSWORD)
    # The detector itself: an inline script added to a page is reported.
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = '1';"
        " document.body.appendChild(s); }"
    )
    page.wait_for_timeout(200)
    assert any("script-src" in seen for seen in violations.take())

    visit(page, "/")
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    visit(page, "/contacts/")
    expect(page.get_by_text("zoe@example.com")).to_be_visible()
    visit(page, f"/contacts/{contact.pk}/")
    expect(page.get_by_test_id("erase")).to_be_visible()

    # The segment builder: rows come and go over htmx without eval'd trigger filters.
    visit(page, f"/segments/{segment.pk}/")
    rows = page.get_by_test_id("filter-row")
    expect(rows).to_have_count(1)
    page.get_by_test_id("add-condition").click()
    expect(rows).to_have_count(2)
    second = rows.nth(1)
    expect(second).not_to_have_class(re.compile(r"\bhtmx-added\b"))
    second.get_by_label("Field").select_option("town")
    expect(second).to_have_attribute("data-field", "town")
    second.get_by_role("button", name="Remove condition").click()
    expect(rows).to_have_count(1)
    page.get_by_text("Filter as JSON (for power users)").click()
    expect(page.locator("#mode-json")).not_to_be_checked()
    page.get_by_label("Filter as JSON").press_sequentially(" ")
    expect(page.locator("#mode-json")).to_be_checked()

    visit(page, "/campaigns/new/")
    page.locator("#id_template").select_option(str(template.pk))
    expect(page.get_by_test_id("template-preview")).to_have_attribute(
        "href", f"/templates/{template.pk}/"
    )
    visit(page, f"/campaigns/{campaign.pk}/report/")
    page.wait_for_function("() => window.heraldTimeline && window.Chart.getChart('timeline-chart')")

    # The editor's preview: the srcdoc iframe inherits the page's policy, and shows an image
    # from another origin (the live server under its other name) as an email would.
    other_origin = live_server.url.replace("localhost", "127.0.0.1")
    assert other_origin != live_server.url
    remote_image = other_origin + "/static/vendor/swagger-ui/favicon-32x32.png"
    template.html = f'<h1>Hi $!contact.firstName</h1><img src="{remote_image}" alt="logo">'
    template.save(update_fields=["html"])
    previews = []
    page.on("request", lambda r: previews.append(r.url) if "/templates/preview/" in r.url else 0)
    visit(page, f"/templates/{template.pk}/")
    frame = page.frame_locator('[data-testid="preview-frame"]')
    expect(frame.locator("h1")).to_have_text("Hi Alex")
    # (Playwright sees no network events from the sandboxed frame: ask the image itself.)
    loaded = "img => img.decode().then(() => img.naturalWidth, () => 0)"
    assert frame.locator("img").evaluate(loaded) == 32
    page.get_by_label("Subject", exact=True).fill("Changed")
    expect(page.get_by_test_id("preview-subject")).to_have_text("Changed")
    rendered = len(previews)
    page.get_by_test_id("width-mobile").check()
    expect(page.get_by_test_id("preview-frame")).to_have_css("width", "375px")
    page.wait_for_timeout(800)  # longer than the trigger's delay
    assert len(previews) == rendered, "choosing a preview width re-rendered the preview"

    visit(page, "/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Herald API")
    visit(page, f"/admin/contacts/contact/{contact.pk}/change/")
    expect(page.locator("#content h1")).to_be_visible()
    expect(page.locator("#contact_form")).to_be_visible()

    assert violations.take() == []


def test_a_confirm_button_asks_and_cancelling_keeps_everything(page, marketer):
    violations = Violations(page)
    contact = ContactFactory(first_name="Zoé", email="zoe@example.com")
    campaign = make_campaign("Spring launch")
    asked = []

    def dismiss(dialog):
        asked.append(dialog.message)
        dialog.dismiss()

    log_in(page, marketer.username, PASSWORD)
    visit(page, f"/contacts/{contact.pk}/")
    page.once("dialog", dismiss)
    page.get_by_test_id("erase").click()
    expect(page.get_by_test_id("erase")).to_be_visible()
    assert asked == ["Erase this contact's personal data? This cannot be undone."]
    assert page.url.endswith(f"/contacts/{contact.pk}/")
    assert Contact.objects.get(pk=contact.pk).email == "zoe@example.com"

    # A confirm on a submit button (the campaign's lifecycle buttons) asks the same way.
    visit(page, f"/campaigns/{campaign.pk}/")
    page.once("dialog", dismiss)
    page.get_by_test_id("action-delete").click()
    expect(page.get_by_test_id("action-delete")).to_be_visible()
    assert asked[-1] == "Delete this campaign? Sending stops; its history and report stay."
    assert Campaign.objects.get(pk=campaign.pk).deleted_at is None

    # Accepting goes through.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("action-delete").click()
    expect(page.get_by_text(re.compile("deleted; its reports stay"))).to_be_visible()
    assert Campaign.objects.get(pk=campaign.pk).deleted_at is not None

    assert violations.take() == []


def test_the_public_unsubscribe_page_works_under_the_policy(page):
    violations = Violations(page)
    contact = ContactFactory(email="ann@example.com")
    delivery = Delivery.objects.create(
        contact=contact, locator=contact.email, channel="email", status="sent"
    )
    path = "/" + tracking.unsubscribe_url(delivery.pk).split("/", 3)[3]
    visit(page, path)
    page.get_by_test_id("unsubscribe").click()
    expect(page.get_by_test_id("resubscribe")).to_be_visible()
    delivery.refresh_from_db()
    assert delivery.status == "unsubscribed"
    open_page(page, path)
    assert violations.take() == []

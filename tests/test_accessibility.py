"""Every workspace page, with realistic data on it, passes axe and fits a phone; the keyboard
reaches the content first and the phone menu opens.

The pages come from the URL resolver: each named route of the workspace is either a page in
PAGES (how to build its address from the data) or in NOT_PAGES (why it is no page: a form's
POST target, a download, an htmx fragment, a public endpoint). A new route in neither fails
the test, so a new page cannot escape the checks.
"""

import datetime as dt
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests.factories import PASSWORD, UserFactory
from tests.support import browser as browser_support
from tests.support.a11y import (
    PHONE,
    assert_accessible,
    assert_fits_phone,
    axe_findings,
    sideways_overflow,
)
from tests.support.browser import log_in

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser]

# Address prefixes that are not the marketer's workspace: the admin (Django's own pages) and
# the API (JSON for integrators).
OUTSIDE = ("admin/", "api/")

# Routes that are not pages a person opens, each with the reason.
NOT_PAGES = {
    # Ground floor
    "healthz": "JSON probe for load balancers",
    "favicon": "redirect to the icon",
    "language_set": "POST target of the language switcher",
    "login": "checked on its own, logged out (test_the_login_page_…)",
    "logout": "POST target",
    # Contacts
    "contact_delete": "POST target",
    "contact_bulk": "POST target (the list's bulk actions)",
    "contact_restore": "POST target",
    "contact_export": "JSON download (the per-person export)",
    "custom_field_delete": "POST target",
    "unsubscribed_add": "POST target",
    "unsubscribed_remove": "POST target",
    "suppression_add": "POST target",
    "suppression_lift": "POST target",
    "segment_filter_reach": "htmx fragment",
    "segment_filter_row": "htmx fragment",
    "segment_delete": "POST target",
    "segment_reach": "htmx fragment",
    "segment_filter_save": "POST target",
    "segment_members_add": "POST target",
    "segment_members_remove": "POST target",
    "import_progress": "htmx fragment",
    "import_failures_csv": "CSV download",
    "campaign_report_people_csv": "CSV download",
    "campaign_test_send": "POST target",
    "signup_delete": "POST target",
    "signup_embed_js": "the embed script of a subscription form",
    "contacts_export_csv": "CSV download",
    "contact_confirm": "public page of a subscriber (double opt-in link)",
    # Integrations
    "webhook_receive": "provider webhook endpoint",
    "integration_test": "POST target",
    "integration_delete": "POST target",
    "integration_import": "POST target",
    "integration_imports": "htmx fragment (the template imports of an integration)",
    "template_publish_external": "POST target",
    "api_key_revoke": "POST target",
    # Templates
    "template_preview": "htmx fragment (the live preview)",
    "template_publish": "POST target",
    "template_language_delete": "POST target",
    "template_duplicate": "POST target",
    "template_delete": "POST target",
    "editor_image": "image file of the block editor",
    "template_test_send": "POST target",
    # Campaigns
    "campaign_audience_reach": "htmx fragment",
    "campaign_recurrence": "htmx fragment",
    "campaign_progress": "htmx fragment",
    "campaign_ab_winner": "POST target",
    "campaign_promo_codes_csv": "CSV download",
    "campaign_action": "POST target (launch, pause, delete …)",
    "promo_pool_upload": "POST target",
    "promo_pool_generate": "POST target",
    "promo_pool_delete": "POST target",
    "tracking_open": "tracking pixel",
    "tracking_click": "tracking redirect",
    "tracking_trap": "link-scanner trap",
    "unsubscribe": "public page of a recipient, checked in test_the_public_unsubscribe_page",
    # Marketing
    "rfm_recompute": "POST target",
    "rfm_segment": "POST target",
    "workflow_step_add": "POST target",
    "workflow_step_save": "POST target",
    "workflow_step_delete": "POST target",
    "workflow_activate": "POST target",
    "workflow_pause": "POST target",
    "workflow_delete": "POST target",
    "workflow_simulate": "htmx fragment",
    "workflow_event_type_picker": "htmx fragment (a new event type, in place in the editor)",
    "workflow_param_row": "htmx fragment (a condition row of the trigger)",
    "workflow_contact_row": "htmx fragment (a condition row of a contact check)",
    "workflow_settings": "POST target",
    "workflow_button": "public page of a contact's signed link, checked in "
    "tests/workflows/test_browser_start_stop.py",
    "event_type_edit": "POST target (the event types page edits in place)",
    "event_delete": "POST target (the event page's delete button)",
}


@dataclass
class Site:
    """The objects the pages show, built once per test."""

    contact: Any
    field: Any
    segment: Any
    import_job: Any
    integration: Any
    template: Any
    template_version: int
    message: Any
    campaign: Any
    pool: Any
    event_type: Any
    order: Any
    workflow: Any
    workflow_run: Any
    signup: Any
    mapping_job: Any


# Page name → the reverse() arguments from the data (no entry: no arguments).
PAGE_ARGS: dict[str, Callable[[Site], list[Any]]] = {
    "contact_detail": lambda s: [s.contact.pk],
    "contact_edit": lambda s: [s.contact.pk],
    "custom_field_edit": lambda s: [s.field.pk],
    "segment_detail": lambda s: [s.segment.pk],
    "segment_edit": lambda s: [s.segment.pk],
    "import_detail": lambda s: [s.import_job.session_id],
    "integration_new": lambda s: ["smtp"],
    "integration_detail": lambda s: [s.integration.pk],
    "template_edit": lambda s: [s.template.pk],
    "template_versions": lambda s: [s.template.pk],
    "template_version": lambda s: [s.template.pk, s.template_version],
    "template_languages": lambda s: [s.template.pk],
    "template_language_edit": lambda s: [s.template.pk, "uk"],
    "template_design": lambda s: [s.template.pk],
    "message_detail": lambda s: [s.message.request_id],
    "campaign_detail": lambda s: [s.campaign.pk],
    "campaign_edit": lambda s: [s.campaign.pk],
    "campaign_report": lambda s: [s.campaign.pk],
    "campaign_utm": lambda s: [s.campaign.pk],
    "campaign_ab_test": lambda s: [s.campaign.pk],
    "promo_pool": lambda s: [s.pool.pk],
    "contact_activity": lambda s: [s.contact.pk],
    "order_detail": lambda s: [s.order.pk],
    "event_detail": lambda s: [s.event_type.events.order_by("pk").first().pk],
    "event_type_detail": lambda s: [s.event_type.pk],
    "workflow_detail": lambda s: [s.workflow.pk],
    "workflow_runs": lambda s: [s.workflow.pk],
    "workflow_run_detail": lambda s: [s.workflow_run.pk],
    "campaign_report_people": lambda s: [s.campaign.pk, "clicked"],
    "import_mapping": lambda s: [s.mapping_job.session_id],
    "signup_edit": lambda s: [s.signup.pk],
    "signup_stats": lambda s: [s.signup.pk],
    # The public pages of a subscription form (what a visitor sees, framed or not).
    "signup_page": lambda s: [s.signup.key],
    "signup_thanks": lambda s: [s.signup.key],
    "signup_frame": lambda s: [s.signup.key],
    "signup_frame_thanks": lambda s: [s.signup.key],
}
# Pages a marketer may not open (the admin's settings).
ADMIN_ONLY = {
    "settings_home",
    "audit_log",
    "frequency_caps",
    "api_keys",
    "integrations_home",
    "integration_new",
    "integration_detail",
}


def workspace_routes() -> list[str]:
    """The name of every named route outside the admin and the API."""

    def walk(patterns, prefix: str) -> Iterator[tuple[str, str | None]]:
        for pattern in patterns:
            route = prefix + str(pattern.pattern).lstrip("^")
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                yield route, pattern.name

    names = []
    for route, name in walk(get_resolver().url_patterns, ""):
        if route.startswith(OUTSIDE):
            continue
        assert name, f"the route {route} has no name: name it and list it in PAGES or NOT_PAGES"
        names.append(name)
    return sorted(set(names))


def page_names() -> list[str]:
    return [name for name in workspace_routes() if name not in NOT_PAGES]


def test_every_workspace_route_is_a_checked_page_or_says_why_not():
    routes = set(workspace_routes())
    unlisted = sorted(
        name
        for name in routes - set(NOT_PAGES)
        if not _reversible_without_data(name) and name not in PAGE_ARGS
    )
    assert not unlisted, (
        "Routes that need arguments but have none in PAGE_ARGS (a page) or an entry in "
        f"NOT_PAGES (why it is no page): {unlisted}"
    )
    assert not set(NOT_PAGES) - routes, f"NOT_PAGES names gone routes: {set(NOT_PAGES) - routes}"
    assert not set(PAGE_ARGS) - routes, f"PAGE_ARGS names gone routes: {set(PAGE_ARGS) - routes}"


def _reversible_without_data(name: str) -> bool:
    try:
        reverse(name)
    except Exception:
        return False
    return True


def build_site() -> Site:
    """Realistic data: the demo shop plus a campaign that has sent (with its report), a
    template with versions and a language, a workflow that ran, an import with failures, an
    order, a promo code pool, an integration; long names where marketers write long names."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from campaigns.analytics import stats_refresh
    from campaigns.models import Delivery
    from campaigns.promo.services import promo_codes_add, promo_pool_create
    from contacts.imports import csv_upload_start
    from contacts.models import Contact, CustomField, ImportFailure, ImportJob, Segment
    from integrations.services import integration_save
    from marketing.demo import load_demo
    from marketing.models import Event, EventType, Order
    from marketing.orders import orders_upsert
    from marketing.signup.services import signup_form_create
    from marketing.workflows.models import WorkflowRun
    from marketing.workflows.triggers import workflows_start_for_event
    from templates.languages import template_language_create
    from templates.models import MessageTemplate
    from templates.services import template_publish
    from tests.campaigns.test_analytics import add_event, make_campaign, make_delivery, make_run
    from tests.workflows.conftest import chain, make_workflow

    load_demo()
    contact = Contact.objects.order_by("pk").first()
    contact.first_name = "Oleksandra-Kateryna"
    contact.last_name = "Vasylenko-Shevchenko-Montgomery"
    contact.save(update_fields=["first_name", "last_name"])
    template = MessageTemplate.objects.get(name="Welcome")
    template.html += "<p>Our spring collection arrives next week — be the first to see it.</p>"
    template.save(update_fields=["html"])
    template_publish(template=template)
    template_language_create(
        template=template,
        language_code="uk",
        subject="Вітаємо в Demo Shop, $!contact.firstName",
        html="<h1>Вітаємо!</h1><p>Дякуємо, що ви з нами.</p>",
    )

    campaign = make_campaign("Spring collection launch for our most loyal customers in Kyiv")
    run = make_run(campaign, 1)
    for n in range(1, 6):
        delivery = make_delivery(run, n, status="clicked", sent_at=run.started_at, click_count=1)
        add_event(delivery, "opened", run.started_at + dt.timedelta(minutes=n))
        add_event(
            delivery,
            "clicked",
            run.started_at + dt.timedelta(hours=1),
            url="https://demo-shop.example/spring-collection?utm_source=herald",
        )
    stats_refresh(run_ids=[run.pk])
    message = Delivery.objects.filter(run=run).order_by("pk").first()

    import_job = ImportJob.objects.create(
        total=3,
        processed=3,
        created_count=1,
        failed_count=2,
        status="FINISHED",
        finished_at=timezone.now(),
    )
    ImportFailure.objects.create(
        job=import_job,
        index=2,
        reason="email: not-an-address is not a valid email address",
        data={"email": "not-an-address"},
    )
    ImportFailure.objects.create(
        job=import_job, index=3, reason="phone: 12 is not a phone number", data={"phone": "12"}
    )

    orders_upsert(
        orders=[
            {
                "externalOrderId": "ORDER-2026-000042",
                "externalCustomerId": "customer-42",
                "totalCost": 149.5,
                "status": "DELIVERED",
                "date": timezone.now().isoformat(),
                "email": contact.email,
                "currency": "UAH",
                "items": [
                    {"externalItemId": "SKU-1", "name": "Linen shirt", "quantity": 2, "cost": 74.75}
                ],
            }
        ]
    )
    order = Order.objects.get(external_order_id="ORDER-2026-000042")

    pool = promo_pool_create(name="Spring discount codes", key="SPRING10")
    promo_codes_add(pool=pool, lines=[(1, "SPRING-AAAA-0001"), (2, "SPRING-AAAA-0002")])

    integration = integration_save(
        kind="smtp",
        name="Office mail server",
        channels=["email"],
        values={"host": "smtp.demo-shop.example", "port": 587, "security": "starttls"},
    )

    signup = signup_form_create(
        name="Spring newsletter for gardeners and everyone who grows vegetables at home",
        key="spring-garden",
        fields=[
            {"key": "email", "label": "Your email", "required": True},
            {"key": "first_name", "label": "First name", "required": True},
            {"key": "phone", "label": "Phone (for delivery updates)", "required": False},
        ],
        consent_enabled=True,
        consent_text="I agree to get the spring newsletter and can unsubscribe at any time.",
        tags=["spring", "garden"],
        thank_you_message="Thank you! Check your inbox to confirm your subscription.",
    )
    mapping_job = csv_upload_start(
        uploaded=SimpleUploadedFile(
            "spring-fair-visitors.csv",
            "Email;Ім'я;Телефон;Місто;Interests\n"
            "olena@example.com;Олена;+380501234567;Київ;garden|seeds\n"
            "bohdan@example.com;Богдан;+380671112233;Львів;tools\n".encode("cp1251"),
        ),
        options={},
    )

    workflow = make_workflow(chain({"kind": "exit", "label": "Say goodbye"}), event_key="signup")
    event_type = EventType.objects.get(key="signup")
    event = Event.objects.create(event_type=event_type, contact=contact, params={"plan": "pro"})
    workflows_start_for_event(event=event)

    return Site(
        contact=contact,
        field=CustomField.objects.order_by("pk").first(),
        segment=Segment.objects.get(name="VIP customers"),
        import_job=import_job,
        integration=integration,
        template=template,
        template_version=template.versions.order_by("-number").first().number,
        message=message,
        campaign=campaign,
        pool=pool,
        event_type=event_type,
        order=order,
        workflow=workflow,
        workflow_run=WorkflowRun.objects.filter(workflow=workflow).first(),
        signup=signup,
        mapping_job=mapping_job,
    )


def page_path(name: str, site: Site) -> str:
    args = PAGE_ARGS.get(name)
    return reverse(name, args=args(site) if args else None)


def assert_page_accessible(page, path: str) -> None:
    """assert_accessible, except for axe's "frame-tested" on message previews. A preview is
    a sandboxed srcdoc frame that runs no script at all (the email is the marketer's content,
    shown as a mail client would), so axe cannot run inside it and always leaves it "to be
    tested"; any other frame, or any other finding, still fails."""
    sandboxed = page.evaluate(
        "() => [...document.querySelectorAll('iframe')].every(f => f.hasAttribute('sandbox')"
        " && !f.sandbox.contains('allow-scripts'))"
    )
    findings = [
        finding
        for finding in axe_findings(page)
        if not (finding["rule"] == "frame-tested" and sandboxed)
    ]
    assert not findings, f"axe on {path}:\n" + json.dumps(findings, indent=1)


def fits_phone(page, path: str) -> None:
    """assert_fits_phone on the page already open: the same measure at the same 390 px,
    without loading the page a second time (the whole-site test visits some sixty)."""
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    try:
        page.evaluate("() => new Promise(done => requestAnimationFrame(() => done()))")
        overflow = sideways_overflow(page)
        assert overflow == 0, f"{path} scrolls sideways by {overflow}px at 390px wide"
    finally:
        if size:
            page.set_viewport_size(size)


def check_pages(page, names: list[str], site: Site) -> list[str]:
    """axe and the phone check on each page; the failures, page by page."""
    failures = []
    for name in names:
        path = page_path(name, site)
        started = time.monotonic()
        try:
            response = page.goto(path)
            assert response is not None and response.ok, f"GET {path} answered {response.status}"
            page.wait_for_load_state("networkidle")
            assert_page_accessible(page, path)
            fits_phone(page, path)
        except (AssertionError, PlaywrightError) as exc:
            failures.append(f"{name} ({path}): {exc}")
        print(f"{time.monotonic() - started:5.1f}s {path}")
    return failures


# The marketer's pages are checked in this many tests (every CHUNKS-th page each), so that
# parallel test processes share the walk; each test builds the site data itself.
CHUNKS = 4


def checked_names() -> list[str]:
    names = page_names()
    if only := os.environ.get("HERALD_A11Y_ONLY"):  # while fixing a page: just those
        names = [n for n in names if n in only.split(",")]
    return names


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_every_workspace_page_is_accessible_and_fits_a_phone(page, live_server, chunk):
    site = build_site()
    names = [n for n in checked_names() if n not in ADMIN_ONLY][chunk::CHUNKS]
    marketer = UserFactory(role="marketer", username="mark-marketer-with-a-long-name")

    log_in(page, marketer.username, PASSWORD)
    failures = check_pages(page, names, site)
    assert not failures, "\n\n".join(failures)


@pytest.mark.django_db(transaction=True)
def test_every_admin_page_and_the_shell_in_ukrainian_are_accessible_and_fit_a_phone(
    page, live_server
):
    site = build_site()
    names = checked_names()
    admin = UserFactory(role="admin", username="alice-admin")

    log_in(page, admin.username, PASSWORD)
    failures = check_pages(page, [n for n in names if n in ADMIN_ONLY], site)
    # The shell in another language (longer words) and the error pages.
    page.goto("/settings/")
    page.get_by_role("button", name="Українська").click()
    expect(page.get_by_role("heading", name="Налаштування", level=1)).to_be_visible()
    failures += check_pages(page, ["dashboard", "settings_home", "campaigns_home"], site)
    assert not failures, "\n\n".join(failures)


@pytest.mark.django_db(transaction=True)
def test_the_login_and_error_pages_are_accessible_and_fit_a_phone(page, viewer):
    page.goto("/login/")
    assert_accessible(page, "/login/")
    assert_fits_phone(page, "/login/")
    page.goto("/no-such-page/")
    expect(page.get_by_role("heading", name="Page not found", level=1)).to_be_visible()
    assert_accessible(page, "404")
    assert_fits_phone_status(page, "/no-such-page/")
    page.goto("/login/")
    page.get_by_label("Username").fill(viewer.username)
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert_accessible(page, "/login/ with an error")
    log_in(page, viewer.username, PASSWORD)
    response = page.goto("/settings/")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="Not allowed", level=1)).to_be_visible()
    assert_accessible(page, "403")
    assert_fits_phone_status(page, "/settings/")


def assert_fits_phone_status(page, path: str) -> None:
    """The phone check for a page that answers an error status on purpose."""
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    try:
        page.goto(path)
        assert sideways_overflow(page) == 0, f"{path} scrolls sideways at 390 px"
    finally:
        if size:
            page.set_viewport_size(size)


@pytest.mark.django_db(transaction=True)
def test_the_keyboard_reaches_the_skip_link_first_and_the_phone_menu_opens(page, marketer):
    log_in(page, marketer.username, PASSWORD)
    page.goto("/contacts/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()

    page.set_viewport_size({"width": 390, "height": 844})
    navigation = page.get_by_role("navigation", name="Main")
    expect(navigation).to_be_hidden()
    menu = page.get_by_role("button", name="Menu")
    menu.focus()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(navigation.get_by_role("link", name="Campaigns")).to_be_visible()
    navigation.get_by_role("link", name="Campaigns").click()
    expect(page.get_by_role("heading", name="Campaigns", level=1)).to_be_visible()

"""Subscription forms in a real Chromium: the marketer builds a form, a visitor subscribes on
the hosted page, confirms from the email that reached a real SMTP server, and the statistics
count it; the embed script shows the form on another site's page."""

import re
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from contacts.models import Contact
from marketing.models import Event
from marketing.signup.models import SignupSubmission
from marketing.workflows.models import WorkflowRun
from tests.conftest import wait_for
from tests.contacts.factories import ContactFactory, SegmentFactory
from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.a11y import PHONE, assert_accessible, assert_fits_phone, sideways_overflow
from tests.support.browser import log_in, open_page
from tests.support.smtp import SMTPSink
from tests.support.worker import CeleryWorker
from tests.workflows.conftest import chain, make_workflow

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LINK_RE = re.compile(r"(https?://\S+/confirm/[^/\s]+/)")


@pytest.fixture
def sink_and_worker(transactional_db, live_server):
    with (
        SMTPSink() as sink,
        CeleryWorker(env={"EMAIL_URL": sink.url, "HERALD_BASE_URL": live_server.url}) as worker,
    ):
        yield sink, worker


def fits_phone_as_is(page) -> None:
    """assert_fits_phone for a page that cannot be fetched again (a form answered with errors)."""
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    try:
        assert sideways_overflow(page) == 0
    finally:
        page.set_viewport_size(size)


def visitor(browser, live_server, locale="en-US"):
    context = browser.new_context(base_url=live_server.url, locale=locale)
    context.set_default_timeout(browser_support.TIMEOUT_MS)
    return context, context.new_page()


def test_marketer_builds_a_form_and_a_visitor_subscribes_and_confirms(
    page, browser, live_server, marketer, birthday, sink_and_worker, settings
):
    sink, worker = sink_and_worker
    settings.HERALD_BASE_URL = live_server.url
    SegmentFactory(name="Spring readers of the very long named newsletter for gardeners")
    welcome = make_workflow(
        chain({"kind": "wait", "mode": "duration", "seconds": 3600}),
        event_key="subscribeFromApi-garden",
    )

    log_in(page, marketer.username, PASSWORD)
    page.get_by_role("link", name="Forms").click()
    expect(page.get_by_role("heading", name="Subscription forms", level=1)).to_be_visible()
    page.get_by_test_id("new-form").click()
    page.locator("#id_name").fill("Garden newsletter")
    page.locator("#id_key").fill("garden")
    page.get_by_label("Show Birthday").check()
    page.get_by_label("Label of Birthday").fill("Your birthday")
    page.get_by_label("Show First name").check()
    page.get_by_label("First name is required").check()
    page.get_by_label("Ask for consent").check()
    page.get_by_label("Spring readers of the very long named newsletter for gardeners").check()
    page.get_by_label("Thank-you message").fill("Welcome to the garden club!")
    page.get_by_label("Or send people to this address after they subscribe").fill(
        "javascript:alert(1)"
    )
    page.get_by_test_id("save").click()
    # Two refusals at once, each by its field: the consent text and the redirect address.
    expect(page.get_by_test_id("form-errors")).to_be_visible()
    expect(page.locator("#id_redirect_url_error")).to_contain_text("http:// or https://")
    expect(page.locator("#id_consent_text_error")).to_be_visible()
    assert_accessible(page)
    fits_phone_as_is(page)

    page.get_by_label("Or send people to this address after they subscribe").fill("")
    page.get_by_label("Consent text").fill("I agree to get the garden newsletter by email.")
    page.get_by_test_id("save").click()
    expect(page.get_by_text("Form “Garden newsletter” created.")).to_be_visible()
    expect(page.get_by_test_id("snippet-script")).to_have_value(re.compile(r"/f/garden/embed\.js"))
    page.get_by_role("button", name="Copy").first.click()
    expect(page.get_by_text("Copied.")).to_be_visible()
    assert_accessible(page)
    assert_fits_phone(page, page.url.removeprefix(live_server.url))

    context, guest = visitor(browser, live_server)
    try:
        open_page(guest, "/f/garden/")
        expect(guest.get_by_role("heading", name="Garden newsletter")).to_be_visible()
        assert_accessible(guest)
        assert_fits_phone(guest, "/f/garden/")
        guest.get_by_role("textbox", name="Email").fill("rosa@example")
        guest.get_by_label("Your birthday").fill("1991-05-17")
        guest.get_by_role("button", name="Subscribe").click()
        expect(guest.get_by_test_id("error-summary")).to_be_visible()
        expect(guest.locator("#id_email_error")).to_contain_text("valid email")
        expect(guest.locator("#id_consent_error")).to_contain_text("Tick this box")
        # Focus goes to the first field with an error, which says why.
        expect(guest.get_by_role("textbox", name="Email")).to_be_focused()
        expect(guest.get_by_role("textbox", name="Email")).to_have_attribute(
            "aria-describedby", "id_email_error"
        )
        assert_accessible(guest)
        fits_phone_as_is(guest)

        guest.get_by_role("textbox", name="Email").fill("rosa@example.com")
        guest.get_by_label("First name").fill("Rosa")
        guest.get_by_label("I agree to get the garden newsletter by email.").check()
        guest.get_by_role("button", name="Subscribe").click()
        expect(guest.get_by_test_id("thanks")).to_be_visible()
        expect(guest.get_by_text("Welcome to the garden club!")).to_be_visible()
        assert_accessible(guest)
        assert_fits_phone(guest, guest.url.removeprefix(live_server.url))

        contact = Contact.objects.get(email="rosa@example.com")
        assert not contact.confirmed
        assert contact.fields == {str(birthday.pk): "1991-05-17"}
        assert Event.objects.filter(
            event_type__key="subscribeFromApi-garden", contact=contact
        ).exists()
        consent = SignupSubmission.objects.get(contact=contact)
        assert consent.consent_text == "I agree to get the garden newsletter by email."

        wait_for(lambda: sink.received, timeout=60)
        message = sink.received[0].message
        assert message["To"] == "rosa@example.com", worker.output()
        link = LINK_RE.search(message.get_body(("plain",)).get_content()).group(1)
        assert link.startswith(live_server.url)
        open_page(guest, link.removeprefix(live_server.url))
        expect(guest.get_by_text("Thank you")).to_be_visible()
    finally:
        context.close()
    contact.refresh_from_db()
    assert contact.confirmed
    wait_for(lambda: WorkflowRun.objects.filter(workflow=welcome, contact=contact).exists())

    page.goto("/forms/")
    row = page.get_by_test_id("form-row")
    expect(row).to_contain_text("Garden newsletter")
    assert_accessible(page)
    assert_fits_phone(page, "/forms/")
    row.get_by_role("link", name="Statistics").click()
    expect(page.get_by_test_id("total-submissions")).to_have_text("1")
    expect(page.get_by_test_id("total-confirmed")).to_have_text("1")
    expect(page.get_by_test_id("total-new")).to_have_text("1")
    assert page.evaluate("() => window.heraldSignupChart !== undefined")
    assert_accessible(page)
    assert_fits_phone(page, page.url.removeprefix(live_server.url))


@pytest.fixture
def other_site(tmp_path, live_server):
    """A page on another origin (its own port) that embeds the form with the script."""
    (tmp_path / "index.html").write_text(
        "<!doctype html><html lang='en'><head><title>Shop</title></head><body>"
        "<main><h1>Our shop</h1>"
        f'<script src="{live_server.url}/f/spring/embed.js" async></script>'
        "</main></body></html>"
    )
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_embed_script_shows_the_form_on_another_site_sized_to_it(
    page, signup, other_site, live_server, settings
):
    settings.HERALD_BASE_URL = live_server.url
    page.goto(other_site)
    frame_element = page.locator("iframe[title='Spring newsletter']")
    expect(frame_element).to_be_visible()
    # The framed page reported its height and the script applied it.
    expect(frame_element).to_have_attribute("style", re.compile(r"height: \d+px"))
    frame = page.frame_locator("iframe[title='Spring newsletter']")
    expect(frame.get_by_role("heading", name="Spring newsletter")).to_be_visible()
    frame.get_by_label("Your email").fill("guest@example.com")
    frame.get_by_label("First name").fill("Gus")
    frame.get_by_label("I agree to get the spring newsletter.").check()
    frame.get_by_role("button", name="Subscribe").click()
    expect(frame.get_by_text("Welcome aboard!")).to_be_visible()
    assert Contact.objects.filter(email="guest@example.com", confirmed=False).exists()


def test_framed_page_is_accessible_and_fits_a_phone(page, signup):
    open_page(page, "/f/spring/frame/")
    assert_accessible(page)
    assert_fits_phone(page, "/f/spring/frame/")
    open_page(page, "/f/spring/frame/thanks/")
    assert_accessible(page)


def test_hosted_page_speaks_the_forms_language_not_the_browsers(browser, live_server, signup):
    from marketing.signup.services import signup_form_update

    signup_form_update(form=signup, language="uk", button_text="")
    context, guest = visitor(browser, live_server, locale="en-US")
    try:
        open_page(guest, "/f/spring/")
        expect(guest.get_by_role("button", name="Підписатися")).to_be_visible()
        assert guest.locator("html").get_attribute("lang") == "uk"
        assert_accessible(guest)
    finally:
        context.close()


def test_marketer_pages_in_ukrainian(browser, live_server, marketer, signup):
    ContactFactory()
    context, uk = visitor(browser, live_server, locale="uk-UA")
    try:
        log_in(uk, marketer.username, PASSWORD)
        open_page(uk, "/forms/")
        expect(uk.get_by_role("heading", name="Форми підписки", level=1)).to_be_visible()
        open_page(uk, f"/forms/{signup.pk}/stats/")
        expect(uk.get_by_role("heading", level=1)).to_contain_text("Статистика")
    finally:
        context.close()

"""The workspace shell in a real Chromium: the language switcher, focus after a failed
submit, the favicon, and the worker's state on the dashboard."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from config.core.models import Heartbeat, Organisation, UserPreference
from config.core.services import heartbeat_record
from tests.conftest import wait_for
from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.a11y import assert_accessible
from tests.support.browser import log_in, open_page

browser = browser_support.browser
page = browser_support.page

pytestmark = pytest.mark.browser

USERNAME_UK = "Ім\u2019я користувача"  # with the typographic apostrophe


def test_a_visitor_switches_the_login_page_to_ukrainian_with_the_keyboard(page, marketer):
    open_page(page, "/login/")
    switcher = page.get_by_test_id("language-switcher")
    switcher.get_by_role("button", name="Українська").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Увійдіть до свого маркетингового простору.")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "uk")
    expect(switcher.get_by_role("button", name="Українська")).to_have_attribute(
        "aria-pressed", "true"
    )
    assert_accessible(page, "/login/ in Ukrainian")

    # Logging in keeps the language the visitor chose.
    page.get_by_label(USERNAME_UK).fill(marketer.username)
    page.get_by_label("Пароль").fill(PASSWORD)
    page.get_by_role("button", name="Увійти").click()
    expect(page.get_by_role("heading", name="Огляд", level=1)).to_be_visible()


def test_a_user_s_language_follows_them_and_beats_the_browser(browser, live_server, admin_user):
    context = browser.new_context(base_url=live_server.url, locale="uk-UA")
    try:
        page = context.new_page()
        page.goto("/login/")
        page.get_by_label(USERNAME_UK).fill(admin_user.username)
        page.get_by_label("Пароль").fill(PASSWORD)
        page.get_by_role("button", name="Увійти").click()
        expect(page.get_by_role("heading", name="Огляд", level=1)).to_be_visible()

        page.get_by_role("button", name="Русский").click()
        expect(page.get_by_role("heading", name="Обзор", level=1)).to_be_visible()
        page.locator("#main-nav").get_by_role("link", name="Настройки").click()
        expect(page.get_by_role("heading", name="Настройки", level=1)).to_be_visible()
        assert UserPreference.objects.get(user=admin_user).language == "ru"
        page.goto("/")
        expect(page.get_by_test_id("campaign-tiles")).to_contain_text("Отправлено сообщений")
    finally:
        context.close()


def test_after_a_failed_save_the_focus_is_on_the_field_in_error(page, admin_user):
    log_in(page, admin_user.username, PASSWORD)
    open_page(page, "/settings/")
    page.get_by_label("Time zone").fill("Mars/Olympus")
    page.get_by_role("button", name="Save").click()

    field = page.get_by_label("Time zone")
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_accessible_description(
        "'Mars/Olympus' is not a known IANA time zone (e.g. Europe/Berlin)."
    )
    language = page.locator("#id_language")
    described = language.get_attribute("aria-describedby")
    assert described and page.locator(f"#{described}").is_visible()
    assert_accessible(page, "/settings/ with an error")
    assert Organisation.load().time_zone == "UTC"


def test_the_favicon_answers_and_every_page_names_it(page, marketer, live_server):
    response = page.request.get("/favicon.ico", max_redirects=0)
    assert response.status == 301
    icon = page.request.get(response.headers["location"])
    assert icon.ok and icon.headers["content-type"].startswith("image/svg")
    log_in(page, marketer.username, PASSWORD)
    expect(page.locator('link[rel="icon"]')).to_have_attribute("href", "/static/herald/favicon.svg")


@pytest.mark.django_db(transaction=True)
def test_the_dashboard_tells_a_starting_worker_from_a_missing_or_late_one(page, marketer):
    log_in(page, marketer.username, PASSWORD)
    state = page.get_by_test_id("worker-state")
    expect(state).to_contain_text("No heartbeat yet: start the Celery worker and beat.")

    heartbeat_record(name="beat")
    page.reload()
    expect(state).to_contain_text("Worker starting…")

    heartbeat_record(name="worker")
    page.reload()
    expect(state).to_contain_text("Last heartbeat")

    Heartbeat.objects.all().update(seen_at=timezone.now() - dt.timedelta(minutes=10))
    page.reload()
    expect(state).to_contain_text("is the Celery worker still running?")


@pytest.mark.worker
def test_a_starting_worker_reports_at_once_without_waiting_for_beat(celery_worker):
    # The fixture returns once the worker logged "ready"; the signal ran before that line.
    beat = wait_for(lambda: Heartbeat.objects.filter(name="worker").first(), timeout=10)
    assert timezone.now() - beat.seen_at < dt.timedelta(minutes=1)

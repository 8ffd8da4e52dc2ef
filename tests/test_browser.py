"""Smoke tests in a real Chromium: the journeys every other page depends on."""

import base64
import json
import re
import urllib.request

import pytest
from playwright.sync_api import expect

from config.core.models import APIKey
from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.browser import log_in, open_page

# The shared fixtures, made visible to pytest in this module (conftest.py is shared by all).
browser = browser_support.browser
page = browser_support.page

pytestmark = pytest.mark.browser

NAVIGATION = [
    "Dashboard",
    "Contacts",
    "Segments",
    "Templates",
    "Campaigns",
    "Automation",
    "Orders",
    "Integrations",
    "Settings",
]


def test_marketer_logs_in_sees_the_workspace_and_logs_out(page, marketer, live_server):
    open_page(page, "/login/")
    page.get_by_label("Username").fill(marketer.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    expect(page).to_have_title("Dashboard · Herald")
    main_nav = page.get_by_role("navigation", name="Main")
    for label in NAVIGATION:
        expect(main_nav.get_by_role("link", name=label, exact=True)).to_be_visible()
    expect(page.get_by_text(f"{marketer.username} · Marketer")).to_be_visible()

    page.get_by_test_id("logout").click()
    expect(page).to_have_url(f"{live_server.url}/login/")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    # The session is gone: the workspace sends us back to the login page.
    page.goto("/")
    expect(page).to_have_url(f"{live_server.url}/login/?next=/")


def test_wrong_password_keeps_the_user_on_the_login_page(page, marketer):
    open_page(page, "/login/")
    page.get_by_label("Username").fill(marketer.username)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("enter a correct username and password")
    expect(page.get_by_role("heading", name="Dashboard")).to_have_count(0)


def test_admin_creates_an_api_key_and_sees_the_secret_once(page, admin_user, live_server):
    log_in(page, admin_user.username, PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="Settings", level=1)).to_be_visible()
    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", name="API keys", level=1)).to_be_visible()

    page.get_by_text("Create an API key").click()
    page.get_by_label(re.compile(r"^Name\b")).fill("Shop backend")
    page.get_by_label("Rights").select_option("events_contacts")
    page.get_by_role("button", name="Create key").click()

    secret_box = page.get_by_test_id("new-secret")
    expect(secret_box).to_be_visible()
    secret = secret_box.inner_text().strip()
    assert secret
    expect(page.get_by_role("status")).to_contain_text("Copy it now")
    expect(page.get_by_role("cell", name="Shop backend")).to_be_visible()
    key = APIKey.objects.get(name="Shop backend")
    assert (key.rights, key.created_by) == ("events_contacts", admin_user)

    # The secret shown is a working key …
    request = urllib.request.Request(
        f"{live_server.url}/api/v1/account/info",
        headers={"Authorization": "Basic " + base64.b64encode(f"shop:{secret}".encode()).decode()},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert "userEmail" in json.load(response)

    # … and it is never shown again.
    page.goto("/settings/api-keys/")
    expect(page.get_by_role("cell", name="Shop backend")).to_be_visible()
    expect(page.get_by_test_id("new-secret")).to_have_count(0)
    assert secret not in page.content()

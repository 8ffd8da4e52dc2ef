"""Playwright fixtures for browser tests, driving Debian's Chromium against `live_server`.

Import them into a test module (conftest.py is shared, so they are opt-in):

    from tests.support import browser as browser_support
    from tests.support.browser import log_in, open_page

    browser = browser_support.browser
    page = browser_support.page

Playwright cannot download its own browser here; `bin/test` installs /usr/bin/chromium.
"""

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = os.environ.get("HERALD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests may run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    # No traffic beyond the live server: the machine may be offline, and a stray request
    # would make timings depend on the network.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Generous for a loaded CI machine (2 cores shared with the suite), short enough that a
# missing element fails the test instead of hanging it.
TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def browser() -> Iterator["Browser"]:
    """One Chromium for the whole session: starting it costs about a second."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: run bin/test, or apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, live_server) -> Iterator["Page"]:
    """A fresh page in its own context (no cookies shared between tests) on the live server.

    Relative URLs resolve against the live server: `page.goto("/login/")`.
    """
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def open_page(page: "Page", path: str) -> None:
    """Go to `path` and fail at once, with the status, if the server did not answer 2xx/3xx.

    Without this a server error shows up as a locator timeout seconds later.
    """
    response = page.goto(path)
    assert response is not None and response.ok, (
        f"GET {path} answered {response.status if response else 'nothing'}"
    )


def log_in(page: "Page", username: str, password: str) -> None:
    """Log in through the login form and wait until the dashboard has loaded."""
    from playwright.sync_api import expect

    open_page(page, "/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()

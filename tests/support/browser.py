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
    from playwright.sync_api import Browser, Page, Playwright

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
# Broken assets and script errors break pages silently; every browser test checks for them.
ASSET_TYPES = {"script", "stylesheet", "image", "font"}


class _SharedChromium:
    """One Playwright and one Chromium per test process.

    Each module that imports the `browser` fixture gets a fixture of its own in pytest's
    eyes, and a second `sync_playwright()` beside a running one refuses to start; so the
    fixtures share this instance and the last one to finish closes it.
    """

    def __init__(self) -> None:
        self.users = 0
        self.playwright: Playwright | None = None
        self.browser: Browser | None = None

    def acquire(self) -> "Browser":
        if self.browser is None:
            if not os.path.exists(CHROMIUM):
                pytest.fail(f"Chromium is missing at {CHROMIUM}: run bin/test (it installs it).")
            from playwright.sync_api import sync_playwright

            self.playwright = sync_playwright().start()
            try:
                self.browser = self.playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS
                )
            except BaseException:
                self.playwright.stop()
                self.playwright = None
                raise
        self.users += 1
        return self.browser

    def release(self) -> None:
        self.users -= 1
        if self.users == 0 and self.browser is not None:
            try:
                self.browser.close()
            finally:
                self.playwright.stop()
                self.browser = self.playwright = None


_shared = _SharedChromium()


@pytest.fixture(scope="session")
def browser() -> Iterator["Browser"]:
    """One Chromium for the whole session: starting it costs about a second."""
    chromium = _shared.acquire()
    try:
        yield chromium
    finally:
        _shared.release()


@pytest.fixture
def page(browser, live_server) -> Iterator["Page"]:
    """A fresh page in its own context (no cookies shared between tests) on the live server.

    Relative URLs resolve against the live server: `page.goto("/login/")`. The test errors
    at teardown if a page threw an uncaught JavaScript error or an asset (script, style,
    image, font) failed to load.
    """
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    page = context.new_page()
    problems: list[str] = []

    def on_page_error(error) -> None:
        problems.append(f"JavaScript error: {error}")

    def on_response(response) -> None:
        if response.request.resource_type in ASSET_TYPES and response.status >= 400:
            problems.append(f"{response.status} for {response.url}")

    def on_request_failed(request) -> None:
        # Aborted loads are the page navigating away (a click, a redirect), not a fault.
        if request.resource_type in ASSET_TYPES and "ERR_ABORTED" not in (request.failure or ""):
            problems.append(f"{request.url} failed: {request.failure}")

    page.on("pageerror", on_page_error)
    page.on("response", on_response)
    page.on("requestfailed", on_request_failed)
    try:
        yield page
    finally:
        context.close()
    if problems:
        pytest.fail("The browser met problems:\n" + "\n".join(problems))


def open_page(page: "Page", path: str) -> None:
    """Go to `path` and fail at once, with the status, if the server did not answer 2xx/3xx.

    Without this a server error shows up as a locator timeout seconds later.
    """
    response = page.goto(path)
    assert response is not None and response.ok, (
        f"GET {path} answered {response.status if response else 'nothing'}"
    )


def log_in(page: "Page", username: str, password: str) -> None:
    """Log in through the login form and wait until the workspace has loaded.

    The form is found by its fields' names, not their labels, so that it works whatever
    language the browser asks for (a `locale="uk-UA"` context gets the page in Ukrainian).
    """
    from playwright.sync_api import expect

    open_page(page, "/login/")
    form = page.locator("form[action='/login/']")
    form.locator("input[name=username]").fill(username)
    form.locator("input[name=password]").fill(password)
    form.locator("button[type=submit]").click()
    expect(page.locator("[data-testid=logout]")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_be_visible()

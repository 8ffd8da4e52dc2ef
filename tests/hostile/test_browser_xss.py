"""Stored payloads in a real Chromium under Herald's Content-Security-Policy: pages showing
them run none of them (the payload's `window.__xss` stays unset) and meet no policy
violation (a payload the page had let through would be reported as a blocked inline
script)."""

import pytest

from tests.factories import PASSWORD, UserFactory
from tests.hostile.test_stored_xss import _contact, _order, _segment, _webhook_request
from tests.support import browser as browser_support
from tests.support.browser import log_in
from tests.test_browser_csp import Violations, visit

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_pages_showing_stored_payloads_run_no_script_and_meet_no_violation(
    page, live_server, api, full_key
):
    violations = Violations(page)
    superuser = UserFactory(role="admin", username="sam-super")
    superuser.is_superuser = superuser.is_staff = True
    superuser.save(update_fields=["is_superuser", "is_staff"])
    pages = [
        *_contact(api, full_key),
        *_segment(api, full_key),
        *_order(api, full_key),
        *_webhook_request(api, full_key)[1:2],
    ]
    log_in(page, superuser.username, PASSWORD)
    for path in pages:
        visit(page, live_server.url + path)
        page.wait_for_load_state("load")
        assert page.evaluate("window.__xss") is None, f"a stored payload ran on {path}"
        print(f"{path:60} no script ran, violations: {violations.seen}")
        assert violations.take() == [], path

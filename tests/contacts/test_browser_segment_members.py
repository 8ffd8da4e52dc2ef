"""The marketer watches a dynamic segment's members follow a contact, in a real Chromium, with
a real Celery worker filling the segment and draining the marked contacts."""

import pytest
from playwright.sync_api import expect

from contacts.models import SegmentKind
from contacts.segments import segment_create
from contacts.services import contact_update
from marketing.models import Event
from tests.conftest import wait_for
from tests.contacts.factories import ContactFactory
from tests.factories import PASSWORD
from tests.support import browser as browser_support
from tests.support.browser import log_in, open_page

browser = browser_support.browser
page = browser_support.page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_contact_entering_and_leaving_shows_on_the_segment_page(page, marketer, celery_worker):
    ContactFactory(first_name="Ann", last_name="Lee", tags=["vip"])
    bob = ContactFactory(first_name="Bob", last_name="Ray", tags=[])
    # Created through the service: its commit has the worker fill it (no events for that).
    vip = segment_create(name="VIP", kind=SegmentKind.DYNAMIC, filter={"tags": "vip"})

    log_in(page, marketer.username, PASSWORD)

    def members_shown(expected: str):
        def check():
            open_page(page, f"/segments/{vip.pk}/")
            count = page.get_by_test_id("members-count")
            return count.count() == 1 and count.inner_text() == expected

        wait_for(check, timeout=30, interval=0.5)

    members_shown("1")
    expect(page.get_by_test_id("entered-day")).to_have_text("0")

    contact_update(contact=bob, data={"tags": ["vip"]})  # marks Bob; the worker drains
    members_shown("2")
    expect(page.get_by_test_id("entered-day")).to_have_text("1")
    expect(page.get_by_test_id("changes-latest")).to_contain_text("Bob Ray")

    contact_update(contact=bob, data={"tags": []})
    members_shown("1")
    expect(page.get_by_test_id("left-day")).to_have_text("1")
    keys = Event.objects.filter(contact=bob).values_list("event_type__key", flat=True)
    assert sorted(keys) == ["segmentEntered", "segmentLeft"]

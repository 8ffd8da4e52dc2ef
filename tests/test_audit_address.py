"""The address the audit log records: never a server error on a forged X-Forwarded-For."""

import pytest
from auditlog.models import LogEntry

from contacts.models import Contact
from tests.contacts.test_pages import contact_post


@pytest.fixture
def as_marketer(client, marketer):
    client.force_login(marketer)
    return client


@pytest.mark.parametrize("forwarded", ["not-an-address", "1.2.3.4.5, 10.0.0.1", "[::1"])
def test_a_forged_forwarded_for_is_ignored_not_a_server_error(as_marketer, forwarded):
    response = as_marketer.post(
        "/contacts/new/", contact_post(), HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR="10.1.2.3"
    )
    assert response.status_code == 302
    contact = Contact.objects.get(email="new@example.com")
    entry = LogEntry.objects.get_for_object(contact).get()
    assert entry.remote_addr == "10.1.2.3"


def test_the_proxy_appended_address_is_recorded_when_trusted(as_marketer, settings):
    settings.HERALD_TRUST_X_FORWARDED_FOR = True
    as_marketer.post(
        "/contacts/new/",
        contact_post(),
        HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9",
        REMOTE_ADDR="10.1.2.3",
    )
    entry = LogEntry.objects.get_for_object(Contact.objects.get()).get()
    assert entry.remote_addr == "203.0.113.9"


def test_a_trusted_but_garbled_address_is_recorded_as_unknown(as_marketer, settings):
    settings.HERALD_TRUST_X_FORWARDED_FOR = True
    response = as_marketer.post(
        "/contacts/new/", contact_post(), HTTP_X_FORWARDED_FOR="garbage", REMOTE_ADDR="10.1.2.3"
    )
    assert response.status_code == 302
    assert LogEntry.objects.get_for_object(Contact.objects.get()).get().remote_addr is None

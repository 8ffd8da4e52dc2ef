"""The rules of a privacy erasure, one at a time, without a worker: what stays blocked, what
stays counted, what other people keep, and what the audit log says."""

import json

import pytest
from auditlog.models import LogEntry
from django.db import connection

from campaigns.models import Campaign, Delivery, DeliveryEvent
from campaigns.pipeline import launch_reach
from config.core.privacy import REDACTED, address_digest
from contacts.models import ChannelType, ImportFailure, ImportJob, Suppression, Unsubscribed
from contacts.services import contact_delete
from contacts.suppression import suppression_add_manual, suppressions_active
from contacts.unsubscribed import unsubscribed_add
from marketing.audit import audit_line
from marketing.models import Event, EventType
from tests.campaigns.test_pipeline import make_template
from tests.contacts.factories import ContactFactory
from tests.privacy.support import database_hits

pytestmark = pytest.mark.django_db

EMAIL = "ines.vortigern@erase-rules.example"


def erase(contact):
    return contact_delete(contact=contact, erase=True)


def test_an_erased_unsubscribed_address_stays_unsubscribed_when_it_comes_back():
    contact = ContactFactory(email=EMAIL, tags=["vip"])
    unsubscribed_add(emails=[EMAIL])
    erase(contact)
    assert not Unsubscribed.objects.filter(email=EMAIL).exists()

    ContactFactory(email=EMAIL, tags=["vip"])  # re-imported a year later
    campaign = Campaign.objects.create(
        name="Spring",
        channels=[ChannelType.EMAIL],
        template=make_template(),
        audience_filter={"tags": {"$in": ["vip"]}},
        status="draft",
    )
    assert launch_reach(campaign)[ChannelType.EMAIL] == 0


def test_an_erased_suppressed_address_stays_suppressed_on_every_send_path():
    suppression_add_manual(channel=ChannelType.SMS, address="+380991112233", detail="asked")
    erase(ContactFactory(email=EMAIL, phone="+380991112233"))

    [kept] = Suppression.objects.all()
    assert kept.address == address_digest("+380991112233") and kept.detail == "asked"
    assert suppressions_active(ChannelType.SMS, ["+380991112233"])["+380991112233"] == kept
    ContactFactory(phone="+380991112233", tags=["vip"])
    campaign = Campaign.objects.create(
        name="SMS",
        channels=[ChannelType.SMS],
        template=make_template(),
        audience_filter={"tags": {"$in": ["vip"]}},
        status="draft",
    )
    assert launch_reach(campaign).get(ChannelType.SMS, 0) == 0


def test_deliveries_stay_counted_without_address_params_or_mentions():
    contact = ContactFactory(email=EMAIL, first_name="Ines")
    delivery = Delivery.objects.create(
        contact=contact,
        channel="email",
        locator=EMAIL,
        status="bounced",
        params={"name": "Ines"},
        error=f"550 {EMAIL}: no such user",
    )
    DeliveryEvent.objects.create(
        delivery=delivery, status="clicked", url=f"https://shop.example/?e={EMAIL}"
    )
    erase(contact)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.locator, delivery.params) == ("bounced", "", {})
    assert delivery.error == f"550 {REDACTED}: no such user"
    assert delivery.events.get().url == f"https://shop.example/?e={REDACTED}"


def test_messages_not_sent_yet_are_skipped_not_sent_to_nobody():
    contact = ContactFactory(email=EMAIL)
    queued = Delivery.objects.create(contact=contact, channel="email", locator=EMAIL)
    erase(contact)

    queued.refresh_from_db()
    assert (queued.status, queued.error, queued.locator) == ("skipped", "contact erased", "")


def test_other_people_in_the_same_import_keep_their_data():
    job = ImportJob.objects.create(
        payload={
            "contacts": [
                {"firstName": "Ines", "channels": [{"type": "email", "value": EMAIL}]},
                {"firstName": "Ines", "channels": [{"type": "email", "value": "other@x.org"}]},
            ]
        }
    )
    data = {"firstName": "Ines", "email": EMAIL}
    ImportFailure.objects.create(job=job, index=0, reason="bad", data=data)
    erase(ContactFactory(email=EMAIL, first_name="Ines"))

    job.refresh_from_db()
    mine, other = job.payload["contacts"]
    assert mine == {"firstName": REDACTED, "channels": [{"type": "email", "value": REDACTED}]}
    assert other["firstName"] == "Ines" and other["channels"][0]["value"] == "other@x.org"
    assert ImportFailure.objects.get().data == {"firstName": REDACTED, "email": REDACTED}


def test_an_event_keyed_by_the_address_without_a_contact_is_erased_too():
    kind = EventType.objects.create(key="browsing")
    Event.objects.create(event_type=kind, key_value=EMAIL, params={"page": "/shoes"})
    Event.objects.create(event_type=kind, key_value="someone-else", params={"friend": EMAIL})
    erase(ContactFactory(email=EMAIL))

    keyed, mention = Event.objects.order_by("pk")
    assert (keyed.key_value, keyed.params) == ("", {})
    assert (mention.key_value, mention.params) == ("someone-else", {"friend": REDACTED})


def test_the_erase_is_in_the_audit_log_and_the_old_values_are_not():
    contact = ContactFactory(email=EMAIL, first_name="Ines", town="Lviv")
    erase(contact)

    entries = LogEntry.objects.get_for_object(contact).order_by("pk")
    last = entries.last()
    assert last.action == LogEntry.Action.DELETE and "erased" in last.additional_data
    line = audit_line(last)
    assert line.summary == "deleted, personal data erased everywhere"
    assert "contacts_contact" not in " ".join(line.changes)  # tables the erasers changed
    for entry in entries:
        text = f"{entry.changes} {entry.object_repr} {entry.changes_text}"
        assert EMAIL not in text and "Ines" not in text and "Lviv" not in text


def test_a_failing_eraser_leaves_nothing_half_erased(monkeypatch):
    from config.core import privacy

    contact = ContactFactory(email=EMAIL)
    unsubscribed_add(emails=[EMAIL])

    def broken(person):
        raise RuntimeError("disk full")

    monkeypatch.setitem(privacy._registry.erasers, "broken", broken)
    with pytest.raises(RuntimeError):
        erase(contact)
    contact.refresh_from_db()
    assert contact.email == EMAIL and contact.deleted_at is None
    assert Unsubscribed.objects.filter(email=EMAIL).exists()


def test_the_redact_function_keeps_the_json_shape(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT herald_redact(%s::jsonb, %s)",
            [
                '{"n": 380991112233, "list": ["A@X.org", true, null], "A@x.org": 1}',
                r"a@x\.org|380991112233",
            ],
        )
        assert json.loads(cursor.fetchone()[0]) == {
            "n": REDACTED,
            "list": [REDACTED, True, None],
            REDACTED: 1,
        }


def test_the_search_finds_a_copy_in_a_table_no_eraser_knows():
    """A table added later that copies the address is reported by the whole-schema search
    of test_erase_everywhere, whatever its column types."""
    phone = "+380991112233"
    # Created inside the test's transaction: it goes with the rollback.
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE privacy_probe (note text, payload jsonb, blob bytea)")
        cursor.execute(
            "INSERT INTO privacy_probe VALUES ('', %s::jsonb, %s)",
            [json.dumps({"to": EMAIL.upper()}), f"phone={phone}".encode()],
        )
    assert database_hits([EMAIL, phone, "Vortigern-Nobody"]) == {
        "privacy_probe.payload": {EMAIL},
        "privacy_probe.blob": {phone},
    }

"""The per-person export: everything Herald holds about one contact as one JSON document,
from the API (GET /api/herald/contacts/{id}/export, the contact read right) and from the
contact's page (admins and marketers), streamed, and recorded in the audit log."""

import json

import pytest
from auditlog.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.models import Delivery, DeliveryEvent
from campaigns.promo.models import PromoCode
from campaigns.promo.services import promo_codes_add, promo_pool_create
from config.core.api_keys import api_key_create
from contacts.models import Segment, Suppression, Unsubscribed
from marketing.audit import audit_line
from marketing.models import Event, EventType, Order
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db

EMAIL = "otto.export@privacy.example"
SECTIONS = {
    "exportedAt",
    "contact",
    "channels",
    "fields",
    "tags",
    "segments",
    "optin",
    "unsubscribed",
    "suppressions",
    "importFailures",
    "deliveries",
    "promoCodes",
    "events",
    "orders",
    "workflowRuns",
    "signups",
}


def export_path(contact) -> str:
    return f"/api/herald/contacts/{contact.pk}/export"


def read(response) -> dict:
    assert response.status_code == 200, response.content
    assert response.streaming
    assert response["Content-Type"] == "application/json"
    return json.loads(b"".join(response.streaming_content))


@pytest.fixture
def otto(db):
    contact = ContactFactory(
        email=EMAIL,
        phone="+380501234567",
        first_name="Otto",
        tags=["vip"],
        extra_channels=[{"type": "telegram", "value": "551234"}],
    )
    Segment.objects.create(name="Readers").contacts.add(contact)
    Unsubscribed.objects.create(email=EMAIL, reason="asked")
    Suppression.objects.create(channel="sms", address="+380501234567", reason="manual")
    delivery = Delivery.objects.create(
        contact=contact, channel="email", locator=EMAIL, status="opened", params={"n": 1}
    )
    DeliveryEvent.objects.create(delivery=delivery, status="sent")
    DeliveryEvent.objects.create(delivery=delivery, status="opened")
    pool = promo_pool_create(name="Spring", key="SPRING")
    promo_codes_add(pool=pool, lines=[(1, "SPRING-1")])
    PromoCode.objects.filter(code="SPRING-1").update(delivery=delivery)
    Event.objects.create(
        event_type=EventType.objects.create(key="viewed"),
        key_value=EMAIL,
        params={"page": "/kettles"},
        contact=contact,
    )
    Order.objects.create(
        external_order_id="o-1",
        external_customer_id="c-1",
        contact=contact,
        status="DELIVERED",
        total_cost=12,
        currency="EUR",
        date="2026-11-01T10:00:00Z",
        email=EMAIL,
    )
    return contact


def test_the_export_holds_every_section_with_the_contacts_data(api, full_key, otto):
    document = read(api.get(export_path(otto), key=full_key))

    assert set(document) == SECTIONS
    assert document["contact"]["email"] == EMAIL and document["contact"]["firstName"] == "Otto"
    assert {"type": "telegram", "value": "551234"} in document["channels"]
    assert document["tags"] == ["vip"]
    assert [s["name"] for s in document["segments"]] == ["Readers"]
    assert document["optin"]["confirmed"] is True
    assert [u["email"] for u in document["unsubscribed"]] == [EMAIL]
    assert [s["address"] for s in document["suppressions"]] == ["+380501234567"]
    [delivery] = document["deliveries"]
    assert delivery["locator"] == EMAIL and delivery["params"] == {"n": 1}
    assert [step["status"] for step in delivery["history"]] == ["sent", "opened"]
    assert [code["code"] for code in document["promoCodes"]] == ["SPRING-1"]
    assert [(e["eventTypeKey"], e["params"]) for e in document["events"]] == [
        ("viewed", {"page": "/kettles"})
    ]
    assert [o["externalOrderId"] for o in document["orders"]] == ["o-1"]


def test_an_export_is_recorded_in_the_audit_log(api, full_key, otto):
    read(api.get(export_path(otto), key=full_key))

    entry = LogEntry.objects.get_for_object(otto).filter(action=LogEntry.Action.ACCESS).get()
    assert entry.additional_data == {"export": "personal data"}
    assert audit_line(entry).summary == "personal data exported"


def test_many_deliveries_are_read_in_chunks_not_all_at_once(api, full_key, otto):
    Delivery.objects.bulk_create(
        Delivery(contact=otto, channel="email", locator=EMAIL, status="sent") for _ in range(1_200)
    )
    with CaptureQueriesContext(connection) as queries:
        document = read(api.get(export_path(otto), key=full_key))

    assert len(document["deliveries"]) == 1_201
    histories = [
        query for query in queries.captured_queries if '"campaigns_deliveryevent"' in query["sql"]
    ]
    # One round trip per 500 deliveries (campaigns.privacy.EXPORT_CHUNK) for their histories:
    # the rows were read in three chunks, never held all at once.
    assert len(histories) == 3


def test_a_key_without_the_contact_read_right_is_403(api, admin_user, otto, limited_key):
    add_only, secret = api_key_create(name="shop sync", rights="contacts", created_by=admin_user)
    add_only.secret = secret

    for key in (limited_key, add_only):
        response = api.get(export_path(otto), key=key)
        assert response.status_code == 403, response.content
    assert not LogEntry.objects.filter(action=LogEntry.Action.ACCESS).exists()


def test_an_unknown_contact_is_404_naming_it(api, full_key):
    response = api.get("/api/herald/contacts/987654/export", key=full_key)
    assert response.status_code == 404
    assert "987654" in json.dumps(response.json())


def test_an_erased_contact_exports_what_is_left(api, full_key, otto):
    from contacts.services import contact_delete

    contact_delete(contact=otto, erase=True)
    document = read(api.get(export_path(otto), key=full_key))

    assert EMAIL not in json.dumps(document)
    assert document["contact"]["deletedAt"] is not None
    assert len(document["deliveries"]) == 1  # still counted, without the address


def test_the_contact_page_offers_the_download_to_marketers(client, marketer, otto):
    client.force_login(marketer)
    page = client.get(f"/contacts/{otto.pk}/").content.decode()
    assert 'data-testid="export"' in page and f"/contacts/{otto.pk}/export/" in page

    response = client.get(f"/contacts/{otto.pk}/export/")
    assert f"contact-{otto.pk}-export.json" in response["Content-Disposition"]
    assert read(response)["contact"]["email"] == EMAIL


def test_viewers_get_no_export_button_and_a_403(client, viewer, otto):
    client.force_login(viewer)
    assert 'data-testid="export"' not in client.get(f"/contacts/{otto.pk}/").content.decode()
    assert client.get(f"/contacts/{otto.pk}/export/").status_code == 403


def test_the_schema_documents_the_export(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/herald/contacts/{contact_id}/export/"]["get"]
    assert "privacy" in operation["description"]
    assert set(operation["responses"]) >= {"200", "404"}

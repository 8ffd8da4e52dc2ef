"""One-contact resources of the eSputnik v1 API: subscribe, add, read/update/delete, search."""

import pytest

from contacts.models import Contact, ContactSource, Segment, SegmentKind, SegmentMembership
from marketing.models import Event
from tests.contacts.factories import ContactFactory, CustomFieldFactory, SegmentFactory

pytestmark = pytest.mark.django_db

DOCUMENTED_SUBSCRIBE = {
    "contact": {
        "channels": [
            {"type": "email", "value": "mail@example.com"},
            {"type": "sms", "value": "380942583691"},
        ],
        "firstName": "John",
        "lastName": "Smith",
        "address": {
            "town": "London",
            "region": "West",
            "address": "First str. 1",
            "postcode": "12345",
        },
        "fields": [{"id": "12345", "value": "..."}],
    },
    "groups": ["Subscribers"],
    "formType": "abc",
}


@pytest.fixture
def contacts_key(admin_user):
    from config.core.api_keys import api_key_create

    key, secret = api_key_create(name="crm", rights="contacts", created_by=admin_user)
    key.secret = secret
    return key


@pytest.fixture
def field_12345(db):
    return CustomFieldFactory(id=12345, name="Note", key="NOTE")


def test_documented_subscribe_example_creates_unconfirmed_contact_in_group_with_event(
    api, full_key, field_12345
):
    response = api.post("/api/v1/contact/subscribe", key=full_key, body=DOCUMENTED_SUBSCRIBE)

    assert response.status_code == 200, response.content
    contact = Contact.objects.get(pk=response.json()["id"])
    assert contact.email == "mail@example.com"
    assert contact.phone == "+380942583691"
    assert (contact.first_name, contact.last_name, contact.town) == ("John", "Smith", "London")
    assert contact.fields == {"12345": "..."}
    assert contact.confirmed is False
    assert contact.source == ContactSource.SUBSCRIBE_FORM
    group = Segment.objects.get(name="Subscribers")
    assert group.kind == SegmentKind.STATIC
    assert SegmentMembership.objects.filter(segment=group, contact=contact).exists()
    event = Event.objects.get(contact=contact)
    assert event.event_type.key == "subscribeFromApi-abc"
    assert event.key_value == str(contact.pk)
    assert event.params == {"ContactId": contact.pk, "EmailAddress": "mail@example.com"}


def test_subscribe_with_unknown_custom_field_is_400_naming_it(api, full_key):
    response = api.post("/api/v1/contact/subscribe", key=full_key, body=DOCUMENTED_SUBSCRIBE)

    assert response.status_code == 400
    assert "contact.fields[0].id" in response.json()
    assert not Contact.objects.exists()


def test_subscribe_twice_within_a_minute_is_409(api, full_key, field_12345):
    first = api.post("/api/v1/contact/subscribe", key=full_key, body=DOCUMENTED_SUBSCRIBE)
    again = api.post("/api/v1/contact/subscribe", key=full_key, body=DOCUMENTED_SUBSCRIBE)

    assert first.status_code == 200
    assert again.status_code == 409
    assert Contact.objects.count() == 1


def test_subscribe_existing_contact_updates_it_keeps_confirmed_and_only_adds_groups(api, full_key):
    contact = ContactFactory(email="known@example.com", first_name="Old", confirmed=True)
    old_group = SegmentFactory(name="Old")
    SegmentMembership.objects.create(segment=old_group, contact=contact)

    response = api.post(
        "/api/v1/contact/subscribe/",
        key=full_key,
        body={
            "contact": {
                "channels": [{"type": "email", "value": "Known@Example.com"}],
                "firstName": "New",
            },
            "groups": ["Newsletter"],
        },
    )

    assert response.status_code == 200, response.content
    assert response.json() == {"id": contact.pk}
    contact.refresh_from_db()
    assert contact.first_name == "New"
    assert contact.confirmed is True
    assert set(contact.segments.values_list("name", flat=True)) == {"Old", "Newsletter"}
    event = Event.objects.get(contact=contact)
    assert event.event_type.key == "subscribeUpdateFromApi"


def test_subscribe_by_phone_only_has_no_email_param(api, full_key):
    response = api.post(
        "/api/v1/contact/subscribe",
        key=full_key,
        body={"contact": {"channels": [{"type": "sms", "value": "+380942583691"}]}},
    )

    assert response.status_code == 200, response.content
    event = Event.objects.get()
    assert event.params == {"ContactId": response.json()["id"]}


def test_subscribe_rejects_bad_email_and_missing_contact(api, full_key):
    bad = api.post(
        "/api/v1/contact/subscribe",
        key=full_key,
        body={"contact": {"channels": [{"type": "email", "value": "not-an-email"}]}},
    )
    missing = api.post("/api/v1/contact/subscribe", key=full_key, body={"groups": ["x"]})

    assert bad.status_code == 400
    assert "contact.channels[0].value" in bad.json()
    assert missing.status_code == 400
    assert "contact" in missing.json()


def test_malformed_json_is_400(api, full_key):
    response = api.client.post(
        "/api/v1/contact/subscribe",
        data="{not json",
        content_type="application/json",
        headers={"Authorization": api.basic(full_key.secret)},
    )

    assert response.status_code == 400
    assert response.json()


def test_add_contact_creates_confirmed_then_updates_by_email(api, contacts_key):
    body = {
        "channels": [{"type": "email", "value": "ann@example.com"}],
        "firstName": "Ann",
        "languageCode": "uk",
        "timeZone": "Europe/Kyiv",
        "externalCustomerId": "crm-1",
        "tags": ["vip"],
    }
    created = api.post("/api/v1/contact", key=contacts_key, body=body)
    updated = api.post(
        "/api/v1/contact/",
        key=contacts_key,
        body={"channels": [{"type": "email", "value": "ANN@example.com"}], "lastName": "Lee"},
    )

    assert created.status_code == 200, created.content
    assert updated.json() == created.json()
    contact = Contact.objects.get()
    assert (contact.first_name, contact.last_name) == ("Ann", "Lee")
    assert contact.confirmed is True
    assert contact.source == ContactSource.API
    assert (contact.language_code, contact.time_zone, contact.tags) == (
        "uk",
        "Europe/Kyiv",
        ["vip"],
    )
    assert not Event.objects.exists()


def test_add_contact_without_any_channel_is_400(api, full_key):
    response = api.post("/api/v1/contact", key=full_key, body={"firstName": "Nobody"})

    assert response.status_code == 400
    assert "channels" in response.json()


def test_names_longer_than_40_characters_are_400(api, full_key):
    response = api.post(
        "/api/v1/contact",
        key=full_key,
        body={"channels": [{"type": "email", "value": "a@example.com"}], "firstName": "x" * 41},
    )

    assert response.status_code == 400
    assert "firstName" in response.json()


def test_get_contact_returns_documented_contact_object(api, full_key):
    contact = ContactFactory(
        email="g@example.com", phone="+380942583691", town="Kyiv", fields={"7": "x"}
    )
    SegmentMembership.objects.create(segment=SegmentFactory(name="VIP"), contact=contact)

    response = api.get(f"/api/v1/contact/{contact.pk}", key=full_key)

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == contact.pk
    assert body["channels"] == [
        {"type": "email", "value": "g@example.com"},
        {"type": "sms", "value": "+380942583691"},
    ]
    assert body["address"]["town"] == "Kyiv"
    assert body["fields"] == [{"id": 7, "value": "x"}]
    assert body["groups"] == ["VIP"]


def test_update_contact_changes_only_given_fields_and_ignores_body_id(api, full_key):
    contact = ContactFactory(email="u@example.com", first_name="Before", last_name="Same")
    other = ContactFactory()

    response = api.put(
        f"/api/v1/contact/{contact.pk}/",
        key=full_key,
        body={"id": other.pk, "firstName": "After", "address": {"town": "Lviv"}},
    )

    assert response.status_code == 200, response.content
    contact.refresh_from_db()
    other.refresh_from_db()
    assert (contact.first_name, contact.last_name, contact.town) == ("After", "Same", "Lviv")
    assert other.first_name != "After"


def test_update_never_creates_unknown_id_is_404(api, full_key):
    response = api.put(
        "/api/v1/contact/999999",
        key=full_key,
        body={"channels": [{"type": "email", "value": "new@example.com"}]},
    )

    assert response.status_code == 404
    assert response.json()
    assert not Contact.objects.exists()


def test_update_to_taken_external_id_is_409(api, full_key):
    ContactFactory(external_customer_id="taken")
    contact = ContactFactory()

    response = api.put(
        f"/api/v1/contact/{contact.pk}", key=full_key, body={"externalCustomerId": "taken"}
    )

    assert response.status_code == 409
    assert "externalCustomerId" in response.json()


def test_delete_contact_soft_deletes_then_404(api, full_key):
    contact = ContactFactory(email="d@example.com")

    deleted = api.delete(f"/api/v1/contact/{contact.pk}", key=full_key)
    again = api.get(f"/api/v1/contact/{contact.pk}", key=full_key)

    assert deleted.status_code == 200
    assert again.status_code == 404
    contact.refresh_from_db()
    assert contact.deleted_at is not None
    assert contact.email == "d@example.com"


def test_delete_by_external_id_with_erase_wipes_personal_data(api, full_key):
    contact = ContactFactory(email="e@example.com", external_customer_id="crm-9", town="Kyiv")

    response = api.delete("/api/v1/contact?externalCustomerId=crm-9&erase=true", key=full_key)

    assert response.status_code == 200, response.content
    contact.refresh_from_db()
    assert contact.deleted_at is not None
    assert (contact.email, contact.first_name, contact.town) == ("", "", "")
    assert contact.external_customer_id is None


def test_delete_by_unknown_external_id_is_404_and_missing_is_400(api, full_key):
    assert api.delete("/api/v1/contact?externalCustomerId=nope", key=full_key).status_code == 404
    assert api.delete("/api/v1/contact", key=full_key).status_code == 400
    assert (
        api.delete("/api/v1/contact?externalCustomerId=x&erase=maybe", key=full_key).status_code
        == 400
    )


def test_search_pages_with_total_count_header(api, full_key):
    for n in range(5):
        ContactFactory(email=f"s{n}@example.com", last_name="Walker")
    ContactFactory(email="other@example.com", last_name="Other")
    ContactFactory(last_name="Walker", deleted_at="2025-01-01T00:00:00Z")

    first = api.get("/api/v1/contacts?lastname=walker&startindex=1&maxrows=2", key=full_key)
    third = api.get("/api/v1/contacts/?lastname=walker&startindex=5&maxrows=2", key=full_key)

    assert first.status_code == 200
    assert first["TotalCount"] == "5"
    assert [c["channels"][0]["value"] for c in first.json()] == ["s0@example.com", "s1@example.com"]
    assert [c["channels"][0]["value"] for c in third.json()] == ["s4@example.com"]


def test_search_by_email_and_sms(api, full_key):
    contact = ContactFactory(email="find@example.com", phone="+380942583691")
    ContactFactory(email="not@example.com")

    by_email = api.get("/api/v1/contacts?email=Find@example.com", key=full_key)
    by_sms = api.get("/api/v1/contacts?sms=380942583691", key=full_key)
    bad = api.get("/api/v1/contacts?maxrows=zero", key=full_key)

    assert [c["id"] for c in by_email.json()] == [contact.pk]
    assert [c["id"] for c in by_sms.json()] == [contact.pk]
    assert bad.status_code == 400
    assert "maxrows" in bad.json()


def test_events_only_key_is_403_and_contacts_key_works(api, limited_key, contacts_key):
    body = {"channels": [{"type": "email", "value": "k@example.com"}]}

    denied = api.post("/api/v1/contact", key=limited_key, body=body)
    search_denied = api.get("/api/v1/contacts", key=limited_key)
    allowed = api.post("/api/v1/contact", key=contacts_key, body=body)

    assert denied.status_code == 403
    assert denied.json()["missingRight"] == "contacts_add_update"
    assert search_denied.status_code == 403
    assert allowed.status_code == 200


def test_no_credentials_is_401(api):
    assert api.get("/api/v1/contacts").status_code == 401

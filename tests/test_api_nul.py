"""A NUL character (which PostgreSQL cannot store) anywhere in an API body is a 400 naming
the field, on every endpoint, never a server error; nothing is stored."""

import pytest

from contacts.models import Contact, ImportJob
from marketing.models import Event

NUL_PROBLEM = "must not contain the NUL character (\\u0000)"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"eventTypeKey": "t", "keyValue": "a\u0000b"}, "keyValue"),
        (
            {"eventTypeKey": "t", "keyValue": "a", "params": [{"name": "x", "value": "\u0000"}]},
            "params.0.value",
        ),
        ({"eventTypeKey": "t", "keyValue": "a", "extra\u0000": 1}, "extra\ufffd"),
    ],
)
def test_event_with_nul_is_400_naming_the_field(api, full_key, body, field):
    response = api.post("/api/v1/event", key=full_key, body=body)
    assert response.status_code == 400, response.content
    assert response.json() == {field: [NUL_PROBLEM]}
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_contact_and_bulk_contacts_with_nul_are_400(api, full_key):
    contact = {"channels": [{"type": "email", "value": "a@example.com"}], "firstName": "A\u0000"}
    single = api.post("/api/v1/contact", key=full_key, body=contact)
    assert single.status_code == 400, single.content
    assert single.json() == {"firstName": [NUL_PROBLEM]}

    # In a bulk import the row fails alone (tests/test_api_unstorable.py has the whole run).
    bulk = api.post("/api/v1/contacts", key=full_key, body={"contacts": [{}, contact]})
    assert bulk.status_code == 200, bulk.content
    assert [(row["index"], row["reason"]) for row in bulk.json()["failedContacts"]] == [
        (1, f"firstName: {NUL_PROBLEM}")
    ]
    assert bulk.json()["failedContacts"][0]["contact"]["firstName"] == "A\ufffd"
    assert not Contact.objects.exists()
    assert ImportJob.objects.get().failed_count == 1


@pytest.mark.django_db
def test_form_body_with_nul_is_400(client, api, full_key):
    response = client.post(
        "/api/v1/event",
        "eventTypeKey=t&keyValue=a%00b",
        content_type="application/x-www-form-urlencoded",
        headers={"Authorization": api.basic(full_key.secret)},
    )
    assert response.status_code == 400, response.content
    assert response.json() == {"keyValue": [NUL_PROBLEM]}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "fields", "field"),
    [
        ("/api/v1/message/email", {"subject": "Hi\x00", "emails": "a@example.com"}, "subject"),
        ("/api/v1/message/sms", {"text": "Hi", "phoneNumbers": "+380\x00"}, "phoneNumbers"),
        ("/api/v1/event", {"eventTypeKey": "t", "keyValue": "a", "x\x00": "1"}, "x\ufffd"),
    ],
)
def test_multipart_body_with_nul_is_400(client, api, full_key, path, fields, field):
    response = client.post(path, fields, headers={"Authorization": api.basic(full_key.secret)})

    assert response.status_code == 400, response.content
    assert response.json() == {field: [NUL_PROBLEM]}
    assert not Event.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "method", "field"),
    [
        ("/api/v1/contacts?firstname=a%00b", "get", "firstname"),
        ("/api/v1/contacts?email=a%00b@example.com", "get", "email"),
        ("/api/v1/groups?name=a%00b", "get", "name"),
        ("/api/v1/contact?externalCustomerId=a%00b", "delete", "externalCustomerId"),
        ("/api/v1/groups?na%00me=x", "get", "na\ufffdme"),
    ],
)
def test_query_parameter_with_nul_is_400_naming_it(api, full_key, path, method, field):
    response = getattr(api, method)(path, key=full_key)
    assert response.status_code == 400, response.content
    assert response.json() == {field: [NUL_PROBLEM]}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/orders/?q=a%00", "/contacts/?q=a%00b"])
def test_page_query_parameter_with_nul_is_400(client, admin_user, path):
    client.force_login(admin_user)
    response = client.get(path)
    assert response.status_code == 400
    assert "q must not contain the NUL character" in response.content.decode()

"""POST /v1/contacts (add/update many) and GET /v1/importstatus/{sessionId}."""

import json

import pytest

from contacts.bulk.jobs import import_job_run
from contacts.models import Contact, ContactSource, ImportJob, ImportStatus, SegmentMembership
from marketing.models import Event
from tests.conftest import wait_for
from tests.contacts.factories import ContactFactory, CustomFieldFactory, SegmentFactory

DOCUMENTED_BULK = {
    "contacts": [
        {
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
            "fields": [{"id": 12345, "value": "..."}],
        }
    ],
    "dedupeOn": "email",
    "customFieldsIDs": [12345],
    "groupNames": ["Customers"],
    "groupNamesExclude": ["Subscribers"],
    "restoreDeleted": False,
    "eventKeyForNewContacts": "newContact",
}


def email(address: str) -> dict:
    return {"type": "email", "value": address}


def post_and_run(api, key, body) -> dict:
    """POST /v1/contacts, run its job in-process, return the import status body."""
    response = api.post("/api/v1/contacts", key=key, body=body)
    assert response.status_code == 200, response.content
    session = response.json()["asyncSessionId"]
    import_job_run(job_id=ImportJob.objects.get(session_id=session).pk)
    status = api.get(f"/api/v1/importstatus/{session}", key=key)
    assert status.status_code == 200
    return status.json()


@pytest.mark.django_db
def test_documented_example_creates_confirmed_contact_in_group_with_new_contact_event(
    api, full_key
):
    CustomFieldFactory(id=12345, name="Note", key="NOTE")
    subscribers = SegmentFactory(name="Subscribers")

    response = api.post("/api/v1/contacts", key=full_key, body=DOCUMENTED_BULK)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["failedContacts"] == []
    assert body["errorMessage"] is None
    job = ImportJob.objects.get(session_id=body["asyncSessionId"])
    assert job.status == ImportStatus.STARTED
    import_job_run(job_id=job.pk)

    status = api.get(f"/api/v1/importstatus/{body['asyncSessionId']}/", key=full_key).json()
    assert status["status"] == "FINISHED"
    contact = Contact.objects.get()
    assert status["contactIds"] == [contact.pk]
    assert status["created"] == 1
    assert contact.confirmed is True
    assert contact.source == ContactSource.IMPORT
    assert contact.phone == "+380942583691"
    assert contact.fields == {"12345": "..."}
    assert list(contact.segments.values_list("name", flat=True)) == ["Customers"]
    assert not SegmentMembership.objects.filter(segment=subscribers).exists()
    event = Event.objects.get()
    assert event.event_type.key == "newContact"
    assert event.key_value == "mail@example.com"
    assert event.params == {
        "contactId": contact.pk,
        "EmailAddress": "mail@example.com",
        "SMS": "+380942583691",
    }


@pytest.mark.django_db
def test_documented_example_without_custom_field_12345_reports_the_row(api, full_key):
    status = post_and_run(api, full_key, DOCUMENTED_BULK)

    assert status["status"] == "FINISHED"
    assert status["failedContacts"] == [
        {
            "index": 0,
            "reason": "fields[0].id: no custom field with id 12345",
            "contact": DOCUMENTED_BULK["contacts"][0],
        }
    ]
    assert not Contact.objects.exists()


@pytest.mark.django_db
def test_rows_refused_at_once_are_in_the_reply_with_the_row_and_the_reason(api, full_key):
    number = CustomFieldFactory(type="number")
    body = {
        "contacts": [
            DOCUMENTED_BULK["contacts"][0],  # custom field 12345 does not exist
            {"channels": [email("fine@example.com")], "fields": [{"id": number.pk, "value": "x"}]},
            {"channels": [email("a@@example.com")]},
            {"channels": [{"type": "sms", "value": "+1"}]},
            {"channels": [email("ok@example.com")], "fields": [{"id": number.pk, "value": 7}]},
        ]
    }

    response = api.post("/api/v1/contacts", key=full_key, body=body)

    assert response.status_code == 200, response.content
    reply = response.json()
    assert set(reply) == {"asyncSessionId", "failedContacts", "errorMessage"}
    assert reply["errorMessage"] is None
    failed = {row["index"]: row for row in reply["failedContacts"]}
    assert set(failed) == {0, 1, 2, 3}
    assert failed[0] == {
        "index": 0,
        "reason": "fields[0].id: no custom field with id 12345",
        "contact": DOCUMENTED_BULK["contacts"][0],
    }
    assert failed[1]["reason"].startswith("fields[0].value:")
    assert failed[2]["reason"].startswith("channels[0].value:") and "email" in failed[2]["reason"]
    assert failed[3]["reason"].startswith("channels[0].value:") and "phone" in failed[3]["reason"]
    assert failed[3]["contact"] == body["contacts"][3]
    # The import reports them again, with what it refuses itself, and stores the good row.
    import_job_run(job_id=ImportJob.objects.get().pk)
    status = api.get(f"/api/v1/importstatus/{reply['asyncSessionId']}/", key=full_key).json()
    assert status["failedContacts"] == reply["failedContacts"]
    assert list(Contact.objects.values_list("email", flat=True)) == ["ok@example.com"]


@pytest.mark.django_db
def test_more_than_3000_or_no_contacts_is_400(api, full_key):
    many = {"contacts": [{"channels": [email(f"p{i}@example.com")]} for i in range(3001)]}

    assert api.post("/api/v1/contacts", key=full_key, body=many).status_code == 400
    empty = api.post("/api/v1/contacts", key=full_key, body={"contacts": []})
    assert empty.status_code == 400
    assert "contacts" in empty.json()
    assert not ImportJob.objects.exists()


@pytest.mark.django_db
def test_bad_options_are_400_naming_the_field(api, full_key):
    contacts = [{"channels": [email("a@example.com")]}]
    for options, field in (
        ({"dedupeOn": "phone"}, "dedupeOn"),
        ({"dedupeOn": "fieldId"}, "fieldId"),
        ({"contactFields": ["shoeSize"]}, "contactFields"),
        ({"customFieldsIDs": "12"}, "customFieldsIDs"),
        ({"eventKeyForNewContacts": "new contact"}, "eventKeyForNewContacts"),
        ({"restoreDeleted": "perhaps"}, "restoreDeleted"),
    ):
        response = api.post(
            "/api/v1/contacts", key=full_key, body={"contacts": contacts, **options}
        )
        assert response.status_code == 400, options
        assert field in response.json(), response.json()


@pytest.mark.django_db
def test_bad_rows_among_good_ones_are_reported_and_good_ones_stored(api, full_key):
    body = {
        "contacts": [
            {"channels": [email("good1@example.com")]},
            "not an object",
            {"channels": [email("not-an-email")]},
            {"channels": [email("good2@example.com")], "firstName": "x" * 41},
            {"channels": [{"type": "sms", "value": "12"}]},
            {"firstName": "No channel"},
            {"channels": [email("good3@example.com")], "timeZone": "Mars/Olympus"},
            {"channels": [email("good4@example.com")]},
        ]
    }

    response = api.post("/api/v1/contacts", key=full_key, body=body)
    immediate = {row["index"] for row in response.json()["failedContacts"]}
    import_job_run(job_id=ImportJob.objects.get().pk)
    status = api.get(f"/api/v1/importstatus/{response.json()['asyncSessionId']}", key=full_key)

    # The shape, names, emails and phones are refused at once; what needs the stored contacts
    # and the rest of the rules (a contact without a channel, a time zone) in the import.
    assert immediate == {1, 2, 3, 4}
    failed = {row["index"]: row["reason"] for row in status.json()["failedContacts"]}
    assert set(failed) == {1, 2, 3, 4, 5, 6}
    assert "channels[0].value" in failed[2]
    assert "firstName" in failed[3]
    assert "channels" in failed[5]
    assert "timeZone" in failed[6]
    assert set(Contact.objects.values_list("email", flat=True)) == {
        "good1@example.com",
        "good4@example.com",
    }
    assert status.json()["failed"] == 6
    assert status.json()["processed"] == 8


@pytest.mark.django_db
def test_dedupe_on_email_updates_existing_and_creates_new(api, full_key):
    existing = ContactFactory(email="old@example.com", first_name="Old", confirmed=False)

    status = post_and_run(
        api,
        full_key,
        {
            "contacts": [
                {"channels": [email("OLD@example.com")], "firstName": "Renamed"},
                {"channels": [email("new@example.com")], "firstName": "New"},
            ],
            "eventKeyForNewContacts": "newContact",
        },
    )

    existing.refresh_from_db()
    new = Contact.objects.get(email="new@example.com")
    assert existing.first_name == "Renamed"
    assert existing.confirmed is False  # an update does not confirm
    assert status["contactIds"] == [existing.pk, new.pk]
    assert (status["created"], status["updated"]) == (1, 1)
    # events go to new contacts only
    assert list(Event.objects.values_list("contact_id", flat=True)) == [new.pk]


@pytest.mark.django_db
def test_dedupe_on_sms_matches_phone_in_any_format(api, full_key):
    existing = ContactFactory(email="", phone="+380942583691")

    post_and_run(
        api,
        full_key,
        {
            "contacts": [{"channels": [{"type": "sms", "value": "380942583691"}], "lastName": "P"}],
            "dedupeOn": "sms",
        },
    )

    existing.refresh_from_db()
    assert existing.last_name == "P"
    assert Contact.objects.count() == 1


@pytest.mark.django_db
def test_dedupe_on_email_or_sms_falls_back_to_phone(api, full_key):
    by_phone = ContactFactory(email="", phone="+380942583691")

    post_and_run(
        api,
        full_key,
        {
            "contacts": [
                {
                    "channels": [
                        email("fresh@example.com"),
                        {"type": "sms", "value": "+380942583691"},
                    ],
                    "firstName": "Phone",
                }
            ],
            "dedupeOn": "email_or_sms",
        },
    )

    by_phone.refresh_from_db()
    assert (by_phone.first_name, by_phone.email) == ("Phone", "fresh@example.com")
    assert Contact.objects.count() == 1


@pytest.mark.django_db
def test_dedupe_on_id_and_on_custom_field(api, full_key):
    crm = CustomFieldFactory(name="CRM id", key="CRM")
    by_id = ContactFactory(email="id@example.com")
    by_field = ContactFactory(email="field@example.com", fields={str(crm.pk): "C-77"})

    post_and_run(
        api,
        full_key,
        {"contacts": [{"id": by_id.pk, "firstName": "ById"}], "dedupeOn": "id"},
    )
    post_and_run(
        api,
        full_key,
        {
            "contacts": [{"fields": [{"id": crm.pk, "value": "C-77"}], "firstName": "ByField"}],
            "dedupeOn": "fieldId",
            "fieldId": crm.pk,
        },
    )

    by_id.refresh_from_db()
    by_field.refresh_from_db()
    assert by_id.first_name == "ById"
    assert by_field.first_name == "ByField"
    assert Contact.objects.count() == 2


@pytest.mark.django_db
def test_external_customer_id_wins_over_dedupe_on(api, full_key):
    same_email = ContactFactory(email="shared@example.com", first_name="Email twin")
    by_ext = ContactFactory(email="other@example.com", external_customer_id="crm-5")

    status = post_and_run(
        api,
        full_key,
        {
            "contacts": [
                {
                    "channels": [email("shared@example.com")],
                    "externalCustomerId": "crm-5",
                    "firstName": "Ext",
                },
                {
                    "channels": [email("shared@example.com")],
                    "externalCustomerId": "crm-6",
                    "firstName": "Brand new",
                },
            ],
            "dedupeOn": "email",
        },
    )

    by_ext.refresh_from_db()
    same_email.refresh_from_db()
    assert (by_ext.first_name, by_ext.email) == ("Ext", "shared@example.com")
    assert same_email.first_name == "Email twin"
    assert Contact.objects.get(external_customer_id="crm-6").first_name == "Brand new"
    assert (status["created"], status["updated"]) == (1, 1)


@pytest.mark.django_db
def test_contact_fields_and_custom_field_ids_limit_what_is_updated(api, full_key):
    kept = CustomFieldFactory(name="Kept")
    changed = CustomFieldFactory(name="Changed")
    contact = ContactFactory(
        email="limit@example.com",
        first_name="First",
        last_name="Last",
        fields={str(kept.pk): "old", str(changed.pk): "old"},
    )

    post_and_run(
        api,
        full_key,
        {
            "contacts": [
                {
                    "channels": [email("limit@example.com")],
                    "firstName": "NewFirst",
                    "lastName": "NewLast",
                    "fields": [
                        {"id": kept.pk, "value": "new"},
                        {"id": changed.pk, "value": "new"},
                    ],
                }
            ],
            "contactFields": ["lastName"],
            "customFieldsIDs": [changed.pk],
        },
    )

    contact.refresh_from_db()
    assert (contact.first_name, contact.last_name) == ("First", "NewLast")
    assert contact.fields == {str(kept.pk): "old", str(changed.pk): "new"}


@pytest.mark.django_db
def test_deleted_match_fails_without_restore_and_is_restored_with_it(api, full_key):
    contact = ContactFactory(email="gone@example.com", deleted_at="2025-01-01T00:00:00Z")
    body = {
        "contacts": [{"channels": [email("gone@example.com")], "firstName": "Back"}],
        "eventKeyForNewContacts": "newContact",
    }

    refused = post_and_run(api, full_key, body)
    contact.refresh_from_db()
    assert contact.deleted_at is not None
    assert "restoreDeleted" in refused["failedContacts"][0]["reason"]

    restored = post_and_run(api, full_key, {**body, "restoreDeleted": True})
    contact.refresh_from_db()
    assert contact.deleted_at is None
    assert contact.first_name == "Back"
    assert restored["contactIds"] == [contact.pk]
    assert Contact.objects.count() == 1
    # a restored contact is not new: no event
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_groups_are_added_and_excluded(api, full_key):
    old = SegmentFactory(name="Leads")
    contact = ContactFactory(email="g@example.com")
    SegmentMembership.objects.create(segment=old, contact=contact)

    post_and_run(
        api,
        full_key,
        {
            "contacts": [{"channels": [email("g@example.com")]}],
            "groupNames": ["Customers", "VIP"],
            "groupNamesExclude": ["Leads", "Never existed"],
        },
    )

    assert set(contact.segments.values_list("name", flat=True)) == {"Customers", "VIP"}


@pytest.mark.django_db
def test_dynamic_group_name_is_400(api, full_key):
    SegmentFactory(name="Smart", kind="dynamic")

    response = api.post(
        "/api/v1/contacts",
        key=full_key,
        body={"contacts": [{"channels": [email("a@example.com")]}], "groupNames": ["Smart"]},
    )

    assert response.status_code == 400
    assert "groupNames" in response.json()


@pytest.mark.django_db
def test_duplicates_inside_one_request_make_one_contact(api, full_key):
    status = post_and_run(
        api,
        full_key,
        {
            "contacts": [
                {"channels": [email("twice@example.com")], "firstName": "A"},
                {"channels": [email("Twice@example.com")], "lastName": "B"},
            ]
        },
    )

    contact = Contact.objects.get()
    assert (contact.first_name, contact.last_name) == ("A", "B")
    assert status["contactIds"] == [contact.pk]
    assert status["failedContacts"] == []


@pytest.mark.django_db
def test_required_custom_field_needed_for_new_contacts_only(api, full_key):
    required = CustomFieldFactory(name="Consent", required=True, type="boolean")
    existing = ContactFactory(email="old@example.com")

    status = post_and_run(
        api,
        full_key,
        {
            "contacts": [
                {"channels": [email("old@example.com")], "firstName": "Updated"},
                {"channels": [email("new@example.com")]},
                {
                    "channels": [email("ok@example.com")],
                    "fields": [{"id": required.pk, "value": "yes"}],
                },
            ]
        },
    )

    existing.refresh_from_db()
    assert existing.first_name == "Updated"
    assert [row["index"] for row in status["failedContacts"]] == [1]
    assert "required" in status["failedContacts"][0]["reason"]
    assert Contact.objects.get(email="ok@example.com").fields == {str(required.pk): True}


@pytest.mark.django_db
def test_running_a_finished_job_again_changes_nothing(api, full_key):
    response = api.post(
        "/api/v1/contacts",
        key=full_key,
        body={"contacts": [{"channels": [email("once@example.com")]}]},
    )
    job = ImportJob.objects.get(session_id=response.json()["asyncSessionId"])

    import_job_run(job_id=job.pk)
    import_job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == ImportStatus.FINISHED
    assert job.created_count == 1
    assert job.contact_ids == [Contact.objects.get().pk]


@pytest.mark.django_db
def test_import_status_unknown_session_is_404_json(api, full_key):
    for session in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        response = api.get(f"/api/v1/importstatus/{session}", key=full_key)
        assert response.status_code == 404
        assert "detail" in response.json()


@pytest.mark.django_db
def test_events_only_key_cannot_import(api, limited_key):
    response = api.post(
        "/api/v1/contacts",
        key=limited_key,
        body={"contacts": [{"channels": [email("a@example.com")]}]},
    )

    assert response.status_code == 403


@pytest.mark.worker
def test_real_worker_runs_the_import_to_finished(api, full_key, celery_worker):
    response = api.post(
        "/api/v1/contacts/",
        key=full_key,
        body={
            "contacts": [{"channels": [email(f"w{i}@example.com")]} for i in range(50)],
            "groupNames": ["Worker"],
        },
    )
    session = response.json()["asyncSessionId"]

    def finished():
        body = api.get(f"/api/v1/importstatus/{session}", key=full_key).json()
        return body if body["status"] in ("FINISHED", "ERROR") else None

    status = wait_for(finished, timeout=60)
    assert status["status"] == "FINISHED", status
    assert len(status["contactIds"]) == 50
    assert Contact.objects.filter(segments__name="Worker").count() == 50


@pytest.mark.django_db
def test_wrong_body_types_are_400_naming_the_field(api, full_key):
    not_list = api.post("/api/v1/contacts", key=full_key, body={"contacts": "everyone"})
    list_body = api.post("/api/v1/contacts", key=full_key, body=[{"channels": []}])
    bad_groups = api.post(
        "/api/v1/contacts",
        key=full_key,
        body={"contacts": [{"channels": [email("a@example.com")]}], "groupNames": "VIP"},
    )

    assert not_list.status_code == 400
    assert "contacts" in not_list.json()
    assert list_body.status_code == 400
    assert bad_groups.status_code == 400
    assert "groupNames" in bad_groups.json()


@pytest.mark.django_db
def test_external_ids_with_array_syntax_characters_match_their_contacts(api, full_key):
    # The match keys travel as one array literal: quotes, backslashes, commas and braces in
    # them must reach PostgreSQL as the values they are.
    ids = ['a"b', "c\\d", "e,f", "{g}", "h i", "NULL"]
    rows = [{"externalCustomerId": ext, "firstName": "Old"} for ext in ids]
    first = post_and_run(api, full_key, {"contacts": rows})
    rows = [{"externalCustomerId": ext, "firstName": "New"} for ext in ids]
    second = post_and_run(api, full_key, {"contacts": rows})

    assert (first["created"], second["created"], second["updated"]) == (6, 0, 6)
    assert sorted(Contact.objects.values_list("external_customer_id", "first_name")) == sorted(
        (ext, "New") for ext in ids
    )


@pytest.mark.django_db
def test_json_body_in_another_charset_is_imported_too(api, full_key):
    # Only a UTF-8 body is stored as received; any other is stored as parsed.
    body = {
        "contacts": [{"channels": [email("latin@example.com")]}, "not an object"],
        "dedupeOn": "email",
    }
    response = api.client.post(
        "/api/v1/contacts",
        data=json.dumps(body).encode("latin-1"),
        content_type="application/json; charset=latin-1",
        headers={"Authorization": api.basic(full_key.secret)},
    )
    assert response.status_code == 200, response.content
    assert [row["index"] for row in response.json()["failedContacts"]] == [1]
    job = ImportJob.objects.get(session_id=response.json()["asyncSessionId"])
    import_job_run(job_id=job.pk)

    job.refresh_from_db()
    assert (job.status, job.created_count, job.failed_count) == (ImportStatus.FINISHED, 1, 1)
    assert Contact.objects.get().email == "latin@example.com"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ("{not json", "JSON parse error"),
        ('{"contacts": [{"firstName": NaN}]}', "JSON parse error"),
        ('[{"firstName": "A"}]', "must be a JSON object"),
    ],
)
def test_malformed_or_non_object_json_body_is_400_naming_the_problem(api, full_key, data, problem):
    response = api.client.post(
        "/api/v1/contacts",
        data=data,
        content_type="application/json",
        headers={"Authorization": api.basic(full_key.secret)},
    )

    assert response.status_code == 400
    assert problem in response.content.decode()
    assert not ImportJob.objects.exists()

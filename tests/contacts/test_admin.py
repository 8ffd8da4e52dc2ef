"""Django admin for the contacts app: pages open, searches work, writes go through services."""

import pytest

from contacts.models import (
    Contact,
    CustomField,
    CustomFieldType,
    ImportFailure,
    ImportJob,
    Segment,
    SegmentKind,
    SegmentMembership,
    Unsubscribed,
)
from tests.contacts.factories import ContactFactory, CustomFieldFactory, SegmentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_admin(client, admin_user):
    client.force_login(admin_user)
    return client


def action(client, model: str, name: str, ids, **extra):
    return client.post(
        f"/admin/contacts/{model}/",
        {"action": name, "_selected_action": [str(i) for i in ids], **extra},
        follow=True,
    )


@pytest.fixture
def data(db):
    contact = ContactFactory(email="ann@example.com", external_customer_id="CRM-1")
    segment = SegmentFactory(name="List")
    SegmentMembership.objects.create(segment=segment, contact=contact)
    job = ImportJob.objects.create(total=2, failed_count=1)
    ImportFailure.objects.create(job=job, index=1, reason="channels[0].value: not an email")
    return {
        "contact": contact,
        "segment": segment,
        "field": CustomFieldFactory(),
        "unsubscribed": Unsubscribed.objects.create(email="gone@example.com"),
        "job": job,
    }


@pytest.mark.parametrize(
    "path",
    [
        "/admin/contacts/contact/",
        "/admin/contacts/contact/?q=ann",
        "/admin/contacts/contact/?status=deleted&confirmed__exact=1",
        "/admin/contacts/contact/{contact}/change/",
        "/admin/contacts/customfield/",
        "/admin/contacts/customfield/add/",
        "/admin/contacts/customfield/{field}/change/",
        "/admin/contacts/segment/",
        "/admin/contacts/segment/add/",
        "/admin/contacts/segment/{segment}/change/",
        "/admin/contacts/unsubscribed/",
        "/admin/contacts/unsubscribed/add/",
        "/admin/contacts/importjob/",
        "/admin/contacts/importjob/{job}/change/",
        "/admin/contacts/dynamicmember/",
        "/admin/contacts/segmentrecheck/",
        "/admin/contacts/segmentchange/",
        "/admin/contacts/segmentchange/?entered__exact=1",
    ],
)
def test_admin_pages_open(as_admin, data, path):
    ids = {name: obj.pk for name, obj in data.items()}
    assert as_admin.get(path.format(**ids)).status_code == 200


def test_search_finds_contacts_by_email_and_external_id(as_admin, data):
    ContactFactory(email="bob@example.com")
    page = as_admin.get("/admin/contacts/contact/", {"q": "CRM-1"}).content.decode()
    assert "ann@example.com" in page and "bob@example.com" not in page


def test_contacts_are_read_only_records_in_the_admin(as_admin, data):
    assert as_admin.get("/admin/contacts/contact/add/").status_code == 403
    page = as_admin.get(f"/admin/contacts/contact/{data['contact'].pk}/change/").content.decode()
    assert f'href="/contacts/{data["contact"].pk}/"' in page
    assert 'name="email"' not in page


def test_import_jobs_are_read_only_and_show_failures(as_admin, data):
    job = data["job"]
    page = as_admin.get(f"/admin/contacts/importjob/{job.pk}/change/").content.decode()
    assert "channels[0].value: not an email" in page
    assert as_admin.get("/admin/contacts/importjob/add/").status_code == 403
    assert as_admin.post(f"/admin/contacts/importjob/{job.pk}/delete/").status_code == 403


def test_soft_delete_and_restore_actions(as_admin):
    contacts = ContactFactory.create_batch(2)
    action(as_admin, "contact", "soft_delete", [c.pk for c in contacts])
    assert Contact.objects.filter(deleted_at__isnull=False).count() == 2
    response = action(as_admin, "contact", "restore", [c.pk for c in contacts])
    assert "2 contact(s) restored" in response.content.decode()
    assert Contact.objects.alive().count() == 2


def test_confirm_action(as_admin):
    waiting = ContactFactory(confirmed=False)
    action(as_admin, "contact", "confirm", [waiting.pk])
    waiting.refresh_from_db()
    assert waiting.confirmed and waiting.confirmed_at is not None


def test_unsubscribe_action_lists_the_emails(as_admin):
    ann = ContactFactory(email="ann@example.com")
    no_email = ContactFactory(email="", phone="+380942583691")
    response = action(as_admin, "contact", "unsubscribe_emails", [ann.pk, no_email.pk])
    assert "1 address(es) unsubscribed" in response.content.decode()
    assert list(Unsubscribed.objects.values_list("email", flat=True)) == ["ann@example.com"]


def test_export_action_streams_csv_of_the_selection(as_admin):
    ann = ContactFactory(email="ann@example.com")
    ContactFactory(email="bob@example.com")
    response = as_admin.post(
        "/admin/contacts/contact/", {"action": "export_csv", "_selected_action": [ann.pk]}
    )
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    assert "ann@example.com" in body and "bob@example.com" not in body


def test_bulk_actions_refuse_huge_selections(as_admin, monkeypatch):
    monkeypatch.setattr("contacts.admin.ACTION_MAX_CONTACTS", 1)
    contacts = ContactFactory.create_batch(2)
    response = action(as_admin, "contact", "soft_delete", [c.pk for c in contacts])
    assert "Select at most 1 contacts" in response.content.decode()
    assert Contact.objects.alive().count() == 2


def custom_field_body(**overrides):
    body = {
        "name": "Tier",
        "key": "TIER",
        "group_name": "Personal",
        "group_key": "PERSONAL",
        "type": "combobox",
        "allowed_values": "bronze\ngold",
    }
    body.update(overrides)
    return body


def test_custom_field_add_and_change_go_through_the_service(as_admin):
    response = as_admin.post("/admin/contacts/customfield/add/", custom_field_body())
    assert response.status_code == 302
    field = CustomField.objects.get()
    assert field.allowed_values == ["bronze", "gold"]
    response = as_admin.post(
        "/admin/contacts/customfield/add/", custom_field_body(key="OTHER", type="text")
    )
    assert "only a combobox field has allowed values" in response.content.decode()
    assert CustomField.objects.count() == 1

    ContactFactory(fields={str(field.pk): "gold"})
    response = as_admin.post(
        f"/admin/contacts/customfield/{field.pk}/change/",
        custom_field_body(type="text", allowed_values=""),
    )
    assert "clear them first" in response.content.decode()
    field.refresh_from_db()
    assert field.type == CustomFieldType.CHOICE


def test_custom_field_used_by_a_segment_is_not_deleted(as_admin):
    field = CustomFieldFactory()
    SegmentFactory(kind=SegmentKind.DYNAMIC, filter={f"fields.{field.pk}": "x"})
    response = as_admin.post(f"/admin/contacts/customfield/{field.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert CustomField.objects.filter(pk=field.pk).exists()
    response = action(as_admin, "customfield", "delete_through_service", [field.pk])
    assert "Not deleted" in response.content.decode()


def test_segment_add_with_a_bad_filter_names_the_path(as_admin):
    response = as_admin.post(
        "/admin/contacts/segment/add/",
        {
            "name": "Broken",
            "kind": "dynamic",
            "description": "",
            "filter": '{"town": {"$near": "Kyiv"}}',
        },
    )
    assert "filter.town.$near" in response.content.decode()
    assert not Segment.objects.exists()
    response = as_admin.post(
        "/admin/contacts/segment/add/",
        {"name": "Kyiv", "kind": "dynamic", "description": "", "filter": '{"town": "Kyiv"}'},
    )
    assert response.status_code == 302
    assert Segment.objects.get().filter == {"town": "Kyiv"}


def test_membership_inline_adds_and_removes_through_services(as_admin):
    segment = SegmentFactory(name="List")
    old, new = ContactFactory(), ContactFactory()
    membership = SegmentMembership.objects.create(segment=segment, contact=old)
    prefix = "segmentmembership_set"
    response = as_admin.post(
        f"/admin/contacts/segment/{segment.pk}/change/",
        {
            "name": "List",
            "kind": "static",
            "description": "",
            "filter": "{}",
            f"{prefix}-TOTAL_FORMS": "2",
            f"{prefix}-INITIAL_FORMS": "1",
            f"{prefix}-MIN_NUM_FORMS": "0",
            f"{prefix}-MAX_NUM_FORMS": "1000",
            f"{prefix}-0-id": str(membership.pk),
            f"{prefix}-0-segment": str(segment.pk),
            f"{prefix}-0-DELETE": "on",
            f"{prefix}-1-contact": str(new.pk),
            f"{prefix}-1-segment": str(segment.pk),
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert list(segment.contacts.all()) == [new]


def test_unsubscribed_add_and_remove_in_admin(as_admin):
    response = as_admin.post(
        "/admin/contacts/unsubscribed/add/", {"email": "New@Example.com", "reason": "phone call"}
    )
    assert response.status_code == 302
    entry = Unsubscribed.objects.get()
    assert (entry.email, entry.reason) == ("new@example.com", "phone call")
    response = as_admin.post("/admin/contacts/unsubscribed/add/", {"email": "not-an-email"})
    assert "not a valid email address" in response.content.decode()
    action(as_admin, "unsubscribed", "remove_through_service", [entry.pk])
    assert not Unsubscribed.objects.exists()


def test_segment_delete_action_respects_references(as_admin):
    base = SegmentFactory(name="Base")
    SegmentFactory(name="Uses base", kind=SegmentKind.DYNAMIC, filter={"segment": base.pk})
    lonely = SegmentFactory(name="Lonely")
    response = action(as_admin, "segment", "delete_through_service", [base.pk, lonely.pk])
    page = response.content.decode()
    assert "1 segment(s) deleted" in page and "Uses base" in page
    assert set(Segment.objects.values_list("name", flat=True)) == {"Base", "Uses base"}


def test_marketer_cannot_use_the_admin(client, marketer):
    client.force_login(marketer)
    assert client.get("/admin/contacts/contact/").status_code == 302


def test_inlines_show_a_bounded_number_of_rows(as_admin, monkeypatch):
    monkeypatch.setattr("contacts.admin.NewestMembersFormSet.limit", 2)
    monkeypatch.setattr("contacts.admin.FirstFailuresFormSet.limit", 1)
    segment = SegmentFactory()
    members = [ContactFactory(first_name=f"Member{n}", last_name="Zed") for n in range(3)]
    for contact in members:
        SegmentMembership.objects.create(segment=segment, contact=contact)
    page = as_admin.get(f"/admin/contacts/segment/{segment.pk}/change/").content.decode()
    assert 'name="segmentmembership_set-INITIAL_FORMS" value="2"' in page
    assert str(members[2]) in page and str(members[0]) not in page

    job = ImportJob.objects.create(total=2, failed_count=2)
    ImportFailure.objects.create(job=job, index=0, reason="first problem")
    ImportFailure.objects.create(job=job, index=1, reason="second problem")
    page = as_admin.get(f"/admin/contacts/importjob/{job.pk}/change/").content.decode()
    assert "first problem" in page and "second problem" not in page
    assert f"/contacts/import/{job.session_id}/failed.csv" in page

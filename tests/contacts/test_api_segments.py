"""The eSputnik v1 API: groups, group contacts, attach/detach, addressbooks, unsubscribed list."""

import pytest

from contacts.models import CustomFieldType, SegmentKind, SegmentMembership, Unsubscribed
from contacts.segments import MEMBERSHIP_MAX_IDS, groups_ensure
from tests.contacts.factories import ContactFactory, CustomFieldFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def members(segment) -> set[int]:
    return set(
        SegmentMembership.objects.filter(segment=segment).values_list("contact_id", flat=True)
    )


class TestGroups:
    def test_lists_groups_with_documented_types_and_total_header(self, api, full_key):
        SegmentFactory(name="Newsletter")
        SegmentFactory(name="VIP", kind=SegmentKind.DYNAMIC, filter={"tags": "vip"})
        response = api.get("/api/v1/groups", key=full_key)
        assert response.status_code == 200
        assert response["TotalCount"] == "2"
        assert sorted((g["name"], g["type"]) for g in response.json()) == [
            ("Newsletter", "Static"),
            ("VIP", "Dynamic"),
        ]
        assert set(response.json()[0]) == {"id", "name", "type"}

    def test_paging_is_one_based_and_name_filters(self, api, full_key):
        for n in range(5):
            SegmentFactory(name=f"List {n}")
        SegmentFactory(name="Other")
        response = api.get("/api/v1/groups/?startindex=2&maxrows=2&name=list", key=full_key)
        assert response.status_code == 200
        assert response["TotalCount"] == "5"
        assert [g["name"] for g in response.json()] == ["List 1", "List 2"]

    def test_bad_paging_is_400_naming_the_parameter(self, api, full_key):
        response = api.get("/api/v1/groups?startindex=0&maxrows=x", key=full_key)
        assert response.status_code == 400
        assert set(response.json()) == {"startindex", "maxrows"}

    def test_limited_key_is_403_and_no_key_is_401(self, api, limited_key):
        assert api.get("/api/v1/groups", key=limited_key).status_code == 403
        assert api.get("/api/v1/groups").status_code == 401


class TestGroupContacts:
    def test_static_group_contacts_as_documented_contacts(self, api, full_key):
        group = SegmentFactory(name="Newsletter")
        ann = ContactFactory(email="ann@example.com")
        bob = ContactFactory(email="bob@example.com", deleted_at="2024-01-01T00:00:00Z")
        ContactFactory(email="cyd@example.com")
        group.contacts.add(ann, bob)
        response = api.get(f"/api/v1/group/{group.pk}/contacts", key=full_key)
        assert response.status_code == 200
        assert response["TotalCount"] == "1"
        (contact,) = response.json()
        assert contact["id"] == ann.pk
        assert {"type": "email", "value": "ann@example.com"} in contact["channels"]
        assert contact["groups"] == ["Newsletter"]

    def test_dynamic_group_contacts_are_the_filter_matches_paged(self, api, full_key):
        group = SegmentFactory(kind=SegmentKind.DYNAMIC, filter={"languageCode": "en"})
        english = [ContactFactory(language_code="en") for _ in range(3)]
        ContactFactory(language_code="uk")
        response = api.get(
            f"/api/v1/group/{group.pk}/contacts/?startindex=2&maxrows=1", key=full_key
        )
        assert response["TotalCount"] == "3"
        assert [c["id"] for c in response.json()] == [english[1].pk]

    def test_unknown_group_is_404_json(self, api, full_key):
        response = api.get("/api/v1/group/999999/contacts", key=full_key)
        assert response.status_code == 404
        assert "999999" in response.json()["detail"]


class TestAttach:
    def test_attach_by_contact_ids_reports_unknown_ones(self, api, full_key):
        group = SegmentFactory()
        ann, bob = ContactFactory(), ContactFactory()
        response = api.post(
            f"/api/v1/group/{group.pk}/contacts/attach",
            key=full_key,
            body={"contactIds": [ann.pk, bob.pk, 999999]},
        )
        assert response.status_code == 200
        assert response.json() == {"attached": 2, "alreadyMembers": 0, "notFound": [999999]}
        assert members(group) == {ann.pk, bob.pk}

    def test_attach_twice_is_harmless(self, api, full_key):
        group = SegmentFactory()
        ann = ContactFactory()
        path = f"/api/v1/group/{group.pk}/contacts/attach/"
        api.post(path, key=full_key, body={"contactIds": [ann.pk]})
        response = api.post(path, key=full_key, body={"contactIds": [ann.pk, ann.pk]})
        assert response.json() == {"attached": 0, "alreadyMembers": 1, "notFound": []}
        assert members(group) == {ann.pk}

    def test_attach_by_external_customer_ids(self, api, full_key):
        group = SegmentFactory()
        ann = ContactFactory(external_customer_id="A-1")
        response = api.post(
            f"/api/v1/group/{group.pk}/contacts/attach",
            key=full_key,
            body={"externalCustomerIds": ["A-1", "nobody"]},
        )
        assert response.json()["notFound"] == ["nobody"]
        assert members(group) == {ann.pk}

    def test_comma_separated_ids_are_accepted(self, api, full_key):
        group = SegmentFactory()
        ann, bob = ContactFactory(), ContactFactory()
        response = api.post(
            f"/api/v1/group/{group.pk}/contacts/attach",
            key=full_key,
            body={"contactIds": f"{ann.pk},{bob.pk}, {ann.pk}"},
        )
        assert response.status_code == 200
        assert members(group) == {ann.pk, bob.pk}

    def test_form_encoded_ids_are_accepted(self, api, full_key):
        group = SegmentFactory()
        ann, bob = ContactFactory(), ContactFactory()
        response = api.client.post(
            f"/api/v1/group/{group.pk}/contacts/attach",
            data={"contactIds": [str(ann.pk), str(bob.pk)]},
            headers={"Authorization": api.basic(full_key.secret)},
        )
        assert response.status_code == 200
        assert members(group) == {ann.pk, bob.pk}

    def test_deleted_contacts_are_not_attached(self, api, full_key):
        group = SegmentFactory()
        gone = ContactFactory(deleted_at="2024-01-01T00:00:00Z")
        response = api.post(
            f"/api/v1/group/{group.pk}/contacts/attach",
            key=full_key,
            body={"contactIds": [gone.pk]},
        )
        assert response.json()["notFound"] == [gone.pk]
        assert members(group) == set()

    def test_more_than_500_ids_is_400(self, api, full_key):
        group = SegmentFactory()
        ids = list(range(1, MEMBERSHIP_MAX_IDS + 2))
        response = api.post(
            f"/api/v1/group/{group.pk}/contacts/attach", key=full_key, body={"contactIds": ids}
        )
        assert response.status_code == 400
        assert "500" in response.json()["contactIds"][0]

    def test_exactly_500_ids_is_accepted(self, api, full_key):
        group = SegmentFactory()
        ids = list(range(1, MEMBERSHIP_MAX_IDS + 1))
        response = api.post(
            f"/api/v1/group/{group.pk}/contacts/attach", key=full_key, body={"contactIds": ids}
        )
        assert response.status_code == 200

    def test_both_kinds_of_ids_is_400(self, api, full_key):
        group = SegmentFactory()
        response = api.post(
            f"/api/v1/group/{group.pk}/contacts/attach",
            key=full_key,
            body={"contactIds": [1], "externalCustomerIds": ["x"]},
        )
        assert response.status_code == 400
        assert "contactIds" in response.json()

    def test_no_ids_is_400_for_attach(self, api, full_key):
        group = SegmentFactory()
        response = api.post(f"/api/v1/group/{group.pk}/contacts/attach", key=full_key, body={})
        assert response.status_code == 400

    def test_bad_id_is_400_naming_its_position(self, api, full_key):
        group = SegmentFactory()
        response = api.post(
            f"/api/v1/group/{group.pk}/contacts/attach",
            key=full_key,
            body={"contactIds": [1, "abc"]},
        )
        assert response.status_code == 400
        assert "contactIds[1]" in response.json()

    def test_dynamic_group_refuses_attach(self, api, full_key):
        group = SegmentFactory(kind=SegmentKind.DYNAMIC, filter={})
        ann = ContactFactory()
        response = api.post(
            f"/api/v1/group/{group.pk}/contacts/attach", key=full_key, body={"contactIds": [ann.pk]}
        )
        assert response.status_code == 400
        assert "static" in response.json()["segment"][0]

    def test_unknown_group_is_404(self, api, full_key):
        response = api.post(
            "/api/v1/group/999999/contacts/attach", key=full_key, body={"contactIds": [1]}
        )
        assert response.status_code == 404

    def test_limited_key_is_403(self, api, limited_key):
        group = SegmentFactory()
        response = api.post(
            f"/api/v1/group/{group.pk}/contacts/attach", key=limited_key, body={"contactIds": [1]}
        )
        assert response.status_code == 403


class TestDetach:
    def test_detach_some(self, api, full_key):
        group = SegmentFactory()
        ann, bob = ContactFactory(), ContactFactory(external_customer_id="B-2")
        group.contacts.add(ann, bob)
        response = api.post(
            f"/api/v1/group/{group.pk}/contacts/detach",
            key=full_key,
            body={"externalCustomerIds": ["B-2"]},
        )
        assert response.json() == {"detached": 1, "notFound": []}
        assert members(group) == {ann.pk}

    def test_detach_with_no_ids_empties_the_group(self, api, full_key):
        group, other = SegmentFactory(), SegmentFactory()
        people = [ContactFactory() for _ in range(3)]
        group.contacts.add(*people)
        other.contacts.add(people[0])
        response = api.post(f"/api/v1/group/{group.pk}/contacts/detach", key=full_key, body={})
        assert response.status_code == 200
        assert response.json()["detached"] == 3
        assert members(group) == set()
        assert members(other) == {people[0].pk}

    def test_detach_with_no_body_empties_the_group(self, api, full_key):
        group = SegmentFactory()
        group.contacts.add(ContactFactory())
        response = api.post(f"/api/v1/group/{group.pk}/contacts/detach/", key=full_key)
        assert response.status_code == 200
        assert members(group) == set()

    def test_detach_more_than_500_is_400(self, api, full_key):
        group = SegmentFactory()
        ids = ",".join(str(n) for n in range(1, 502))
        response = api.post(
            f"/api/v1/group/{group.pk}/contacts/detach", key=full_key, body={"contactIds": ids}
        )
        assert response.status_code == 400


class TestAddressBooks:
    def test_catalog_in_the_documented_shape(self, api, full_key):
        birthday = CustomFieldFactory(name="Date of birth", type=CustomFieldType.DATE)
        gender = CustomFieldFactory(
            name="Gender", type=CustomFieldType.CHOICE, allowed_values=["M", "F"]
        )
        CustomFieldFactory(name="Loyalty", group_name="Shop", group_key="SHOP")
        response = api.get("/api/v1/addressbooks", key=full_key)
        assert response.status_code == 200
        book = response.json()["addressBook"]
        assert set(book) == {"addressBookId", "name", "fieldGroups"}
        personal, shop = book["fieldGroups"]
        assert personal["name"] == "Personal"
        assert shop["name"] == "Shop"
        assert personal["fields"] == [
            {
                "id": str(birthday.pk),
                "name": "Date of birth",
                "description": {"type": "date", "required": "false", "readonly": "false"},
            },
            {
                "id": str(gender.pk),
                "name": "Gender",
                "description": {
                    "type": "combobox",
                    "required": "false",
                    "readonly": "false",
                    "allowedValues": {"possibleValues": ["M", "F"]},
                },
            },
        ]

    def test_limited_key_is_403(self, api, limited_key):
        assert api.get("/api/v1/addressbooks/", key=limited_key).status_code == 403


class TestUnsubscribed:
    def test_documented_body_adds_lower_cased_addresses(self, api, full_key):
        response = api.post(
            "/api/v1/emails/unsubscribed/add",
            key=full_key,
            body={"emails": ["test1@mail.com", "Test2@Mail.com"]},
        )
        assert response.status_code == 200
        assert response.json()["added"] == 2
        assert set(Unsubscribed.objects.values_list("email", flat=True)) == {
            "test1@mail.com",
            "test2@mail.com",
        }

    def test_form_encoded_emails_are_accepted(self, api, full_key):
        response = api.client.post(
            "/api/v1/emails/unsubscribed/add",
            data={"emails": ["a@mail.com", "b@mail.com"]},
            headers={"Authorization": api.basic(full_key.secret)},
        )
        assert response.status_code == 200
        assert Unsubscribed.objects.count() == 2

    def test_adding_again_is_harmless(self, api, full_key):
        body = {"emails": ["test1@mail.com"]}
        api.post("/api/v1/emails/unsubscribed/add", key=full_key, body=body)
        response = api.post("/api/v1/emails/unsubscribed/add/", key=full_key, body=body)
        assert response.json() == {"added": 0, "alreadyUnsubscribed": 1, "failed": []}

    def test_invalid_addresses_are_reported_valid_ones_stored(self, api, full_key):
        response = api.post(
            "/api/v1/emails/unsubscribed/add",
            key=full_key,
            body={"emails": ["ok@mail.com", "not-an-email"]},
        )
        assert response.status_code == 200
        (failure,) = response.json()["failed"]
        assert failure["index"] == 1
        assert failure["email"] == "not-an-email"
        assert Unsubscribed.objects.filter(email="ok@mail.com").exists()

    def test_only_invalid_addresses_is_400(self, api, full_key):
        response = api.post(
            "/api/v1/emails/unsubscribed/add", key=full_key, body={"emails": ["nope"]}
        )
        assert response.status_code == 400
        assert "emails" in response.json()

    def test_missing_emails_is_400(self, api, full_key):
        response = api.post("/api/v1/emails/unsubscribed/add", key=full_key, body={"email": "x"})
        assert response.status_code == 400
        assert "emails" in response.json()

    def test_delete_removes_addresses(self, api, full_key):
        Unsubscribed.objects.create(email="test1@mail.com")
        response = api.post(
            "/api/v1/emails/unsubscribed/delete",
            key=full_key,
            body={"emails": ["TEST1@mail.com", "test2@mail.com"]},
        )
        assert response.status_code == 200
        assert response.json() == {"removed": 1, "notListed": 1, "failed": []}
        assert not Unsubscribed.objects.exists()

    def test_unsubscribed_contacts_leave_unsubscribed_filter(self, api, full_key):
        from contacts.filters.compiler import filter_reach

        ContactFactory(email="test1@mail.com")
        ContactFactory(email="other@mail.com")
        api.post(
            "/api/v1/emails/unsubscribed/add", key=full_key, body={"emails": ["test1@mail.com"]}
        )
        assert filter_reach({"unsubscribed": False}) == 1

    def test_limited_key_is_403(self, api, limited_key):
        response = api.post(
            "/api/v1/emails/unsubscribed/add", key=limited_key, body={"emails": ["a@b.com"]}
        )
        assert response.status_code == 403


class TestGroupsEnsure:
    def test_creates_missing_static_groups_and_reuses_existing(self):
        existing = SegmentFactory(name="Newsletter")
        groups = groups_ensure(names=["Newsletter", "New one", "New one"])
        assert [g.name for g in groups] == ["Newsletter", "New one"]
        assert groups[0].pk == existing.pk
        assert groups[1].kind == SegmentKind.STATIC

    def test_a_dynamic_segment_name_is_refused(self):
        from contacts.errors import SegmentError

        SegmentFactory(name="VIP", kind=SegmentKind.DYNAMIC, filter={})
        with pytest.raises(SegmentError) as info:
            groups_ensure(names=["VIP"])
        assert info.value.field == "groupNames"
        assert "VIP" in info.value.message

"""Herald's native API: custom fields and segments CRUD, filter validation, reach."""

import pytest

from contacts.models import CustomField, Segment, SegmentKind, SegmentMembership
from tests.contacts.factories import ContactFactory, CustomFieldFactory, SegmentFactory

pytestmark = pytest.mark.django_db


class TestCustomFields:
    def test_create_read_update_delete(self, api, full_key):
        response = api.post(
            "/api/herald/custom-fields/",
            key=full_key,
            body={"name": "Gender", "type": "combobox", "allowedValues": ["M", "F"]},
        )
        assert response.status_code == 201, response.json()
        field = response.json()
        assert field["key"] == "GENDER"
        assert field["groupName"] == "Personal"
        path = f"/api/herald/custom-fields/{field['id']}/"
        assert api.get(path, key=full_key).json()["allowedValues"] == ["M", "F"]
        response = api.call("PATCH", path, key=full_key, body={"allowedValues": ["M", "F", "X"]})
        assert response.status_code == 200
        assert CustomField.objects.get().allowed_values == ["M", "F", "X"]
        assert api.delete(path, key=full_key).status_code == 204
        assert not CustomField.objects.exists()

    def test_delete_strips_values_from_contacts(self, api, full_key):
        field = CustomFieldFactory()
        contact = ContactFactory(fields={str(field.pk): "x", "999": "keep"})
        assert api.delete(f"/api/herald/custom-fields/{field.pk}", key=full_key).status_code == 204
        contact.refresh_from_db()
        assert contact.fields == {"999": "keep"}

    def test_delete_refused_while_a_dynamic_segment_filters_on_it(self, api, full_key):
        field = CustomFieldFactory(type="number")
        SegmentFactory(
            name="Big spenders", kind=SegmentKind.DYNAMIC, filter={f"fields.{field.pk}": 1}
        )
        response = api.delete(f"/api/herald/custom-fields/{field.pk}/", key=full_key)
        assert response.status_code == 400
        assert "Big spenders" in response.json()["field"][0]

    def test_combobox_needs_allowed_values(self, api, full_key):
        response = api.post(
            "/api/herald/custom-fields/", key=full_key, body={"name": "G", "type": "combobox"}
        )
        assert response.status_code == 400
        assert "allowedValues" in response.json()

    def test_duplicate_key_is_400_naming_key(self, api, full_key):
        body = {"name": "Score", "key": "SCORE", "type": "number"}
        api.post("/api/herald/custom-fields/", key=full_key, body=body)
        response = api.post("/api/herald/custom-fields/", key=full_key, body=body)
        assert response.status_code == 400
        assert "key" in response.json()

    def test_type_change_refused_while_contacts_hold_values(self, api, full_key):
        field = CustomFieldFactory(type="text")
        ContactFactory(fields={str(field.pk): "abc"})
        response = api.call(
            "PATCH", f"/api/herald/custom-fields/{field.pk}/", key=full_key, body={"type": "number"}
        )
        assert response.status_code == 400
        assert "type" in response.json()

    def test_unknown_type_is_400(self, api, full_key):
        response = api.post(
            "/api/herald/custom-fields/", key=full_key, body={"name": "X", "type": "colour"}
        )
        assert response.status_code == 400
        assert "type" in response.json()


class TestSegments:
    def test_create_dynamic_segment_and_reach(self, api, full_key):
        ContactFactory(tags=["vip"])
        ContactFactory(tags=["prospect"])
        ContactFactory(tags=[])
        response = api.post(
            "/api/herald/segments/",
            key=full_key,
            body={
                "name": "Prospects and VIPs",
                "kind": "dynamic",
                "filter": {"tags": {"$in": ["prospect", "vip"]}},
            },
        )
        assert response.status_code == 201, response.json()
        segment_id = response.json()["id"]
        response = api.get(f"/api/herald/segments/{segment_id}/reach/", key=full_key)
        assert response.json() == {"reach": 2}
        response = api.get(f"/api/herald/segments/{segment_id}/reach", key=full_key)
        assert response.status_code == 200

    def test_bad_filter_is_400_naming_the_filter_path(self, api, full_key):
        response = api.post(
            "/api/herald/segments/",
            key=full_key,
            body={"name": "Bad", "kind": "dynamic", "filter": {"tags": {"$near": ["x"]}}},
        )
        assert response.status_code == 400
        assert response.json() == {"filter.tags.$near": ["unknown operator '$near'"]}
        assert not Segment.objects.exists()

    def test_unknown_field_is_400_naming_it(self, api, full_key):
        response = api.post(
            "/api/herald/segments/",
            key=full_key,
            body={"name": "Bad", "kind": "dynamic", "filter": {"$or": [{"shoeSize": 42}]}},
        )
        assert response.status_code == 400
        assert list(response.json()) == ["filter.$or.0.shoeSize"]

    def test_static_segment_with_a_filter_is_400(self, api, full_key):
        response = api.post(
            "/api/herald/segments/",
            key=full_key,
            body={"name": "List", "kind": "static", "filter": {"tags": "x"}},
        )
        assert response.status_code == 400
        assert "filter" in response.json()

    def test_duplicate_name_is_400(self, api, full_key):
        SegmentFactory(name="Newsletter")
        response = api.post("/api/herald/segments/", key=full_key, body={"name": "Newsletter"})
        assert response.status_code == 400
        assert "name" in response.json()

    def test_update_filter_is_validated(self, api, full_key):
        segment = SegmentFactory(kind=SegmentKind.DYNAMIC, filter={"tags": "vip"})
        path = f"/api/herald/segments/{segment.pk}/"
        response = api.call("PATCH", path, key=full_key, body={"filter": {"confirmed": "yes"}})
        assert response.status_code == 400
        assert "filter.confirmed.$eq" in response.json()
        response = api.call("PATCH", path, key=full_key, body={"filter": {"town": "Kyiv"}})
        assert response.status_code == 200
        segment.refresh_from_db()
        assert segment.filter == {"town": "Kyiv"}

    def test_a_filter_referring_back_to_its_segment_is_400(self, api, full_key):
        one = SegmentFactory(kind=SegmentKind.DYNAMIC, filter={"tags": "vip"})
        two = SegmentFactory(kind=SegmentKind.DYNAMIC, filter={"segment": one.pk})
        response = api.call(
            "PATCH",
            f"/api/herald/segments/{one.pk}/",
            key=full_key,
            body={"filter": {"segment": two.pk}},
        )
        assert response.status_code == 400
        one.refresh_from_db()
        assert one.filter == {"tags": "vip"}

    def test_switching_to_dynamic_drops_members(self, api, full_key):
        segment = SegmentFactory()
        segment.contacts.add(ContactFactory())
        response = api.call(
            "PATCH",
            f"/api/herald/segments/{segment.pk}",
            key=full_key,
            body={"kind": "dynamic", "filter": {"confirmed": True}},
        )
        assert response.status_code == 200
        assert not SegmentMembership.objects.filter(segment=segment).exists()

    def test_delete_refused_while_another_segment_refers_to_it(self, api, full_key):
        base = SegmentFactory()
        SegmentFactory(name="Derived", kind=SegmentKind.DYNAMIC, filter={"segment": base.pk})
        response = api.delete(f"/api/herald/segments/{base.pk}/", key=full_key)
        assert response.status_code == 400
        assert "Derived" in response.json()["segment"][0]

    def test_delete_of_a_segment_a_campaign_sends_to_is_refused_naming_the_campaign(
        self, api, full_key, client, marketer
    ):
        """A campaign protects its segment; deleting it was a 500 on the API and the page."""
        from campaigns.models import Campaign

        segment = SegmentFactory()
        Campaign.objects.create(name="Spring sale", channels=["email"], segment=segment)

        response = api.delete(f"/api/herald/segments/{segment.pk}/", key=full_key)
        client.force_login(marketer)
        page = client.post(f"/segments/{segment.pk}/delete/", follow=True)

        assert response.status_code == 400
        assert response.json()["segment"] == ["still in use by campaign Spring sale"]
        assert "still in use by campaign Spring sale" in page.content.decode()
        assert Segment.objects.filter(pk=segment.pk).exists()

    def test_delete(self, api, full_key):
        segment = SegmentFactory()
        segment.contacts.add(ContactFactory())
        assert api.delete(f"/api/herald/segments/{segment.pk}/", key=full_key).status_code == 204
        assert not Segment.objects.exists()

    def test_list_filters_by_name_and_kind(self, api, full_key):
        SegmentFactory(name="Newsletter")
        SegmentFactory(name="News VIP", kind=SegmentKind.DYNAMIC, filter={})
        SegmentFactory(name="Other")
        response = api.get("/api/herald/segments/?name=news&kind=dynamic", key=full_key)
        assert [s["name"] for s in response.json()] == ["News VIP"]
        response = api.get("/api/herald/segments?name=news", key=full_key)
        assert [s["name"] for s in response.json()] == ["News VIP", "Newsletter"]

    def test_unknown_segment_is_404(self, api, full_key):
        response = api.get("/api/herald/segments/999999/reach/", key=full_key)
        assert response.status_code == 404
        assert api.get("/api/herald/segments/999999", key=full_key).status_code == 404


class TestStaleFilter:
    def test_a_filter_gone_stale_is_409_naming_the_path(self, api, full_key):
        gender = CustomFieldFactory(type="combobox", allowed_values=["M", "F", "X"])
        segment = SegmentFactory(kind=SegmentKind.DYNAMIC, filter={f"fields.{gender.pk}": "X"})
        api.call(
            "PATCH",
            f"/api/herald/custom-fields/{gender.pk}/",
            key=full_key,
            body={"allowedValues": ["M", "F"]},
        )
        response = api.get(f"/api/herald/segments/{segment.pk}/reach/", key=full_key)
        assert response.status_code == 409
        assert f"filter.fields.{gender.pk}.$eq" in response.json()
        response = api.get(f"/api/v1/group/{segment.pk}/contacts", key=full_key)
        assert response.status_code == 409


class TestReach:
    def test_inline_filter_reach(self, api, full_key):
        ContactFactory(language_code="en", tags=["vip"])
        ContactFactory(language_code="en", tags=[])
        response = api.post(
            "/api/herald/segments/reach/",
            key=full_key,
            body={"filter": {"languageCode": "en", "tags": {"$nin": ["vip"]}}},
        )
        assert response.status_code == 200
        assert response.json() == {"reach": 1}

    def test_documented_audience_filter_reach(self, api, full_key):
        ContactFactory(tags=["prospect"])
        response = api.post(
            "/api/herald/segments/reach",
            key=full_key,
            body={
                "filter": {"datatype": "contact", "where": {"tags": {"$in": ["prospect", "vip"]}}}
            },
        )
        assert response.json() == {"reach": 1}

    def test_unknown_operator_is_400_naming_it(self, api, full_key):
        response = api.post(
            "/api/herald/segments/reach/",
            key=full_key,
            body={"filter": {"$and": [{"town": {"$like": "K%"}}]}},
        )
        assert response.status_code == 400
        assert response.json() == {"filter.$and.0.town.$like": ["unknown operator '$like'"]}

    def test_filter_that_is_not_an_object_is_400(self, api, full_key):
        response = api.post("/api/herald/segments/reach/", key=full_key, body={"filter": [1]})
        assert response.status_code == 400
        assert "filter" in response.json()

    def test_missing_filter_is_400(self, api, full_key):
        response = api.post("/api/herald/segments/reach/", key=full_key, body={})
        assert response.status_code == 400
        assert "filter" in response.json()


class TestRights:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/api/herald/segments/"),
            ("POST", "/api/herald/segments/reach/"),
            ("GET", "/api/herald/custom-fields/"),
        ],
    )
    def test_limited_key_is_403(self, api, limited_key, method, path):
        body = {"filter": {}} if method == "POST" else None
        response = api.call(method, path, key=limited_key, body=body)
        assert response.status_code == 403

    def test_no_credentials_is_401(self, api):
        assert api.get("/api/herald/segments/").status_code == 401

    def test_viewer_may_read_but_not_write(self, client, viewer):
        client.force_login(viewer)
        assert client.get("/api/herald/segments/").status_code == 200
        response = client.post(
            "/api/herald/segments/", {"name": "x"}, content_type="application/json"
        )
        assert response.status_code == 403

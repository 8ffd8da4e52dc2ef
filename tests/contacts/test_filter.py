"""The dynamic segment filter language (contacts.filters.compiler): every operator and
field family."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contacts.filters.compiler import (
    FilterError,
    compile_filter,
    filter_contacts,
    filter_reach,
    segment_contacts,
    segment_reach,
    validate_filter,
)
from contacts.models import ContactSource, CustomFieldType, SegmentKind, Unsubscribed
from tests.contacts.factories import ContactFactory, CustomFieldFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def emails(filter: dict) -> set[str]:
    return set(filter_contacts(filter).values_list("email", flat=True))


def error_path(filter: dict) -> str:
    with pytest.raises(FilterError) as info:
        validate_filter(filter)
    return info.value.path


@pytest.fixture
def people():
    return {
        "ann": ContactFactory(
            email="ann@example.com",
            first_name="Ann",
            town="Kyiv",
            language_code="en",
            tags=["vip", "prospect"],
            phone="+380501112233",
            external_customer_id="A-1",
        ),
        "bob": ContactFactory(
            email="bob@example.com", first_name="Bob", town="Lviv", language_code="uk", tags=["vip"]
        ),
        "cyd": ContactFactory(
            email="cyd@example.com", first_name="Cyd", town="", language_code="en", tags=[]
        ),
    }


class TestStandardFields:
    def test_bare_value_means_eq(self, people):
        assert emails({"town": "Kyiv"}) == {"ann@example.com"}

    def test_several_keys_mean_and(self, people):
        assert emails({"languageCode": "en", "town": "Kyiv"}) == {"ann@example.com"}

    def test_ne_includes_contacts_without_a_value(self, people):
        assert emails({"town": {"$ne": "Kyiv"}}) == {"bob@example.com", "cyd@example.com"}

    def test_ne_on_nullable_external_id_includes_contacts_without_one(self, people):
        assert emails({"externalCustomerId": {"$ne": "A-1"}}) == {
            "bob@example.com",
            "cyd@example.com",
        }

    def test_in_and_nin(self, people):
        assert emails({"town": {"$in": ["Kyiv", "Lviv"]}}) == {"ann@example.com", "bob@example.com"}
        assert emails({"town": {"$nin": ["Kyiv", "Lviv"]}}) == {"cyd@example.com"}

    def test_contains_is_case_insensitive_substring(self, people):
        assert emails({"firstName": {"$contains": "NN"}}) == {"ann@example.com"}

    def test_exists_means_not_empty(self, people):
        assert emails({"town": {"$exists": True}}) == {"ann@example.com", "bob@example.com"}
        assert emails({"town": {"$exists": False}}) == {"cyd@example.com"}
        assert emails({"externalCustomerId": {"$exists": False}}) == {
            "bob@example.com",
            "cyd@example.com",
        }

    def test_null_means_absent(self, people):
        assert emails({"town": None}) == {"cyd@example.com"}
        assert emails({"town": {"$ne": None}}) == {"ann@example.com", "bob@example.com"}

    def test_order_operators_compare_as_text(self, people):
        assert emails({"firstName": {"$gt": "Azz"}}) == {"bob@example.com", "cyd@example.com"}
        assert emails({"firstName": {"$gte": "Bob", "$lt": "Cyd"}}) == {"bob@example.com"}
        assert emails({"firstName": {"$lte": "Ann"}}) == {"ann@example.com"}

    def test_email_is_compared_lower_cased(self, people):
        assert emails({"email": "ANN@Example.com"}) == {"ann@example.com"}

    def test_sms_and_phone_name_the_phone(self, people):
        assert emails({"sms": "+380501112233"}) == {"ann@example.com"}
        assert emails({"phone": {"$exists": True}}) == {"ann@example.com"}

    def test_source_must_be_a_known_source(self, people):
        people["bob"].source = ContactSource.IMPORT
        people["bob"].save()
        assert emails({"source": "import"}) == {"bob@example.com"}
        assert error_path({"source": "fax"}) == "source.$eq"

    def test_id(self, people):
        assert emails({"id": people["bob"].pk}) == {"bob@example.com"}
        assert emails({"id": {"$in": [people["bob"].pk, people["cyd"].pk]}}) == {
            "bob@example.com",
            "cyd@example.com",
        }
        assert emails({"id": {"$gt": people["ann"].pk}}) == {"bob@example.com", "cyd@example.com"}


class TestCreatedAtConfirmedUnsubscribed:
    def test_created_at_date_means_the_whole_day(self, people):
        old = people["cyd"]
        type(old).objects.filter(pk=old.pk).update(
            created_at=timezone.make_aware(dt.datetime(2020, 5, 1, 15, 0))
        )
        assert emails({"createdAt": "2020-05-01"}) == {"cyd@example.com"}
        assert emails({"createdAt": {"$lt": "2021-01-01"}}) == {"cyd@example.com"}
        assert emails({"createdAt": {"$lte": "2020-05-01"}}) == {"cyd@example.com"}
        assert emails({"createdAt": {"$gt": "2020-05-01"}}) == {
            "ann@example.com",
            "bob@example.com",
        }
        assert "cyd@example.com" not in emails({"createdAt": {"$ne": "2020-05-01"}})
        assert emails({"createdAt": {"$gte": "2020-05-01T15:00:00+00:00"}}) == {
            "ann@example.com",
            "bob@example.com",
            "cyd@example.com",
        }

    def test_created_at_needs_a_date(self, people):
        assert error_path({"createdAt": {"$gt": "yesterday"}}) == "createdAt.$gt"
        assert error_path({"createdAt": {"$gt": "2020-13-45"}}) == "createdAt.$gt"

    def test_confirmed(self, people):
        people["bob"].confirmed = False
        people["bob"].save()
        assert emails({"confirmed": False}) == {"bob@example.com"}
        assert emails({"confirmed": {"$ne": False}}) == {"ann@example.com", "cyd@example.com"}
        assert error_path({"confirmed": "yes"}) == "confirmed.$eq"

    def test_unsubscribed_means_email_on_the_unsubscribed_list(self, people):
        Unsubscribed.objects.create(email="bob@example.com")
        assert emails({"unsubscribed": True}) == {"bob@example.com"}
        assert emails({"unsubscribed": False}) == {"ann@example.com", "cyd@example.com"}


class TestChannelsAndTags:
    def test_channels(self, people):
        people["cyd"].extra_channels = [{"type": "telegram", "value": "@cyd"}]
        people["cyd"].email = ""
        people["cyd"].save()
        assert emails({"channels": {"$contains": "sms"}}) == {"ann@example.com"}
        assert emails({"channels": "email"}) == {"ann@example.com", "bob@example.com"}
        assert set(filter_contacts({"channels": "telegram"})) == {people["cyd"]}
        assert emails({"channels": {"$in": ["sms", "telegram"]}}) == {"ann@example.com", ""}
        assert emails({"channels": {"$nin": ["sms", "telegram"]}}) == {"bob@example.com"}
        assert emails({"channels": {"$contains": ["email", "sms"]}}) == {"ann@example.com"}
        assert error_path({"channels": "pigeon"}) == "channels.$eq"

    def test_tags_in_is_any_and_contains_is_all(self, people):
        assert emails({"tags": {"$in": ["prospect", "vip"]}}) == {
            "ann@example.com",
            "bob@example.com",
        }
        assert emails({"tags": {"$contains": ["prospect", "vip"]}}) == {"ann@example.com"}
        assert emails({"tags": {"$all": ["vip"]}}) == {"ann@example.com", "bob@example.com"}
        assert emails({"tags": "prospect"}) == {"ann@example.com"}
        assert emails({"tags": {"$nin": ["prospect"]}}) == {"bob@example.com", "cyd@example.com"}
        assert emails({"tags": {"$ne": "vip"}}) == {"cyd@example.com"}

    def test_tags_eq_with_a_list_is_the_exact_set(self, people):
        assert emails({"tags": ["vip"]}) == {"bob@example.com"}
        assert emails({"tags": {"$ne": ["vip"]}}) == {"ann@example.com", "cyd@example.com"}

    def test_tags_exists(self, people):
        assert emails({"tags": {"$exists": False}}) == {"cyd@example.com"}

    def test_documented_audience_wrapper(self, people):
        audience = {"datatype": "contact", "where": {"tags": {"$in": ["prospect", "vip"]}}}
        assert filter_reach(audience) == 2

    def test_tags_use_the_array_operators(self, people):
        sql = str(filter_contacts({"tags": {"$in": ["vip"]}}).query)
        assert "&&" in sql
        sql = str(filter_contacts({"tags": {"$contains": ["vip"]}}).query)
        assert "@>" in sql


class TestLogic:
    def test_or(self, people):
        assert emails({"$or": [{"town": "Kyiv"}, {"town": "Lviv"}]}) == {
            "ann@example.com",
            "bob@example.com",
        }

    def test_and(self, people):
        assert emails({"$and": [{"tags": "vip"}, {"languageCode": "uk"}]}) == {"bob@example.com"}

    def test_not_includes_contacts_lacking_the_value(self, people):
        assert emails({"$not": {"town": "Kyiv"}}) == {"bob@example.com", "cyd@example.com"}

    def test_field_level_not(self, people):
        assert emails({"town": {"$not": {"$in": ["Kyiv"]}}}) == {
            "bob@example.com",
            "cyd@example.com",
        }

    def test_evaluates_as_one_sql_query(self, people):
        field = CustomFieldFactory(type=CustomFieldType.NUMBER)
        static = SegmentFactory()
        compiled = compile_filter(
            {"tags": "vip", f"fields.{field.pk}": {"$gte": 1}, "segment": {"$ne": static.pk}}
        )
        with CaptureQueriesContext(connection) as queries:
            type(people["ann"]).objects.filter(compiled).count()
        assert len(queries) == 1

    def test_deleted_contacts_are_never_included(self, people):
        people["ann"].deleted_at = timezone.now()
        people["ann"].save()
        assert emails({"town": "Kyiv"}) == set()
        assert filter_reach({}) == 2


class TestCustomFields:
    def test_number_compares_numerically(self, people):
        score = CustomFieldFactory(type=CustomFieldType.NUMBER)
        key = str(score.pk)
        people["ann"].fields = {key: 100}
        people["bob"].fields = {key: "9"}  # stored as a numeric string by some import
        people["cyd"].fields = {key: "n/a"}  # bad stored value: never matches, never raises
        for contact in people.values():
            contact.save()
        assert emails({f"fields.{key}": {"$gte": 50}}) == {"ann@example.com"}
        assert emails({f"fields.{key}": {"$lt": 50}}) == {"bob@example.com"}
        assert emails({f"fields.{key}": {"$gt": "8.5", "$lte": 9}}) == {"bob@example.com"}
        assert emails({f"fields.{key}": 9}) == {"bob@example.com"}
        assert emails({f"fields.{key}": {"$in": [100, 9]}}) == {
            "ann@example.com",
            "bob@example.com",
        }

    def test_not_on_a_custom_field_includes_contacts_without_it(self, people):
        score = CustomFieldFactory(type=CustomFieldType.NUMBER)
        key = str(score.pk)
        people["ann"].fields = {key: 100}
        people["ann"].save()
        assert emails({f"fields.{key}": {"$not": {"$gte": 50}}}) == {
            "bob@example.com",
            "cyd@example.com",
        }
        assert emails({"$not": {f"fields.{key}": {"$gt": 1}}}) == {
            "bob@example.com",
            "cyd@example.com",
        }
        assert emails({f"fields.{key}": {"$ne": 100}}) == {"bob@example.com", "cyd@example.com"}
        assert emails({f"fields.{key}": {"$nin": [100]}}) == {"bob@example.com", "cyd@example.com"}

    def test_date_compares_as_date(self, people):
        birthday = CustomFieldFactory(type=CustomFieldType.DATE)
        key = str(birthday.pk)
        people["ann"].fields = {key: "1990-02-01"}
        people["bob"].fields = {key: "1985-12-31"}
        people["cyd"].fields = {key: "2024-02-31"}  # impossible date stored: no cast error
        for contact in people.values():
            contact.save()
        assert emails({f"fields.{key}": {"$lt": "1990-01-01"}}) == {"bob@example.com"}
        assert emails({f"fields.{key}": "1990-02-01"}) == {"ann@example.com"}
        assert error_path({f"fields.{key}": {"$gt": "01/02/1990"}}) == f"fields.{key}.$gt"

    def test_text_and_choice(self, people):
        gender = CustomFieldFactory(type=CustomFieldType.CHOICE, allowed_values=["M", "F"])
        nick = CustomFieldFactory(type=CustomFieldType.TEXT)
        people["ann"].fields = {str(gender.pk): "F", str(nick.pk): "Annie"}
        people["ann"].save()
        assert emails({f"fields.{gender.pk}": "F"}) == {"ann@example.com"}
        assert emails({f"fields.{nick.pk}": {"$contains": "nni"}}) == {"ann@example.com"}
        assert emails({f"fields.{nick.pk}": {"$exists": True}}) == {"ann@example.com"}
        assert emails({f"fields.{nick.pk}": {"$exists": False}}) == {
            "bob@example.com",
            "cyd@example.com",
        }
        assert error_path({f"fields.{gender.pk}": "X"}) == f"fields.{gender.pk}.$eq"

    def test_boolean(self, people):
        flag = CustomFieldFactory(type=CustomFieldType.BOOLEAN)
        people["ann"].fields = {str(flag.pk): True}
        people["bob"].fields = {str(flag.pk): "false"}
        people["ann"].save()
        people["bob"].save()
        assert emails({f"fields.{flag.pk}": True}) == {"ann@example.com"}
        assert emails({f"fields.{flag.pk}": False}) == {"bob@example.com"}
        assert error_path({f"fields.{flag.pk}": {"$gt": True}}) == f"fields.{flag.pk}.$gt"

    def test_eq_uses_jsonb_containment(self, people):
        field = CustomFieldFactory(type=CustomFieldType.TEXT)
        sql = str(filter_contacts({f"fields.{field.pk}": "x"}).query)
        assert '"fields" @>' in sql

    def test_wrong_value_type_names_the_path(self, people):
        score = CustomFieldFactory(type=CustomFieldType.NUMBER)
        assert error_path({f"fields.{score.pk}": {"$gt": "lots"}}) == f"fields.{score.pk}.$gt"
        assert error_path({f"fields.{score.pk}": {"$in": [1, "x"]}}) == f"fields.{score.pk}.$in.1"

    def test_unknown_custom_field(self, people):
        assert error_path({"fields.999999": 1}) == "fields.999999"


class TestSegments:
    def test_static_membership(self, people):
        static = SegmentFactory()
        static.contacts.add(people["ann"], people["cyd"])
        assert emails({"segment": static.pk}) == {"ann@example.com", "cyd@example.com"}
        assert emails({"segments": {"$in": [static.pk]}}) == {"ann@example.com", "cyd@example.com"}
        assert emails({"segment": {"$ne": static.pk}}) == {"bob@example.com"}
        assert emails({"segments": {"$nin": [static.pk]}}) == {"bob@example.com"}

    def test_dynamic_segment_reference_is_inlined(self, people):
        dynamic = SegmentFactory(kind=SegmentKind.DYNAMIC, filter={"town": "Lviv"})
        assert emails({"segment": dynamic.pk}) == {"bob@example.com"}

    def test_segments_referring_to_each_other_are_refused(self, people):
        one = SegmentFactory(kind=SegmentKind.DYNAMIC, filter={})
        two = SegmentFactory(kind=SegmentKind.DYNAMIC, filter={"segment": one.pk})
        one.filter = {"segment": two.pk}
        one.save()
        assert error_path({"segment": one.pk}) == "segment.$eq"

    def test_unknown_segment(self, people):
        assert error_path({"segment": 987654}) == "segment.$eq"

    def test_segment_contacts_and_reach(self, people):
        static = SegmentFactory()
        static.contacts.add(people["ann"], people["bob"])
        people["bob"].deleted_at = timezone.now()
        people["bob"].save()
        assert list(segment_contacts(static)) == [people["ann"]]
        dynamic = SegmentFactory(kind=SegmentKind.DYNAMIC, filter={"languageCode": "en"})
        assert segment_reach(dynamic) == 2
        assert segment_reach(static) == 1

    def test_segment_contacts_works_as_a_subquery(self, people):
        field = CustomFieldFactory(type=CustomFieldType.NUMBER)
        people["ann"].fields = {str(field.pk): 7}
        people["ann"].save()
        dynamic = SegmentFactory(
            kind=SegmentKind.DYNAMIC, filter={f"fields.{field.pk}": {"$gt": 5}, "tags": "vip"}
        )
        Contact = type(people["ann"])
        inner = segment_contacts(dynamic).values("pk")
        assert list(Contact.objects.filter(pk__in=inner)) == [people["ann"]]


class TestErrors:
    @pytest.mark.parametrize(
        ("filter", "path"),
        [
            ({"town": {"$regex": "K.*"}}, "town.$regex"),
            ({"$nor": []}, "$nor"),
            ({"password": "x"}, "password"),
            (
                {"email; DROP TABLE contacts_contact; --": "x"},
                "email; DROP TABLE contacts_contact; --",
            ),
            ({"fields.1') OR 1=1 --": 1}, "fields.1') OR 1=1 --"),
            ({"fields.1\n": 1}, "fields.1\n"),
            ({"$or": [{"town": "x"}, {"tags": {"$gt": 1}}]}, "$or.1.tags.$gt"),
            ({"$or": []}, "$or"),
            ({"$and": {"town": "x"}}, "$and"),
            ({"town": {}}, "town"),
            ({"town": {"$exists": "yes"}}, "town.$exists"),
            ({"town": {"$in": "Kyiv"}}, "town.$in"),
            ({"tags": {"$in": [1]}}, "tags.$in.0"),
            ({"id": "abc"}, "id.$eq"),
            ({"datatype": "order", "where": {}}, "datatype"),
        ],
    )
    def test_bad_filters_name_the_path(self, filter, path):
        assert error_path(filter) == path

    def test_not_an_object(self):
        assert error_path(["town"]) == "filter"

    def test_too_deep(self):
        filter: dict = {"town": "x"}
        for _ in range(20):
            filter = {"$not": filter}
        with pytest.raises(FilterError, match="deeper"):
            validate_filter(filter)

    def test_too_deep_at_field_level(self):
        spec: dict = {"$eq": "x"}
        for _ in range(20):
            spec = {"$not": spec}
        with pytest.raises(FilterError, match="deeper"):
            validate_filter({"town": spec})

    def test_empty_filter_matches_everyone(self, people):
        assert filter_reach({}) == 3

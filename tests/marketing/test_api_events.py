"""Generate event: POST /api/v1/event and /api/v2/event."""

import json

import pytest

from marketing.models import Event, EventType
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db

DOCUMENTED_EVENT = {
    "eventTypeKey": "testEvent",
    "keyValue": "example@email.com",
    "params": [
        {"name": "discount", "value": "5%"},
        {"name": "link", "value": "https://example.site.com/items_for_sale"},
    ],
}


def test_documented_body_is_stored_with_params_as_data_and_linked_to_the_contact(api, full_key):
    contact = ContactFactory(email="example@email.com")
    response = api.post("/api/v1/event", key=full_key, body=DOCUMENTED_EVENT)
    assert response.status_code == 200, response.content
    event = Event.objects.get(pk=response.json()["id"])
    assert event.event_type.key == "testEvent"
    assert event.key_value == "example@email.com"
    assert event.params == {"discount": "5%", "link": "https://example.site.com/items_for_sale"}
    assert event.contact_id == contact.pk
    assert event.processed_at is None


def test_unknown_event_type_is_created_on_first_use_once(api, full_key):
    for _ in range(3):
        assert api.post("/api/v1/event", key=full_key, body=DOCUMENTED_EVENT).status_code == 200
    assert EventType.objects.filter(key="testEvent").count() == 1
    assert Event.objects.filter(event_type__key="testEvent").count() == 3


def test_trailing_slash_and_v2_path_are_accepted(api, full_key):
    assert api.post("/api/v1/event/", key=full_key, body=DOCUMENTED_EVENT).status_code == 200
    assert api.post("/api/v2/event/", key=full_key, body=DOCUMENTED_EVENT).status_code == 200


def test_form_encoded_body_with_params_as_json_string(client, full_key, api):
    response = client.post(
        "/api/v1/event",
        {
            "eventTypeKey": "formEvent",
            "keyValue": "42",
            "params": json.dumps([{"name": "a", "value": "1"}]),
        },
        headers={"Authorization": api.basic(full_key.secret)},
    )
    assert response.status_code == 200, response.content
    assert Event.objects.get(event_type__key="formEvent").params == {"a": "1"}


@pytest.mark.parametrize(
    ("params", "contact_attr"),
    [
        ([{"name": "contactId", "value": "{id}"}], "pk"),
        ([{"name": "externalCustomerId", "value": "shop-7"}], "pk"),
        ([{"name": "email", "value": "Ann@Example.com"}], "pk"),
        ([{"name": "phone", "value": "380942583691"}], "pk"),
    ],
)
def test_contact_found_through_params(api, full_key, params, contact_attr):
    contact = ContactFactory(
        email="ann@example.com", phone="+380942583691", external_customer_id="shop-7"
    )
    ContactFactory(email="other@example.com")
    params = [{**p, "value": p["value"].replace("{id}", str(contact.pk))} for p in params]
    body = {"eventTypeKey": "linked", "keyValue": "order-1", "params": params}
    response = api.post("/api/v1/event", key=full_key, body=body)
    assert response.status_code == 200, response.content
    assert Event.objects.get(pk=response.json()["id"]).contact_id == contact.pk


def test_key_value_as_contact_id_or_phone_links_the_contact(api, full_key):
    by_id = ContactFactory()
    by_phone = ContactFactory(phone="+380942583691")
    first = api.post(
        "/api/v1/event", key=full_key, body={"eventTypeKey": "k", "keyValue": str(by_id.pk)}
    )
    second = api.post(
        "/api/v1/event", key=full_key, body={"eventTypeKey": "k", "keyValue": "+380942583691"}
    )
    assert Event.objects.get(pk=first.json()["id"]).contact_id == by_id.pk
    assert Event.objects.get(pk=second.json()["id"]).contact_id == by_phone.pk


def test_deleted_contact_is_not_linked(api, full_key):
    from django.utils import timezone

    ContactFactory(email="gone@example.com", deleted_at=timezone.now())
    body = {"eventTypeKey": "k", "keyValue": "gone@example.com"}
    response = api.post("/api/v1/event", key=full_key, body=body)
    assert Event.objects.get(pk=response.json()["id"]).contact_id is None


def test_v2_takes_nested_json_params_as_list_or_object(api, full_key):
    items = [{"name": "Super Device", "price": 990}]
    listed = api.post(
        "/api/v2/event",
        key=full_key,
        body={
            "eventTypeKey": "cart",
            "keyValue": "a@b.co",
            "params": [{"name": "items", "value": items}],
        },
    )
    as_object = api.post(
        "/api/v2/event",
        key=full_key,
        body={"eventTypeKey": "cart", "keyValue": "a@b.co", "params": {"items": items, "n": 2}},
    )
    assert listed.status_code == as_object.status_code == 200
    assert Event.objects.get(pk=listed.json()["id"]).params == {"items": items}
    assert Event.objects.get(pk=as_object.json()["id"]).params == {"items": items, "n": 2}


def test_v1_keeps_escaped_json_as_a_string_and_refuses_nested_values(api, full_key):
    escaped = json.dumps({"field1": "value1"})
    ok = api.post(
        "/api/v1/event",
        key=full_key,
        body={"eventTypeKey": "e", "keyValue": "1", "params": [{"name": "j", "value": escaped}]},
    )
    assert Event.objects.get(pk=ok.json()["id"]).params == {"j": escaped}
    nested = api.post(
        "/api/v1/event",
        key=full_key,
        body={"eventTypeKey": "e", "keyValue": "1", "params": [{"name": "j", "value": {"a": 1}}]},
    )
    assert nested.status_code == 400
    assert "params[0].value" in nested.json()


def test_numbers_in_v1_values_are_kept_as_text(api, full_key):
    response = api.post(
        "/api/v1/event",
        key=full_key,
        body={"eventTypeKey": "e", "keyValue": 7, "params": [{"name": "n", "value": 5}]},
    )
    event = Event.objects.get(pk=response.json()["id"])
    assert (event.key_value, event.params) == ("7", {"n": "5"})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"keyValue": "x"}, "eventTypeKey"),
        ({"eventTypeKey": "", "keyValue": "x"}, "eventTypeKey"),
        ({"eventTypeKey": "k" * 101, "keyValue": "x"}, "eventTypeKey"),
        ({"eventTypeKey": "has space", "keyValue": "x"}, "eventTypeKey"),
        ({"eventTypeKey": "semi;colon", "keyValue": "x"}, "eventTypeKey"),
        ({"eventTypeKey": "ok"}, "keyValue"),
        ({"eventTypeKey": "ok", "keyValue": "v" * 301}, "keyValue"),
        ({"eventTypeKey": "ok", "keyValue": "x", "params": {"a": "b"}}, "params"),
        ({"eventTypeKey": "ok", "keyValue": "x", "params": "not json"}, "params"),
        ({"eventTypeKey": "ok", "keyValue": "x", "params": ["a"]}, "params[0]"),
        ({"eventTypeKey": "ok", "keyValue": "x", "params": [{"value": "v"}]}, "params[0]"),
        (
            {"eventTypeKey": "ok", "keyValue": "x", "params": [{"name": "", "value": "v"}]},
            "params[0].name",
        ),
        (
            {"eventTypeKey": "ok", "keyValue": "x", "params": [{"name": "a", "val": "v"}]},
            "params[0]",
        ),
    ],
)
def test_bad_input_is_400_naming_the_field(api, full_key, body, field):
    response = api.post("/api/v1/event", key=full_key, body=body)
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not Event.objects.exists()


def test_limits_at_the_edge_are_accepted(api, full_key):
    body = {"eventTypeKey": "A-z_0.9:" + "k" * 92, "keyValue": "v" * 300}
    assert len(body["eventTypeKey"]) == 100
    assert api.post("/api/v1/event", key=full_key, body=body).status_code == 200


def test_body_over_20_kb_is_400_naming_the_limit(api, full_key):
    big = {"eventTypeKey": "big", "keyValue": "x", "params": [{"name": "p", "value": "x" * 21_000}]}
    response = api.post("/api/v1/event", key=full_key, body=big)
    assert response.status_code == 400
    assert "20 kB" in response.json()["body"][0]
    fits = {
        "eventTypeKey": "big",
        "keyValue": "x",
        "params": [{"name": "p", "value": "x" * 20_000}],
    }
    assert api.post("/api/v1/event", key=full_key, body=fits).status_code == 200


def test_body_of_megabytes_is_400_json_without_reading_it(api, full_key):
    huge = {
        "eventTypeKey": "big",
        "keyValue": "x",
        "params": [{"name": "p", "value": "x" * 3_000_000}],
    }
    response = api.post("/api/v1/event", key=full_key, body=huge)
    assert response.status_code == 400
    assert "20 kB" in response.json()["body"][0]


def test_body_that_is_not_an_object_is_400(api, full_key):
    response = api.post("/api/v1/event", key=full_key, body=["eventTypeKey"])
    assert response.status_code == 400


def test_limited_key_with_events_right_may_send_events(api, limited_key):
    assert api.post("/api/v1/event", key=limited_key, body=DOCUMENTED_EVENT).status_code == 200


def test_no_key_is_401(api):
    assert api.post("/api/v1/event", body=DOCUMENTED_EVENT).status_code == 401


def test_get_is_405(api, full_key):
    assert api.get("/api/v1/event", key=full_key).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_an_event_on_a_connection_that_went_stale_is_stored_on_a_new_one(api, full_key):
    """The ingest INSERT skips Django's per-request health check and is its own: a persistent
    connection the server dropped while idle is replaced and the event still stored once."""
    import psycopg
    from django.db import connection

    assert api.post("/api/v1/event", key=full_key, body=DOCUMENTED_EVENT).status_code == 200
    stale_pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    # A TCP server or the embedded one's socket folder (no port): connect as Django does.
    where = {
        key: params[key] for key in ("dbname", "user", "password", "host", "port") if key in params
    }
    with psycopg.connect(**where) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [stale_pid])

    response = api.post("/api/v1/event", key=full_key, body=DOCUMENTED_EVENT)
    assert response.status_code == 200, response.content
    assert connection.connection.info.backend_pid != stale_pid
    assert Event.objects.filter(event_type__key="testEvent").count() == 2


# The common request (a key with the events right, a JSON body, a JSON answer) is served
# without DRF's machinery; every other request goes through DRF. Both must answer alike.


def test_json_and_form_requests_get_the_same_answer_shape(api, client, full_key):
    as_json = api.post("/api/v1/event", key=full_key, body=DOCUMENTED_EVENT)
    as_form = client.post(
        "/api/v1/event",
        {"eventTypeKey": "testEvent", "keyValue": "example@email.com"},
        headers={"Authorization": api.basic(full_key.secret)},
    )
    assert as_json.status_code == as_form.status_code == 200
    for header in ("Content-Type", "Allow"):
        assert as_json[header] == as_form[header], header
    assert list(as_json.json()) == list(as_form.json()) == ["id"]


def test_revoked_key_is_401_and_key_without_the_events_right_is_403(api, full_key, admin_user):
    from config.core.api_keys import api_key_create, api_key_revoke

    api_key_revoke(key=full_key)
    revoked = api.post("/api/v1/event", key=full_key, body=DOCUMENTED_EVENT)
    assert revoked.status_code == 401
    assert "detail" in revoked.json()
    _, secret = api_key_create(name="contacts only", rights="contacts", created_by=admin_user)
    refused = api.post("/api/v1/event", key=secret, body=DOCUMENTED_EVENT)
    assert refused.status_code == 403
    assert refused.json()["missingRight"] == "events"
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    "body",
    [b'{"eventTypeKey": "k", "keyValue": ', b'{"eventTypeKey": "k", "keyValue": NaN}', b"\xff\xfe"],
)
def test_body_that_is_not_json_is_400_json(api, full_key, body):
    response = api.client.post(
        "/api/v1/event",
        body,
        content_type="application/json",
        headers={"Authorization": api.basic(full_key.secret)},
    )
    assert response.status_code == 400
    assert "detail" in response.json()
    assert not Event.objects.exists()


def test_accepting_only_html_is_406_and_stores_nothing(api, full_key):
    response = api.post(
        "/api/v1/event", key=full_key, body=DOCUMENTED_EVENT, headers={"Accept": "text/html"}
    )
    assert response.status_code == 406
    assert not Event.objects.exists()


def test_a_logged_in_marketer_may_send_events_without_a_key(client, admin_user):
    client.force_login(admin_user)
    response = client.post("/api/v1/event", DOCUMENTED_EVENT, content_type="application/json")
    assert response.status_code == 200, response.content
    assert Event.objects.filter(pk=response.json()["id"]).exists()


def test_the_schema_describes_generate_event(client):
    schema = client.get("/api/schema/", headers={"Accept": "application/json"})
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert "post" in paths["/api/v1/event/"]
    assert "post" in paths["/api/v2/event/"]

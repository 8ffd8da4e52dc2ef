"""Herald's native templates API: CRUD, publish, versions, preview and their errors."""

import pytest

from campaigns.models import Delivery, SendKind, SendRequest
from contacts.models import ChannelType
from templates.models import MessageTemplate, TemplateVersion
from templates.services import template_create, template_publish
from tests.contacts.factories import ContactFactory

pytestmark = pytest.mark.django_db

BODY = {
    "name": "Order confirmation",
    "channel": "email",
    "subject": "Order $!data.get('orderNumber') confirmed",
    "fromName": "Shop",
    "fromEmail": "orders@shop.example",
    "html": "<h1>Thanks $!contact.firstName</h1>"
    "#foreach($item in $data.get('items'))<p>$item.get('name')</p>#end",
}


@pytest.fixture
def order(db):
    return template_create(
        name="Order",
        subject="Order $!data.get('orderNumber')",
        html="<p>Hi $!contact.firstName, order $!data.get('orderNumber')</p>",
    )


def test_create_read_list_update_delete(api, full_key):
    response = api.post("/api/herald/templates/", key=full_key, body=BODY)
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["fromEmail"] == "orders@shop.example"
    assert created["version"] == 0 and created["textGenerated"] is True
    assert "Thanks $!contact.firstName" in created["text"]
    path = f"/api/herald/templates/{created['id']}/"
    assert api.get(path, key=full_key).json()["subject"] == BODY["subject"]
    listed = api.get("/api/herald/templates/", key=full_key).json()
    assert [t["id"] for t in listed] == [created["id"]]
    response = api.call("PATCH", path, key=full_key, body={"subject": "Changed"})
    assert response.status_code == 200, response.json()
    template = MessageTemplate.objects.get()
    assert template.subject == "Changed" and template.html == created["html"]
    assert api.delete(path, key=full_key).status_code == 204
    assert not MessageTemplate.objects.exists()


def test_paths_answer_with_and_without_trailing_slash(api, full_key, order):
    assert api.get("/api/herald/templates", key=full_key).status_code == 200
    assert api.get(f"/api/herald/templates/{order.pk}", key=full_key).status_code == 200
    assert api.post(f"/api/herald/templates/{order.pk}/publish", key=full_key).status_code == 201
    response = api.post(f"/api/herald/templates/{order.pk}/preview", key=full_key, body={})
    assert response.status_code == 200


def test_list_filters_by_name_and_channel(api, full_key, order):
    template_create(name="Shipped", channel=ChannelType.SMS, sms_text="Shipped")
    by_name = api.get("/api/herald/templates/?name=ORD", key=full_key).json()
    assert [t["name"] for t in by_name] == ["Order"]
    by_channel = api.get("/api/herald/templates/?channel=sms", key=full_key).json()
    assert [t["name"] for t in by_channel] == ["Shipped"]


def test_form_encoded_create(client, full_key):
    from tests.support.api import APIClient

    response = client.post(
        "/api/herald/templates/",
        {"name": "Plain", "channel": "sms", "smsText": "Hi $!contact.firstName"},
        headers={"Authorization": APIClient.basic(full_key.secret)},
    )
    assert response.status_code == 201, response.json()
    assert MessageTemplate.objects.get().sms_text == "Hi $!contact.firstName"


def test_syntax_error_is_400_naming_field_line_and_column(api, full_key):
    body = {**BODY, "html": "<p>fine</p>\n<p>#if($x)</p>", "smsText": "#end"}
    response = api.post("/api/herald/templates/", key=full_key, body=body)
    assert response.status_code == 400
    errors = response.json()
    assert errors["html"][0].startswith("Line 2, column ")
    assert errors["smsText"][0].startswith("Line 1, column 1")
    assert not MessageTemplate.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"channel": "pigeon"}, "channel"),
        ({"fromEmail": "nope"}, "fromEmail"),
        ({"subject": "two\nlines"}, "subject"),
    ],
)
def test_bad_values_are_400_naming_the_field(api, full_key, change, field):
    response = api.post("/api/herald/templates/", key=full_key, body={**BODY, **change})
    assert response.status_code == 400
    assert field in response.json(), response.json()


def test_update_with_error_changes_nothing(api, full_key, order):
    response = api.call(
        "PATCH", f"/api/herald/templates/{order.pk}/", key=full_key, body={"html": "#foreach("}
    )
    assert response.status_code == 400 and "html" in response.json()
    assert MessageTemplate.objects.get().html == order.html


def test_duplicate_external_id_of_a_provider_is_400(api, full_key):
    body = {**BODY, "provider": "brevo", "externalId": "42"}
    assert api.post("/api/herald/templates/", key=full_key, body=body).status_code == 201
    response = api.post("/api/herald/templates/", key=full_key, body=body)
    assert response.status_code == 400
    assert "externalId" in response.json()


def test_publish_then_versions_lists_them(api, full_key, order):
    response = api.post(f"/api/herald/templates/{order.pk}/publish/", key=full_key)
    assert response.status_code == 201
    assert response.json()["number"] == 1
    assert response.json()["subject"] == order.subject
    api.call("PATCH", f"/api/herald/templates/{order.pk}/", key=full_key, body={"subject": "v2"})
    assert (
        api.post(f"/api/herald/templates/{order.pk}/publish/", key=full_key).json()["number"] == 2
    )
    versions = api.get(f"/api/herald/templates/{order.pk}/versions/", key=full_key).json()
    assert [(v["number"], v["subject"]) for v in versions] == [(2, "v2"), (1, order.subject)]
    assert api.get(f"/api/herald/templates/{order.pk}/", key=full_key).json()["version"] == 2


def test_publish_refused_is_400_naming_what_is_missing(api, full_key):
    template = template_create(name="Empty")
    response = api.post(f"/api/herald/templates/{template.pk}/publish/", key=full_key)
    assert response.status_code == 400
    assert set(response.json()) == {"subject", "html"}
    assert not TemplateVersion.objects.exists()


def test_preview_renders_for_the_sample_contact_and_data(api, full_key, order):
    response = api.post(
        f"/api/herald/templates/{order.pk}/preview/",
        key=full_key,
        body={"data": {"orderNumber": "A-17"}},
    )
    assert response.status_code == 200, response.json()
    preview = response.json()
    assert preview["subject"] == "Order A-17"
    assert "Hi Alex, order A-17" in preview["html"]
    assert "Hi Alex, order A-17" in preview["text"]


def test_preview_for_a_real_contact(api, full_key, order):
    contact = ContactFactory(first_name="Zoé")
    response = api.post(
        f"/api/herald/templates/{order.pk}/preview/",
        key=full_key,
        body={"contactId": contact.pk, "data": {"orderNumber": 5}},
    )
    assert "Hi Zoé, order 5" in response.json()["html"]


def test_preview_of_a_published_version_ignores_later_edits(api, full_key, order):
    template_publish(template=order)
    api.call("PATCH", f"/api/herald/templates/{order.pk}/", key=full_key, body={"subject": "New"})
    body = {"version": 1, "data": {"orderNumber": 9}}
    response = api.post(f"/api/herald/templates/{order.pk}/preview/", key=full_key, body=body)
    assert response.json()["subject"] == "Order 9"
    response = api.post(
        f"/api/herald/templates/{order.pk}/preview/", key=full_key, body={"version": 7}
    )
    assert response.status_code == 400 and "version" in response.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"contactId": 999999}, "contactId"),
        ({"contactId": "abc"}, "contactId"),
        ({"data": [1, 2]}, "data"),
        ({"data": "text"}, "data"),
    ],
)
def test_preview_bad_input_is_400_naming_the_field(api, full_key, order, body, field):
    response = api.post(f"/api/herald/templates/{order.pk}/preview/", key=full_key, body=body)
    assert response.status_code == 400
    assert field in response.json(), response.json()


def test_preview_render_limit_is_400_on_data(api, full_key):
    template = template_create(
        name="Loop",
        subject="s",
        html="#foreach($i in $data.get('items'))#foreach($j in $data.get('items'))x#end#end",
    )
    body = {"data": {"items": list(range(5000))}}
    response = api.post(f"/api/herald/templates/{template.pk}/preview/", key=full_key, body=body)
    assert response.status_code == 400
    assert "data" in response.json()


def test_delete_refused_with_409_when_a_version_was_sent(api, full_key, order):
    version = template_publish(template=order)
    request = SendRequest.objects.create(kind=SendKind.TEST, template_version=version)
    Delivery.objects.create(
        send_request=request, channel="email", locator="a@x.example", template_version=version
    )
    response = api.delete(f"/api/herald/templates/{order.pk}/", key=full_key)
    assert response.status_code == 409
    assert "cannot be deleted" in response.json()["detail"]
    assert MessageTemplate.objects.filter(pk=order.pk).exists()


def test_unknown_template_is_404_json(api, full_key):
    response = api.get("/api/herald/templates/999999/", key=full_key)
    assert response.status_code == 404
    assert "detail" in response.json()


def test_key_without_manage_right_is_403_naming_it(api, limited_key, order):
    response = api.get("/api/herald/templates/", key=limited_key)
    assert response.status_code == 403
    assert response.json()["missingRight"] == "manage"
    response = api.post("/api/herald/templates/", key=limited_key, body=BODY)
    assert response.status_code == 403
    assert MessageTemplate.objects.count() == 1


def test_no_credentials_is_401(api):
    assert api.get("/api/herald/templates/").status_code == 401


def test_viewer_session_reads_but_cannot_write(client, viewer, order):
    client.force_login(viewer)
    assert client.get("/api/herald/templates/").status_code == 200
    response = client.post("/api/herald/templates/", {"name": "x"}, content_type="application/json")
    assert response.status_code == 403

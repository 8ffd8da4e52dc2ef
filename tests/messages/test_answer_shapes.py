"""The single-message answers in the eSputnik document's shapes: `results` is the object
itself for one recipient (or one requestId) and a list for several; ids are strings and the
status flags the strings "true" and "false". The documented bodies are sent verbatim, and
as real clients send them (trailing slashes, form bodies, ids repeated or comma-separated)."""

import json
import uuid

import pytest

from campaigns.delivery.engine import send_request_process
from campaigns.models import Delivery, SendRequest
from tests.contacts.factories import ContactFactory, SegmentFactory

pytestmark = pytest.mark.django_db

RESULT_KEYS = {"id", "locator", "status", "requestId"}
STATUS_KEYS = {"requestId", "status", "failed", "delivered"}


def test_the_documented_smartsend_body_is_answered_with_the_documented_object(
    api, full_key, email_template
):
    # "The standard request body looks as follows" (placeholders filled in, quotes escaped).
    body = json.loads(
        '{\n"recipients" : [ {\n"locator" : "test@gmail.com",\n'
        '"jsonParam" : "{\\"orderId\\":\\"A-1\\"}"\n} ]\n}'
    )
    response = api.post(f"/api/v1/message/{email_template.pk}/smartsend", key=full_key, body=body)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert set(answer) == {"id", "results"}
    assert isinstance(answer["id"], str) and SendRequest.objects.filter(pk=answer["id"]).exists()
    result = answer["results"]
    assert isinstance(result, dict) and set(result) == RESULT_KEYS
    delivery = Delivery.objects.get(request_id=result["requestId"])
    assert result == {
        "id": str(delivery.contact_id),
        "locator": "test@gmail.com",
        "status": "OK",
        "requestId": str(delivery.request_id),
    }


def test_several_smartsend_recipients_are_answered_with_a_list_in_their_order(
    api, full_key, email_template
):
    body = {"recipients": [{"locator": "a@example.com"}, {"locator": "nope@"}]}
    response = api.post(f"/api/v1/message/{email_template.pk}/smartsend/", key=full_key, body=body)
    assert response.status_code == 200, response.content
    ok, bad = response.json()["results"]
    assert set(ok) == RESULT_KEYS and ok["status"] == "OK" and isinstance(ok["id"], str)
    assert bad["status"] == "ERROR" and bad["requestId"] is None and bad["message"]


def test_one_email_address_gets_the_object_several_get_the_list(api, full_key, client):
    one = api.post(
        "/api/v1/message/email",
        key=full_key,
        body={"subject": "Hi", "plainText": "Hello", "emails": ["one@example.com"]},
    ).json()
    assert isinstance(one["results"], dict) and one["results"]["locator"] == "one@example.com"
    # A form body repeating the field, to the path with a trailing slash.
    headers = {"Authorization": api.basic(full_key.secret)}
    several = client.post(
        "/api/v1/message/email/",
        data={"subject": "Hi", "plainText": "Hello", "emails": ["a@example.com", "b@example.com"]},
        headers=headers,
    )
    assert several.status_code == 200, several.content
    assert [r["locator"] for r in several.json()["results"]] == ["a@example.com", "b@example.com"]
    single_form = client.post(
        "/api/v1/message/email",
        data={"subject": "Hi", "plainText": "Hello", "emails": "solo@example.com"},
        headers=headers,
    )
    assert single_form.status_code == 200, single_form.content
    assert single_form.json()["results"]["locator"] == "solo@example.com"


def test_sms_to_one_number_is_the_object_and_to_a_group_the_list(api, full_key):
    one = api.post(
        "/api/v1/message/sms",
        key=full_key,
        body={"from": "Shop", "text": "Shipped", "phoneNumbers": ["380942583691"]},
    ).json()
    assert isinstance(one["results"], dict) and one["results"]["status"] == "OK"
    assert one["count"] == 1 and isinstance(one["id"], str)
    segment = SegmentFactory()
    segment.contacts.add(ContactFactory(phone="+380501112233"))
    group = api.post(
        "/api/v1/message/sms",
        key=full_key,
        body={"text": "Sale", "groupId": segment.pk},
    ).json()
    assert group["results"] == [] and group["count"] == 1


def test_the_status_of_one_request_is_the_documented_object_with_string_flags(
    api, full_key, email_template, mail_to_sink
):
    answer = api.post(
        f"/api/v1/message/{email_template.pk}/smartsend",
        key=full_key,
        body={"recipients": [{"locator": "test@gmail.com"}]},
    ).json()
    send_request_process(send_request_id=int(answer["id"]))
    request_id = answer["results"]["requestId"]
    Delivery.objects.filter(request_id=request_id).update(status="delivered")
    response = api.get(f"/api/v1/message/status?ids={request_id}", key=full_key)
    assert response.status_code == 200
    status = response.json()["results"]
    assert isinstance(status, dict)
    assert {k: status[k] for k in STATUS_KEYS} == {
        "status": "DELIVERED",
        "requestId": request_id,
        "failed": "false",
        "delivered": "true",
    }
    assert set(status) <= STATUS_KEYS | {"id", "message"}
    # The same id repeated names one message: still the object.
    again = api.get(f"/api/v1/message/status/?ids={request_id}&ids={request_id}", key=full_key)
    assert again.json()["results"]["requestId"] == request_id


def test_the_status_of_several_requests_is_a_list_in_the_order_asked(api, full_key, email_template):
    answer = api.post(
        f"/api/v1/message/{email_template.pk}/smartsend",
        key=full_key,
        body={"recipients": [{"locator": "a@example.com"}, {"locator": "b@example.com"}]},
    ).json()
    first, second = (r["requestId"] for r in answer["results"])
    unknown = str(uuid.uuid4())
    items = api.get(
        f"/api/v1/message/status?ids={second}, {unknown}&ids={first}", key=full_key
    ).json()["results"]
    assert [i["requestId"] for i in items] == [second, unknown, first]
    assert [(i["status"], i["failed"], i["delivered"]) for i in items] == [
        ("QUEUED", "false", "false"),
        ("NOT_FOUND", "false", "false"),
        ("QUEUED", "false", "false"),
    ]
    assert items[1]["message"] == "no message with this requestId" and "id" not in items[1]


def test_the_schema_documents_both_shapes_of_results(api, full_key, client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path, method in [
        ("/api/v1/message/{id}/smartsend/", "post"),
        ("/api/v1/message/email/", "post"),
        ("/api/v1/message/sms/", "post"),
        ("/api/v1/message/status/", "get"),
    ]:
        content = paths[path][method]["responses"]["200"]["content"]["application/json"]
        ref = content["schema"]["$ref"].rsplit("/", 1)[1]
        results = schema["components"]["schemas"][ref]["properties"]["results"]
        item, listed = results["oneOf"]
        assert item["type"] == "object" and listed == {"type": "array", "items": item}
        summaries = [example["summary"] for example in content["examples"].values()]
        assert any("object" in s for s in summaries) and any("list" in s for s in summaries)

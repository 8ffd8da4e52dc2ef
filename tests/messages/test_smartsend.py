"""POST /v1/message/{id}/smartsend and GET /v1/message/status, sent in-process through a real
SMTP server (the Celery path is covered in test_worker_e2e.py)."""

import json

import pytest

from campaigns.delivery.engine import send_request_process
from campaigns.models import Delivery, DeliveryEvent, SendRequest
from contacts.models import Contact, ContactSource, Unsubscribed
from templates.services import template_create, template_publish
from tests.contacts.factories import ContactFactory
from tests.support.api import results_list

pytestmark = pytest.mark.django_db


def smartsend(api, key, template, body, path_suffix=""):
    return api.post(f"/api/v1/message/{template.pk}/smartsend{path_suffix}", key=key, body=body)


def test_documented_example_body_is_queued_and_answered_with_request_ids(
    api, full_key, email_template
):
    # The eSputnik v1 API's example, with its escaped-JSON jsonParam ("the double quotes inside
    # the json structure with the parameters should be modified by an escape character").
    body = json.loads(
        '{"recipients" : [ {"locator" : "test@gmail.com", '
        '"jsonParam" : "{\\"orderId\\":\\"A-17\\", \\"items\\": []}"} ]}'
    )
    response = smartsend(api, full_key, email_template, body)
    assert response.status_code == 200, response.content
    answer = response.json()
    send_request = SendRequest.objects.get(pk=answer["id"])
    # The document's answer: one recipient, so `results` is the object itself, ids strings.
    assert answer["id"] == str(send_request.pk)
    result = answer["results"]
    assert set(result) == {"id", "locator", "status", "requestId"}
    assert result["status"] == "OK"
    assert result["locator"] == "test@gmail.com"
    delivery = Delivery.objects.get(request_id=result["requestId"])
    assert delivery.send_request == send_request
    assert delivery.status == "queued"
    assert delivery.params == {"orderId": "A-17", "items": []}
    assert delivery.template_version == email_template.published
    assert result["id"] == str(delivery.contact_id)


def test_every_recipient_gets_one_personalised_email_with_a_stable_message_id(
    api, full_key, email_template, mail_to_sink
):
    ann = ContactFactory(email="ann@example.com", first_name="Ann")
    body = {
        "recipients": [
            {
                "locator": "ann@example.com",
                "jsonParam": json.dumps(
                    {
                        "orderId": "A-1",
                        "items": [{"name": "Tea", "qty": 2}, {"name": "Mug", "qty": 1}],
                    }
                ),
            },
            # jsonParam as an object, as many clients send it.
            {"locator": "Bob@Example.com", "jsonParam": {"orderId": "B-2", "items": []}},
        ]
    }
    answer = smartsend(api, full_key, email_template, body).json()
    assert [r["status"] for r in results_list(answer["results"])] == ["OK", "OK"]

    assert send_request_process(send_request_id=answer["id"]) is None
    by_recipient = {m["To"]: m for m in mail_to_sink.messages}
    assert len(mail_to_sink.messages) == 2 and set(by_recipient) == {
        "ann@example.com",
        "bob@example.com",
    }
    ann_mail = by_recipient["ann@example.com"]
    assert ann_mail["Subject"] == "Order A-1 shipped"
    assert ann_mail["From"] == "Shop <orders@shop.example>"
    html = ann_mail.get_body(("html",)).get_content()
    assert "Hello Ann, order A-1 is on its way." in html
    assert "Tea x 2" in html and "Mug x 1" in html
    text = ann_mail.get_body(("plain",)).get_content()
    assert "Tea x 2" in text
    assert "order B-2" in by_recipient["bob@example.com"].get_body(("html",)).get_content()

    delivery = Delivery.objects.get(request_id=results_list(answer["results"])[0]["requestId"])
    assert delivery.contact == ann
    assert ann_mail["Message-ID"] == delivery.message_id
    assert delivery.message_id.endswith("@shop.example>")
    assert delivery.status == "sent" and delivery.sent_at is not None
    assert delivery.attempts == 1
    assert list(delivery.events.values_list("status", flat=True)) == ["sent"]

    ids = ",".join(r["requestId"] for r in results_list(answer["results"]))
    status = api.get(f"/api/v1/message/status?ids={ids}", key=full_key).json()
    assert [item["status"] for item in results_list(status["results"])] == ["SENT", "SENT"]
    assert results_list(status["results"])[0] == {
        "id": str(ann.pk),
        "requestId": results_list(answer["results"])[0]["requestId"],
        "status": "SENT",
        "failed": "false",
        "delivered": "false",
    }


def test_running_the_send_again_sends_nothing_twice(api, full_key, email_template, mail_to_sink):
    answer = smartsend(
        api, full_key, email_template, {"recipients": [{"locator": "once@example.com"}]}
    ).json()
    send_request_process(send_request_id=answer["id"])
    send_request_process(send_request_id=answer["id"])
    assert len(mail_to_sink.messages) == 1


def test_email_carries_tracking_and_one_click_unsubscribe(
    api, full_key, email_template, mail_to_sink
):
    answer = smartsend(
        api, full_key, email_template, {"recipients": [{"locator": "t@example.com"}]}
    ).json()
    send_request_process(send_request_id=answer["id"])
    [mail] = mail_to_sink.messages
    assert mail["List-Unsubscribe"]
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = mail.get_body(("html",)).get_content()
    assert 'href="https://shop.example/orders"' not in html, "links go through the click redirect"


def test_unknown_recipient_becomes_a_contact_with_only_that_channel(api, full_key, email_template):
    answer = smartsend(
        api, full_key, email_template, {"recipients": [{"locator": "NEW@example.com"}]}
    ).json()
    contact = Contact.objects.get(pk=results_list(answer["results"])[0]["id"])
    assert contact.email == "new@example.com"
    assert contact.phone == "" and contact.first_name == ""
    assert contact.source == ContactSource.SINGLE_MESSAGE

    again = smartsend(
        api, full_key, email_template, {"recipients": [{"locator": "new@example.com"}]}
    ).json()
    assert results_list(again["results"])[0]["id"] == str(contact.pk)
    assert Contact.objects.filter(email="new@example.com").count() == 1


def test_one_bad_recipient_fails_alone_with_the_reason(api, full_key, email_template):
    body = {
        "recipients": [
            {"locator": "good@example.com", "jsonParam": '{"orderId": 1}'},
            {"locator": "bad-json@example.com", "jsonParam": "{orderId: 1"},
            {"locator": "not an address"},
            {"locator": "list@example.com", "jsonParam": "[1, 2]"},
            {"contactId": 999999},
            {},
        ]
    }
    response = smartsend(api, full_key, email_template, body)
    assert response.status_code == 200
    results = results_list(response.json()["results"])
    assert [r["status"] for r in results] == ["OK", "ERROR", "ERROR", "ERROR", "ERROR", "ERROR"]
    assert "jsonParam is not valid JSON" in results[1]["message"]
    assert results[1]["requestId"] is None
    assert "not a valid email address" in results[2]["message"]
    assert "JSON object" in results[3]["message"]
    assert "no contact with id 999999" in results[4]["message"]
    assert "locator" in results[5]["message"]
    assert Delivery.objects.count() == 1


def test_contact_id_without_locator_uses_the_contacts_address_and_data(
    api, full_key, email_template, mail_to_sink
):
    contact = ContactFactory(email="zoe@example.com", first_name="Zoe")
    nomail = ContactFactory(email="", phone="+380942583691")
    answer = smartsend(
        api,
        full_key,
        email_template,
        {"recipients": [{"contactId": contact.pk}, {"contactId": str(nomail.pk)}]},
    ).json()
    assert results_list(answer["results"])[0]["status"] == "OK"
    assert results_list(answer["results"])[0]["locator"] == "zoe@example.com"
    assert results_list(answer["results"])[1]["status"] == "ERROR"
    assert "has no email" in results_list(answer["results"])[1]["message"]
    send_request_process(send_request_id=answer["id"])
    [mail] = mail_to_sink.messages
    assert "Hello Zoe" in mail.get_body(("html",)).get_content()


def test_more_than_1000_recipients_is_400(api, full_key, email_template):
    body = {"recipients": [{"locator": f"p{n}@example.com"} for n in range(1001)]}
    response = smartsend(api, full_key, email_template, body)
    assert response.status_code == 400
    assert "at most 1000" in response.json()["recipients"][0]
    assert not Delivery.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "recipients"),
        ({"recipients": []}, "recipients"),
        ({"recipients": "a@example.com"}, "recipients"),
        ({"recipients": ["a@example.com"]}, "recipients[0]"),
        ({"recipients": [{"locator": "a@example.com"}], "email": "maybe"}, "email"),
        ({"recipients": [{"locator": "a@example.com"}], "email": False}, "email"),
        ({"recipients": [{"locator": "a@example.com"}], "fromName": 5}, "fromName"),
    ],
)
def test_bad_request_shapes_are_400_naming_the_field(api, full_key, email_template, body, field):
    response = smartsend(api, full_key, email_template, body)
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_unknown_message_is_404_json(api, full_key):
    response = api.post(
        "/api/v1/message/424242/smartsend",
        key=full_key,
        body={"recipients": [{"locator": "a@b.example"}]},
    )
    assert response.status_code == 404
    assert "no message with id or external key 424242" in response.json()["id"][0]


def test_message_never_published_is_400(api, full_key):
    draft = template_create(name="Draft", subject="Hi", html="<p>Hi</p>")
    response = api.post(
        f"/api/v1/message/{draft.pk}/smartsend",
        key=full_key,
        body={"recipients": [{"locator": "a@example.com"}]},
    )
    assert response.status_code == 400
    assert "no published version" in response.json()["id"][0]


def test_the_latest_published_version_is_sent_not_the_draft(api, full_key, email_template):
    email_template.subject = "Changed draft"
    email_template.save()
    answer = smartsend(
        api, full_key, email_template, {"recipients": [{"locator": "a@example.com"}]}, "/"
    ).json()
    delivery = Delivery.objects.get(request_id=results_list(answer["results"])[0]["requestId"])
    assert delivery.template_version.subject.startswith("Order")
    template_publish(template=email_template)
    answer = smartsend(
        api, full_key, email_template, {"recipients": [{"locator": "a@example.com"}]}
    ).json()
    delivery = Delivery.objects.get(request_id=results_list(answer["results"])[0]["requestId"])
    assert delivery.template_version.subject == "Changed draft"


def test_a_rendering_error_fails_only_that_recipient(api, full_key, mail_to_sink):
    template = template_create(
        name="Range",
        subject="Numbers",
        html="<p>#foreach($i in [1..$data.get('n')])$i #end</p>",
    )
    template_publish(template=template)
    answer = smartsend(
        api,
        full_key,
        template,
        {
            "recipients": [
                {"locator": "small@example.com", "jsonParam": '{"n": 3}'},
                {"locator": "huge@example.com", "jsonParam": '{"n": 100000000}'},
            ]
        },
    ).json()
    send_request_process(send_request_id=answer["id"])
    assert [m["To"] for m in mail_to_sink.messages] == ["small@example.com"]
    huge = Delivery.objects.get(request_id=results_list(answer["results"])[1]["requestId"])
    assert huge.status == "failed"
    assert huge.error.startswith("rendering failed")
    event = DeliveryEvent.objects.get(delivery=huge)
    assert event.status == "failed" and "rendering failed" in event.detail
    status = api.get(f"/api/v1/message/status?ids={huge.request_id}", key=full_key).json()[
        "results"
    ]
    assert status["status"] == "FAILED" and status["failed"] == "true"
    assert status["message"].startswith("rendering failed")


def test_unsubscribed_address_still_gets_a_transactional_message(
    api, full_key, email_template, mail_to_sink
):
    Unsubscribed.objects.create(email="gone@example.com")
    answer = smartsend(
        api, full_key, email_template, {"recipients": [{"locator": "gone@example.com"}]}
    ).json()
    send_request_process(send_request_id=answer["id"])
    assert [m["To"] for m in mail_to_sink.messages] == ["gone@example.com"]


def test_sms_template_sends_sms_to_phone_locators(api, full_key, sms_template, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    answer = smartsend(
        api,
        full_key,
        sms_template,
        {
            "recipients": [
                {"locator": "380942583691", "jsonParam": '{"code": "7310"}'},
                {"locator": "0501234567"},
            ]
        },
    ).json()
    assert [r["status"] for r in results_list(answer["results"])] == ["OK", "ERROR"]
    assert "not a valid phone number" in results_list(answer["results"])[1]["message"]
    send_request_process(send_request_id=answer["id"])
    [line] = (tmp_path / "outbox" / "sms.jsonl").read_text().splitlines()
    sms = json.loads(line)
    assert sms["to"] == "+380942583691"
    assert sms["text"] == "Your code is 7310"
    assert sms["from"] == "Shop"
    delivery = Delivery.objects.get(request_id=results_list(answer["results"])[0]["requestId"])
    assert delivery.status == "sent" and delivery.provider == "outbox"
    assert delivery.provider_message_id == sms["id"]


def test_status_takes_comma_separated_or_repeated_ids_and_reports_unknown_ones(
    api, full_key, email_template
):
    answer = smartsend(
        api,
        full_key,
        email_template,
        {"recipients": [{"locator": "a@example.com"}, {"locator": "b@example.com"}]},
    ).json()
    first, second = (r["requestId"] for r in results_list(answer["results"]))
    unknown = "3ff28330-f8ef-4636-92ac-86345c16995e"
    response = api.get(
        f"/api/v1/message/status/?ids={first},{unknown}&ids={second}&ids=nonsense", key=full_key
    )
    assert response.status_code == 200
    items = results_list(response.json()["results"])
    assert [i["requestId"] for i in items] == [first, unknown, second, "nonsense"]
    assert [i["status"] for i in items] == ["QUEUED", "NOT_FOUND", "QUEUED", "NOT_FOUND"]
    assert items[1]["failed"] == "false" and items[1]["delivered"] == "false"

    assert api.get("/api/v1/message/status", key=full_key).status_code == 400
    many = ",".join(str(n) for n in range(1001))
    assert api.get(f"/api/v1/message/status?ids={many}", key=full_key).status_code == 400


def test_message_right_is_needed(api, limited_key, messages_key, email_template):
    body = {"recipients": [{"locator": "a@example.com"}]}
    assert smartsend(api, limited_key, email_template, body).status_code == 403
    assert smartsend(api, messages_key, email_template, body).status_code == 200
    assert api.post(f"/api/v1/message/{email_template.pk}/smartsend", body=body).status_code == 401


def test_from_name_of_the_request_overrides_the_templates(
    api, full_key, email_template, mail_to_sink
):
    answer = smartsend(
        api,
        full_key,
        email_template,
        {
            "recipients": [{"locator": "a@example.com", "languageCode": "uk"}],
            "fromName": "Shop Support",
            "externalRequestId": "order-77",
        },
    ).json()
    send_request = SendRequest.objects.get(pk=answer["id"])
    assert send_request.external_request_id == "order-77"
    assert send_request.deliveries.get().language_code == "uk"
    send_request_process(send_request_id=answer["id"])
    assert mail_to_sink.messages[0]["From"] == "Shop Support <orders@shop.example>"


def test_bad_language_code_fails_that_recipient(api, full_key, email_template):
    results = results_list(
        smartsend(
            api,
            full_key,
            email_template,
            {"recipients": [{"locator": "a@example.com", "languageCode": "x" * 11}]},
        ).json()["results"]
    )
    assert results[0]["status"] == "ERROR" and "languageCode" in results[0]["message"]


def test_sending_task_is_registered_under_its_public_name():
    from config.celery import app

    app.loader.import_default_modules()
    assert "campaigns.send_request" in app.tasks

"""POST /v1/message/email and /v1/message/sms: inline content to many addresses."""

import json

import pytest

from campaigns.delivery.engine import send_request_process
from campaigns.models import Delivery, SendRequest
from contacts.models import Contact, ContactSource
from tests.contacts.factories import ContactFactory, SegmentFactory
from tests.support.api import results_list

pytestmark = pytest.mark.django_db

DOCUMENTED_EMAIL = {
    "from": '"Shop" <news@shop.example>',
    "subject": "Hello $!contact.firstName",
    "htmlText": "<p>Dear $!contact.firstName, see <a href='https://shop.example/'>our shop</a></p>",
    "emails": ["kim@example.com", "new.person@example.com"],
    "tags": ["welcome"],
    "externalRequestId": "crm-42",
}


def test_email_is_personalised_per_contact_and_sent(api, full_key, mail_to_sink):
    ContactFactory(email="kim@example.com", first_name="Kim")
    response = api.post("/api/v1/message/email", key=full_key, body=DOCUMENTED_EMAIL)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert [r["status"] for r in results_list(answer["results"])] == ["OK", "OK"]
    send_request = SendRequest.objects.get(pk=answer["id"])
    assert send_request.tags == ["welcome"]
    assert send_request.external_request_id == "crm-42"
    assert "Dear" in send_request.text, "a plain-text body is derived from the HTML"
    new = Contact.objects.get(email="new.person@example.com")
    assert new.source == ContactSource.SINGLE_MESSAGE

    send_request_process(send_request_id=answer["id"])
    mails = {m["To"]: m for m in mail_to_sink.messages}
    assert mails["kim@example.com"]["Subject"] == "Hello Kim"
    assert mails["kim@example.com"]["From"] == "Shop <news@shop.example>"
    assert "Dear Kim" in mails["kim@example.com"].get_body(("plain",)).get_content()
    assert mails["new.person@example.com"]["Subject"] == "Hello"


def test_skip_personalisation_sends_the_content_as_given(api, full_key, mail_to_sink):
    body = {
        "subject": "Price $5",
        "plainText": "Use code $data.get('x') #if",
        "emails": ["raw@example.com"],
        "skipPersonalisation": True,
    }
    answer = api.post("/api/v1/message/email/", key=full_key, body=body).json()
    send_request_process(send_request_id=answer["id"])
    [mail] = mail_to_sink.messages
    assert mail["Subject"] == "Price $5"
    text = mail.get_content().replace("\r\n", "\n")
    assert text.startswith("Use code $data.get('x') #if\n")
    assert "\nUnsubscribe: http" in text


def test_email_form_encoded_body_is_accepted(api, full_key, client):
    response = client.post(
        "/api/v1/message/email",
        data={"subject": "Hi", "plainText": "Hello", "emails": ["a@example.com", "b@example.com"]},
        headers={"Authorization": api.basic(full_key.secret)},
    )
    assert response.status_code == 200, response.content
    assert [r["locator"] for r in results_list(response.json()["results"])] == [
        "a@example.com",
        "b@example.com",
    ]


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"from": "not an address"}, "from", "must be an address"),
        ({"subject": ""}, "subject", "is required"),
        ({"subject": "a\nb"}, "subject", "single line"),
        ({"htmlText": "", "plainText": ""}, "htmlText", "htmlText or plainText"),
        ({"htmlText": "<p>#if($x)</p>"}, "htmlText", "template syntax error"),
        ({"emails": []}, "emails", "must not be empty"),
        ({"emails": "a@example.com"}, "emails", "must be a list"),
        ({"emails": [f"p{n}@example.com" for n in range(1001)]}, "emails", "at most 1000"),
        ({"tags": "x"}, "tags", "list of strings"),
        ({"skipPersonalisation": "perhaps"}, "skipPersonalisation", "true or false"),
    ],
)
def test_bad_email_requests_are_400_naming_the_field(api, full_key, change, field, problem):
    response = api.post("/api/v1/message/email", key=full_key, body={**DOCUMENTED_EMAIL, **change})
    assert response.status_code == 400, response.content
    assert problem in " ".join(response.json()[field])
    assert not Delivery.objects.exists()


def test_invalid_email_address_fails_alone(api, full_key):
    body = {**DOCUMENTED_EMAIL, "emails": ["ok@example.com", "nope@", 17]}
    results = results_list(
        api.post("/api/v1/message/email", key=full_key, body=body).json()["results"]
    )
    assert [r["status"] for r in results] == ["OK", "ERROR", "ERROR"]
    assert "not a valid email address" in results[1]["message"]
    assert Delivery.objects.count() == 1


def test_sms_to_phone_numbers(api, full_key, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    ContactFactory(email="", phone="+380942583691", first_name="Olena")
    body = {
        "from": "Shop",
        "text": "Hi $!contact.firstName, your parcel is here",
        "phoneNumbers": ["380942583691", "+447911123456", "12"],
    }
    response = api.post("/api/v1/message/sms", key=full_key, body=body)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert [r["status"] for r in results_list(answer["results"])] == ["OK", "OK", "ERROR"]
    assert answer["count"] == 2
    assert Contact.objects.get(phone="+447911123456").source == ContactSource.SINGLE_MESSAGE

    send_request_process(send_request_id=answer["id"])
    lines = [
        json.loads(line) for line in (tmp_path / "outbox" / "sms.jsonl").read_text().splitlines()
    ]
    texts = {line["to"]: line["text"] for line in lines}
    assert texts == {
        "+380942583691": "Hi Olena, your parcel is here",
        "+447911123456": "Hi , your parcel is here",
    }
    assert {line["from"] for line in lines} == {"Shop"}


def test_sms_to_a_group_queues_every_member_with_a_phone(api, full_key, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    group = SegmentFactory()
    members = [
        ContactFactory(phone="+380942583691"),
        ContactFactory(phone="+447911123456"),
        ContactFactory(phone=""),
    ]
    group.contacts.add(*members)
    ContactFactory(phone="+380501234567")  # not in the group
    answer = api.post(
        "/api/v1/message/sms", key=full_key, body={"text": "Sale!", "groupId": group.pk}
    ).json()
    assert answer["count"] == 2 and results_list(answer["results"]) == []
    send_request_process(send_request_id=answer["id"])
    sent = sorted(Delivery.objects.filter(status="sent").values_list("locator", flat=True))
    assert sent == ["+380942583691", "+447911123456"]


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"phoneNumbers": ["380942583691"]}, "text", 400),
        ({"text": "Hi"}, "phoneNumbers", 400),
        ({"text": "Hi", "groupId": "x"}, "groupId", 400),
        ({"text": "Hi", "groupId": 999999}, "groupId", 404),
        ({"text": "#if($x) hi", "phoneNumbers": ["380942583691"]}, "text", 400),
        ({"text": "Hi", "from": "x" * 21, "phoneNumbers": ["380942583691"]}, "from", 400),
    ],
)
def test_bad_sms_requests_name_the_field(api, full_key, body, field, status):
    response = api.post("/api/v1/message/sms", key=full_key, body=body)
    assert response.status_code == status, response.content
    assert field in response.json()


def test_html_of_the_documented_size_without_plain_text_is_sent(api, full_key, mail_to_sink):
    row = (
        '<table width="600"><tr><td style="padding: 4px"><p>Dear $!contact.firstName, here is '
        "a long paragraph of news about our shop, with more words than markup in it, as a "
        "newsletter has.</p></td></tr></table>\n"
    )
    html = "<div>" + row * ((2_000_000 - 11) // len(row)) + "</div>"
    assert 1_900_000 < len(html) <= 2_000_000
    body = {"subject": "News", "htmlText": html, "emails": ["kim@example.com"]}
    ContactFactory(email="kim@example.com", first_name="Kim")
    response = api.post("/api/v1/message/email", key=full_key, body=body)
    assert response.status_code == 200, response.content[:300]
    send_request_process(send_request_id=response.json()["id"])
    [mail] = mail_to_sink.messages
    assert mail.get_body(("html",)).get_content().count("Dear Kim") == html.count("Dear $!")
    assert "Dear Kim" in mail.get_body(("plain",)).get_content()


@pytest.mark.parametrize(
    "html, problem",
    [
        ("<p>Price $5</p>" * 50_001, "more than 50,000 '$' and '#'"),
        ("<p>Done.</p>#end", "unexpected '#end'"),
    ],
)
def test_html_the_template_engine_cannot_read_is_a_400_even_without_personalisation(
    api, full_key, html, problem
):
    body = {"subject": "Hi", "htmlText": html, "emails": ["kim@example.com"]}
    body["skipPersonalisation"] = True
    response = api.post("/api/v1/message/email", key=full_key, body=body)
    assert response.status_code == 400, response.content[:300]
    assert problem in response.json()["htmlText"][0]
    assert not SendRequest.objects.exists()

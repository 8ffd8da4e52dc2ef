"""Single messages and provider feedback, through the eSputnik v1 message API: the status
of a message follows what the provider reported (delivered, bounced, complained), and a
message to a suppressed address is not sent: its delivery is recorded skipped with the
reason, its result says so, the other recipients are sent."""

import pytest

from campaigns.delivery.engine import send_request_process
from campaigns.delivery.feedback import UpdateDeliveryStatus, actions_apply
from campaigns.delivery.providers import DeliveryStatus
from campaigns.models import Delivery, DeliveryEvent
from contacts.models import SegmentMembership, Suppression, Unsubscribed
from contacts.suppression import suppression_lift
from templates.services import template_create, template_publish
from tests.contacts.factories import ContactFactory, SegmentFactory
from tests.support.api import results_list
from tests.support.smtp import SMTPSink, use_sink

pytestmark = pytest.mark.django_db


@pytest.fixture
def sink(settings):
    with SMTPSink() as server:
        use_sink(settings, server)
        yield server


@pytest.fixture
def receipt(db):
    template = template_create(
        name="Receipt",
        subject="Your receipt",
        from_name="Shop",
        from_email="orders@shop.example",
        html="<p>Thank you, order $!data.get('orderId').</p>",
    )
    template_publish(template=template)
    return template


def suppress(address: str, reason: str = "hard_bounce", channel: str = "email", **extra):
    return Suppression.objects.create(
        channel=channel,
        address=address,
        reason=reason,
        detail=extra.pop("detail", "550 5.1.1 user unknown"),
        source=extra.pop("source", "SendGrid"),
        **extra,
    )


def smartsend(api, key, template, *locators):
    response = api.post(
        f"/api/v1/message/{template.pk}/smartsend",
        key=key,
        body={"recipients": [{"locator": locator} for locator in locators]},
    )
    assert response.status_code == 200, response.content
    return response.json()


def statuses(api, key, *request_ids):
    ids = ",".join(request_ids)
    response = api.get(f"/api/v1/message/status?ids={ids}", key=key)
    assert response.status_code == 200, response.content
    return results_list(response.json()["results"])


# --- suppressed recipients ------------------------------------------------------------------


def test_smartsend_to_a_suppressed_address_is_skipped_with_the_reason_and_others_are_sent(
    api, full_key, receipt, sink
):
    suppress("gone@example.com")
    answer = smartsend(api, full_key, receipt, "Gone@Example.com", "here@example.com")
    gone, here = results_list(answer["results"])
    assert gone["status"] == "ERROR"
    assert gone["message"].startswith("suppressed: hard bounce — 550 5.1.1 user unknown")
    assert "SendGrid" in gone["message"]
    assert gone["requestId"] and gone["id"]
    assert here["status"] == "OK" and "message" not in here

    skipped = Delivery.objects.get(request_id=gone["requestId"])
    assert skipped.status == "skipped"
    assert skipped.error == gone["message"]
    assert DeliveryEvent.objects.get(delivery=skipped).status == "skipped"

    send_request_process(send_request_id=answer["id"])
    assert [m["To"] for m in sink.messages] == ["here@example.com"]

    gone_status, here_status = statuses(api, full_key, gone["requestId"], here["requestId"])
    assert gone_status == {
        "id": gone["id"],
        "requestId": gone["requestId"],
        "status": "SKIPPED",
        "failed": "true",
        "delivered": "false",
        "message": gone["message"],
    }
    assert here_status["status"] == "SENT" and here_status["failed"] == "false"


def test_a_lifted_suppression_and_the_unsubscribed_list_do_not_stop_a_single_message(
    api, full_key, receipt, sink
):
    suppression_lift(suppression=suppress("back@example.com"))
    Unsubscribed.objects.create(email="nobulk@example.com")
    answer = smartsend(api, full_key, receipt, "back@example.com", "nobulk@example.com")
    assert [r["status"] for r in results_list(answer["results"])] == ["OK", "OK"]
    send_request_process(send_request_id=answer["id"])
    assert sorted(m["To"] for m in sink.messages) == ["back@example.com", "nobulk@example.com"]


def test_an_address_suppressed_on_sms_only_still_gets_email(api, full_key, receipt, sink):
    ContactFactory(email="both@example.com", phone="+4915112345678")
    suppress("+4915112345678", channel="sms", reason="manual", detail="asked to stop texts")
    answer = smartsend(api, full_key, receipt, "both@example.com")
    assert results_list(answer["results"])[0]["status"] == "OK"


def test_email_api_skips_a_complained_address(api, full_key, sink):
    suppress("angry@example.com", reason="complaint", detail="abuse report")
    response = api.post(
        "/api/v1/message/email",
        key=full_key,
        body={
            "from": '"Shop" <news@shop.example>',
            "subject": "Hello",
            "htmlText": "<p>Hi</p>",
            "emails": ["angry@example.com", "calm@example.com"],
        },
    )
    assert response.status_code == 200, response.content
    angry, calm = results_list(response.json()["results"])
    assert angry["status"] == "ERROR"
    assert angry["message"].startswith("suppressed: spam complaint — abuse report")
    assert calm["status"] == "OK"
    send_request_process(send_request_id=response.json()["id"])
    assert [m["To"] for m in sink.messages] == ["calm@example.com"]


def test_sms_api_skips_a_suppressed_number_and_leaves_it_out_of_a_group(api, full_key):
    suppress("+4915111111111", channel="sms", reason="hard_bounce", detail="unreachable")
    segment = SegmentFactory(name="Texters", kind="static")
    for phone in ("+4915111111111", "+4915122222222"):
        SegmentMembership.objects.create(segment=segment, contact=ContactFactory(phone=phone))
    response = api.post(
        "/api/v1/message/sms",
        key=full_key,
        body={"text": "Sale!", "phoneNumbers": ["+4915111111111", "+4915133333333"]},
    )
    body = response.json()
    assert [r["status"] for r in results_list(body["results"])] == ["ERROR", "OK"]
    assert results_list(body["results"])[0]["message"].startswith(
        "suppressed: hard bounce — unreachable"
    )
    assert body["count"] == 1

    grouped = api.post(
        "/api/v1/message/sms", key=full_key, body={"text": "Sale!", "groupId": segment.pk}
    ).json()
    assert grouped["count"] == 1
    queued = Delivery.objects.filter(send_request_id=grouped["id"])
    assert list(queued.values_list("locator", flat=True)) == ["+4915122222222"]


# --- status after provider feedback ---------------------------------------------------------


def feedback(delivery_request_id: str, status: str, event: str, detail: str = "") -> None:
    delivery = Delivery.objects.get(request_id=delivery_request_id)
    report = actions_apply(
        [
            UpdateDeliveryStatus(
                status=DeliveryStatus(status),
                herald_id=delivery.message_id,
                event_id=event,
                detail=detail,
            )
        ],
        source="Echo ESP",
    )
    assert report.unmatched == 0


def test_message_status_follows_delivery_bounce_and_complaint_reports(api, full_key, receipt, sink):
    answer = smartsend(
        api, full_key, receipt, "ok@example.com", "dead@example.com", "spam@example.com"
    )
    send_request_process(send_request_id=answer["id"])
    ok, dead, spam = (r["requestId"] for r in results_list(answer["results"]))
    assert [s["status"] for s in statuses(api, full_key, ok, dead, spam)] == ["SENT"] * 3

    feedback(ok, "delivered", "e1")
    feedback(dead, "bounced", "e2", detail="550 5.1.1 mailbox does not exist")
    feedback(spam, "delivered", "e3")
    feedback(spam, "complained", "e4")

    ok_s, dead_s, spam_s = statuses(api, full_key, ok, dead, spam)
    assert (ok_s["status"], ok_s["delivered"], ok_s["failed"]) == ("DELIVERED", "true", "false")
    assert (dead_s["status"], dead_s["delivered"], dead_s["failed"]) == ("BOUNCED", "false", "true")
    assert "550 5.1.1 mailbox does not exist" in dead_s["message"]
    assert (spam_s["status"], spam_s["delivered"], spam_s["failed"]) == (
        "COMPLAINED",
        "true",
        "false",
    )

    # The bounce suppressed the address: the next message to it is not sent.
    again = results_list(smartsend(api, full_key, receipt, "dead@example.com")["results"])[0]
    assert again["status"] == "ERROR"
    assert again["message"].startswith("suppressed: hard bounce — 550 5.1.1 mailbox")
    assert "Echo ESP" in again["message"]


def test_a_complaint_about_a_bounced_message_stays_a_failure(api, full_key, receipt, sink):
    answer = smartsend(api, full_key, receipt, "odd@example.com")
    send_request_process(send_request_id=answer["id"])
    request_id = results_list(answer["results"])[0]["requestId"]
    feedback(request_id, "bounced", "b1")
    feedback(request_id, "complained", "c1")
    [status] = statuses(api, full_key, request_id)
    assert (status["status"], status["delivered"], status["failed"]) == (
        "COMPLAINED",
        "false",
        "true",
    )


def test_an_opened_message_counts_as_delivered_without_a_delivery_report(
    api, full_key, receipt, sink
):
    answer = smartsend(api, full_key, receipt, "reader@example.com")
    send_request_process(send_request_id=answer["id"])
    request_id = results_list(answer["results"])[0]["requestId"]
    feedback(request_id, "opened", "o1")
    [status] = statuses(api, full_key, request_id)
    assert (status["status"], status["delivered"], status["failed"]) == ("OPENED", "true", "false")

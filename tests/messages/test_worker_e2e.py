"""End to end: API call → Celery worker process → real SMTP server → status endpoint."""

import json

import pytest

from campaigns.models import Delivery
from templates.services import template_create, template_publish
from tests.conftest import wait_for
from tests.contacts.factories import ContactFactory
from tests.support.api import results_list
from tests.support.smtp import SMTPSink
from tests.support.worker import CeleryWorker

pytestmark = pytest.mark.worker


@pytest.fixture
def sink_and_worker(transactional_db):
    # The worker is another process: it gets the SMTP server through EMAIL_URL.
    with SMTPSink() as sink, CeleryWorker(env={"EMAIL_URL": sink.url}) as worker:
        yield sink, worker


def test_smartsend_through_a_worker_reaches_every_recipient_once(api, full_key, sink_and_worker):
    sink, worker = sink_and_worker
    template = template_create(
        name="Receipt",
        subject="Receipt $data.get('n')",
        from_email="shop@shop.example",
        html="<p>Hi $!contact.firstName, receipt $data.get('n') for $data.get('total')</p>",
    )
    template_publish(template=template)
    ContactFactory(email="r0@example.com", first_name="Rita")
    recipients = [
        {"locator": f"r{n}@example.com", "jsonParam": json.dumps({"n": n, "total": f"{n}.50"})}
        for n in range(12)
    ]
    response = api.post(
        f"/api/v1/message/{template.pk}/smartsend", key=full_key, body={"recipients": recipients}
    )
    assert response.status_code == 200
    answer = response.json()

    def all_sent():
        return Delivery.objects.filter(send_request_id=answer["id"], status="sent").count() == 12

    wait_for(all_sent, timeout=60)
    received = sink.received
    assert sorted(item.rcpt_tos[0] for item in received) == sorted(
        f"r{n}@example.com" for n in range(12)
    ), worker.output()
    for item in received:
        message = item.message
        n = int(message["To"][1:].split("@")[0])
        assert message["Subject"] == f"Receipt {n}"
        assert f"receipt {n} for {n}.50" in message.get_body(("html",)).get_content()
        delivery = Delivery.objects.get(locator=message["To"], send_request_id=answer["id"])
        assert message["Message-ID"] == delivery.message_id
    first = next(item.message for item in received if item.message["To"] == "r0@example.com")
    assert "Hi Rita," in first.get_body(("html",)).get_content()

    ids = ",".join(r["requestId"] for r in results_list(answer["results"]))
    status = results_list(
        api.get(f"/api/v1/message/status?ids={ids}", key=full_key).json()["results"]
    )
    assert {item["status"] for item in status} == {"SENT"}
    assert all(item["failed"] == "false" for item in status)

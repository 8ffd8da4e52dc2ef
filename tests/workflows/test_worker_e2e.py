"""End to end: POST /api/v1/event (the eSputnik v1 API's example) → Celery worker starts the
workflow → the message reaches a real SMTP server with the event params as $data."""

import pytest

from campaigns.models import Delivery
from marketing.workflows.models import WorkflowRun
from tests.conftest import wait_for
from tests.contacts.factories import ContactFactory
from tests.support.smtp import SMTPSink
from tests.support.worker import CeleryWorker
from tests.workflows.conftest import chain, make_workflow, published

pytestmark = pytest.mark.worker


@pytest.fixture
def sink_and_worker(transactional_db):
    with SMTPSink() as sink, CeleryWorker(env={"EMAIL_URL": sink.url}) as worker:
        yield sink, worker


def test_generated_event_starts_the_workflow_and_its_email_arrives(api, full_key, sink_and_worker):
    sink, worker = sink_and_worker
    template = published(
        "Discount",
        "<p>Hi $!contact.firstName, take $!data.get('discount') off: $!data.get('link')</p>",
    )
    ContactFactory(email="example@email.com", first_name="Eve")
    make_workflow(
        chain({"kind": "send", "template_id": template.pk, "channel": "email"}),
        event_key="testEvent",
    )
    body = {
        "eventTypeKey": "testEvent",
        "keyValue": "example@email.com",
        "params": [
            {"name": "discount", "value": "5%"},
            {"name": "link", "value": "https://example.site.com/items_for_sale"},
        ],
    }
    response = api.post("/api/v1/event", key=full_key, body=body)
    assert response.status_code in (200, 201), response.content

    wait_for(lambda: Delivery.objects.filter(status="sent").exists(), timeout=60)
    assert len(sink.received) == 1, worker.output()
    [received] = sink.received
    html = received.message.get_body(("html",)).get_content()
    assert "Hi Eve, take 5% off: https://example.site.com/items_for_sale" in html, html
    run = WorkflowRun.objects.get()
    assert run.status == "completed"
    assert run.params == {"discount": "5%", "link": "https://example.site.com/items_for_sale"}

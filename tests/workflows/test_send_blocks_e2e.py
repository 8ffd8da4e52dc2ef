"""End to end: POST /api/v1/orders (the eSputnik v1 orders API's example) → a Celery worker
turns the order event into a run → a "one of many" step and a manager notification reach a
real SMTP server with the order's fields and items."""

import pytest

from campaigns.models import Delivery
from contacts.models import ChannelType
from marketing.workflows.models import WorkflowRun
from templates.services import template_create, template_publish
from tests.conftest import wait_for
from tests.marketing.test_api_orders import DOCUMENTED_ORDER
from tests.support.smtp import SMTPSink
from tests.support.worker import CeleryWorker
from tests.workflows.conftest import chain, make_workflow, published

pytestmark = pytest.mark.worker


@pytest.fixture
def sink_and_worker(transactional_db):
    with SMTPSink() as sink, CeleryWorker(env={"EMAIL_URL": sink.url}) as worker:
        yield sink, worker


def test_an_order_reaches_the_buyer_on_the_first_channel_and_the_manager_by_group_message(
    api, full_key, sink_and_worker, telegram_bot
):
    sink, worker = sink_and_worker
    chat = template_create(
        name="Order chat", channel=ChannelType.TELEGRAM, sms_text="Order $order.externalOrderId"
    )
    template_publish(template=chat)
    thanks = published(
        "Thanks",
        "<p>$!contact.firstName, order $order.externalOrderId: "
        "#foreach($item in $order.items)$item.name, #end total $order.totalCost</p>",
    )
    notify = published(
        "New order",
        "<p>New order $event.externalOrderId from $workflowContact.email "
        "for $order.totalCost $order.currency</p>",
    )
    make_workflow(
        chain(
            {
                "kind": "send_one_of",
                "options": [
                    {"channel": "telegram", "template_id": chat.pk},
                    {"channel": "email", "template_id": thanks.pk},
                ],
            },
            {
                "kind": "send_group",
                "template_id": notify.pk,
                "channel": "email",
                "segment_id": None,
                "addresses": ["manager@shop.example"],
            },
        ),
        event_key="orderINITIALIZED",
    )
    response = api.post("/api/v1/orders", key=full_key, body={"orders": [DOCUMENTED_ORDER]})
    assert response.status_code == 200, response.content

    wait_for(lambda: Delivery.objects.filter(status="sent").count() == 2, timeout=90)
    assert len(sink.received) == 2, worker.output()
    by_recipient = {
        r.rcpt_tos[0]: r.message.get_body(("html",)).get_content() for r in sink.received
    }
    assert "John, order 100500: Super Device,  total 1000.00" in by_recipient["mail@example.com"]
    assert (
        "New order 100500 from mail@example.com for 1000.00 USD"
        in by_recipient["manager@shop.example"]
    )
    # Telegram was connected but the buyer has no chat: nothing went to the bot.
    assert telegram_bot.sent() == []
    run = WorkflowRun.objects.get()
    assert run.status == "completed"
    assert "telegram skipped: the contact has no Telegram address" in run.path[0]["note"]
    assert run.path[1]["note"] == "email to 1 addresses queued"

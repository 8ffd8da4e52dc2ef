"""The workflow "Messages" blocks: a send on any connected channel, "one of many", a message
to a group; `$order` and `$event` in their messages; what activation refuses; the simulator
and the editor."""

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.delivery.engine import send_request_process
from campaigns.models import Delivery
from contacts.models import ChannelType, Segment, SegmentKind, SegmentMembership, Unsubscribed
from contacts.suppression import suppression_add_manual
from marketing.models import Event
from marketing.orders import orders_upsert
from marketing.tasks import workflows_tick
from marketing.workflows import send_blocks
from marketing.workflows.models import Workflow, WorkflowRun, WorkflowSend
from marketing.workflows.services import WorkflowError, workflow_activate
from marketing.workflows.simulator import simulate
from templates.preview import template_preview
from templates.services import template_create, template_publish
from tests.contacts.factories import ContactFactory
from tests.marketing.test_api_orders import DOCUMENTED_ORDER
from tests.workflows.conftest import chain, make_workflow, published
from tests.workflows.test_engine import emit, start, wake

pytestmark = pytest.mark.django_db

ORDER_HTML = (
    "<p>Order $order.externalOrderId: $order.totalCost $order.currency, "
    "status $event.status ($data.get('status'))</p>"
    "<ul>#foreach($item in $order.items)<li>$item.name x$item.quantity at $item.cost</li>#end</ul>"
    "<p>[$!order.noSuchField][$!nothing.here]</p>"
)
ORDER = {
    **DOCUMENTED_ORDER,
    "items": [
        {"externalItemId": "1", "name": "Super Device", "quantity": 2, "cost": 495},
        {"externalItemId": "2", "name": "Case", "quantity": 1, "cost": 10},
    ],
}


@pytest.fixture
def tg_notice(db):
    template = template_create(
        name="Parcel", channel=ChannelType.TELEGRAM, sms_text="Order $!order.externalOrderId"
    )
    template_publish(template=template)
    return template


def send_all():
    for request_id in set(
        Delivery.objects.filter(status="queued").values_list("send_request_id", flat=True)
    ):
        send_request_process(send_request_id=request_id)


def html_of(received) -> str:
    return received.message.get_body(("html",)).get_content()


def test_an_order_event_run_renders_the_order_its_items_and_the_event_params(
    mail_to_sink, django_capture_on_commit_callbacks
):
    template = published("Thanks", ORDER_HTML)
    make_workflow(
        chain({"kind": "send", "template_id": template.pk, "channel": "email"}),
        event_key="orderINITIALIZED",
    )
    with django_capture_on_commit_callbacks(execute=True):
        orders_upsert(orders=[ORDER])
    start(Event.objects.get(event_type__key="orderINITIALIZED"), django_capture_on_commit_callbacks)
    send_all()

    [received] = mail_to_sink.received
    assert received.rcpt_tos == ["mail@example.com"]
    html = html_of(received)
    assert "Order 100500: 1000.00 USD, status INITIALIZED (INITIALIZED)" in html, html
    assert "<li>Super Device x2 at 495.00</li><li>Case x1 at 10.00</li>" in html
    # Unknown names follow the template language's rule: $! renders nothing.
    assert "<p>[][]</p>" in html
    # The order was read once, when the step ran, and kept with the send.
    send = WorkflowSend.objects.get()
    assert send.names["order"]["externalOrderId"] == "100500"
    assert send.names["event"]["status"] == "INITIALIZED"


def test_without_an_order_the_order_names_render_as_unknown_names(
    ann, mail_to_sink, django_capture_on_commit_callbacks
):
    template = published("Plain", "<p>[$!order.totalCost][$event.discount][$order.totalCost]</p>")
    make_workflow(chain({"kind": "send", "template_id": template.pk, "channel": "email"}))
    start(emit(ann, params={"discount": "5%"}), django_capture_on_commit_callbacks)
    send_all()
    assert "[][5%][$order.totalCost]" in html_of(mail_to_sink.received[0])


def test_a_send_step_on_telegram_reaches_the_contacts_chat(
    telegram_bot, tg_notice, django_capture_on_commit_callbacks
):
    ann = ContactFactory(extra_channels=[{"type": "telegram", "value": "701"}])
    make_workflow(chain({"kind": "send", "template_id": tg_notice.pk, "channel": "telegram"}))
    start(
        emit(ann, params={"orderId": "x", "externalOrderId": "A-9"}),
        django_capture_on_commit_callbacks,
    )
    send_all()
    assert telegram_bot.sent("701") == ["Order "]  # no such order: $!order renders nothing
    run = WorkflowRun.objects.get()
    assert run.status == "completed"
    assert run.path[0]["note"].startswith("telegram to 701 queued")


def test_one_of_many_sends_on_the_first_channel_that_reaches_the_contact(
    telegram_bot, tg_notice, mail_to_sink, django_capture_on_commit_callbacks
):
    email = published("By mail", "<p>Hello $!contact.firstName</p>")
    steps = chain(
        {
            "kind": "send_one_of",
            "options": [
                {"channel": "telegram", "template_id": tg_notice.pk},
                {"channel": "email", "template_id": email.pk},
            ],
        }
    )
    make_workflow(steps)
    in_chat = ContactFactory(
        email="chat@example.com", extra_channels=[{"type": "telegram", "value": "9"}]
    )
    by_mail = ContactFactory(email="mail@example.com", first_name="Mia")
    start(emit(in_chat), django_capture_on_commit_callbacks)
    start(emit(by_mail), django_capture_on_commit_callbacks)
    send_all()

    assert telegram_bot.sent("9") == ["Order "]
    assert [r.rcpt_tos for r in mail_to_sink.received] == [["mail@example.com"]]
    first, second = (WorkflowRun.objects.get(contact=c) for c in (in_chat, by_mail))
    assert first.path[0]["channel"] == "telegram" and first.path[0]["skipped"] == []
    assert second.path[0]["channel"] == "email"
    assert second.path[0]["skipped"] == [
        {"channel": "telegram", "reason": "the contact has no Telegram address"}
    ]
    assert "sent by email" in second.path[0]["note"]
    assert "telegram skipped: the contact has no Telegram address" in second.path[0]["note"]


def test_one_of_many_with_no_reachable_channel_records_why_and_the_run_goes_on(
    mail_to_sink, django_capture_on_commit_callbacks
):
    email = published("By mail")
    sms = published("By SMS", "Hi", channel="sms")
    quiet = ContactFactory(email="quiet@example.com", phone="+14155550123")
    Unsubscribed.objects.create(email="quiet@example.com")
    suppression_add_manual(channel="sms", address="+14155550123", detail="asked by phone")
    make_workflow(
        chain(
            {
                "kind": "send_one_of",
                "options": [
                    {"channel": "email", "template_id": email.pk},
                    {"channel": "sms", "template_id": sms.pk},
                ],
            },
            {"kind": "update_field", "field": "firstName", "value": "Reached"},
        )
    )
    start(emit(quiet), django_capture_on_commit_callbacks)

    run = WorkflowRun.objects.get()
    assert run.status == "completed"
    assert [entry["step"] for entry in run.path] == ["s1", "s2"]
    note = run.path[0]["note"]
    assert note.startswith("no channel can reach the contact, nothing sent")
    assert "email skipped: the address is on the unsubscribed list" in note
    assert "sms skipped: suppressed" in note
    assert not Delivery.objects.exists()
    quiet.refresh_from_db()
    assert quiet.first_name == "Reached"


def test_a_group_message_to_fixed_addresses_carries_the_runs_contact_and_event(
    ann, mail_to_sink, django_capture_on_commit_callbacks
):
    template = published(
        "New lead",
        "<p>To $!contact.email: $workflowContact.firstName ($workflowContact.email) "
        "asked for $event.product</p>",
    )
    make_workflow(
        chain(
            {
                "kind": "send_group",
                "template_id": template.pk,
                "channel": "email",
                "segment_id": None,
                "addresses": ["boss@shop.example", "not an address"],
            }
        ),
        activate=False,
    )
    workflow = Workflow.objects.get()
    with pytest.raises(WorkflowError) as refused:
        workflow_activate(workflow=workflow)
    assert "addresses: 'not an address'" in str(refused.value)
    graph = workflow.draft_graph
    graph["steps"][0]["addresses"] = ["boss@shop.example"]
    Workflow.objects.filter(pk=workflow.pk).update(draft_graph=graph)
    workflow_activate(workflow=workflow)

    start(emit(ann, params={"product": "a sofa"}), django_capture_on_commit_callbacks)
    send_all()
    [received] = mail_to_sink.received
    assert received.rcpt_tos == ["boss@shop.example"]
    assert "To boss@shop.example: Ann (ann@example.com) asked for a sofa" in html_of(received)
    assert WorkflowRun.objects.get().path[0]["note"] == "email to 1 addresses queued"


def test_a_group_message_to_a_segment_reaches_each_reachable_member_once(
    ann, mail_to_sink, django_capture_on_commit_callbacks
):
    template = published(
        "Team news", "<p>$workflowContact.firstName joined, $!contact.firstName</p>"
    )
    segment = Segment.objects.create(name="Team", kind=SegmentKind.STATIC)
    members = [
        ContactFactory(email="a@shop.example", first_name="A"),
        ContactFactory(email="b@shop.example", first_name="B"),
        ContactFactory(email="gone@shop.example"),
    ]
    Unsubscribed.objects.create(email="gone@shop.example")
    SegmentMembership.objects.bulk_create(
        SegmentMembership(segment=segment, contact=member) for member in members
    )
    make_workflow(
        chain(
            {
                "kind": "send_group",
                "template_id": template.pk,
                "channel": "email",
                "segment_id": segment.pk,
                "addresses": [],
            }
        )
    )
    start(emit(ann), django_capture_on_commit_callbacks)
    run = WorkflowRun.objects.get()
    assert run.path[0]["note"] == "email to 2 contacts of segment “Team” queued"

    # The step repeated on the same visit (a worker died after queueing) queues nothing more.
    step = run.version.graph["steps"][0]
    run.path = []
    again = send_blocks.step_send(step, run)
    assert again.note.startswith("already sent on this visit")
    send_all()
    assert sorted(r.rcpt_tos[0] for r in mail_to_sink.received) == [
        "a@shop.example",
        "b@shop.example",
    ]
    assert all("Ann joined" in html_of(r) for r in mail_to_sink.received)


def test_activation_refuses_bad_message_settings_naming_the_block_and_the_field(welcome):
    sms = published("Short", "Hi", channel="sms")
    workflow = make_workflow(
        chain(
            {"kind": "send", "label": "Viber hello", "template_id": welcome.pk, "channel": "viber"},
            {"kind": "send_one_of", "label": "Any", "options": []},
            {
                "kind": "send_one_of",
                "label": "Pick",
                "options": [
                    {"channel": "email", "template_id": sms.pk},
                    {"channel": "fax", "template_id": welcome.pk},
                ],
            },
            {"kind": "send_group", "label": "Team", "template_id": None, "channel": "email"},
        ),
        activate=False,
    )
    with pytest.raises(WorkflowError) as refused:
        workflow_activate(workflow=workflow)
    problems = refused.value.problems
    assert (
        "step “Viber hello” (s1): channel: no provider serves viber "
        "(no integration connects this channel)"
    ) in problems
    assert "step “Any” (s2): add at least one channel with its template" in problems
    assert any(
        p.startswith("step “Pick” (s3): channel 2: 'fax' is not a channel") for p in problems
    )
    assert "step “Pick” (s3): channel 1: template “Short” is a sms message, not email" in problems
    assert "step “Team” (s4): choose the message template to send" in problems
    assert "step “Team” (s4): send to a segment or to addresses (one of the two)" in problems
    assert Workflow.objects.get().status == "draft"


def test_template_preview_knows_order_and_event_names():
    rendered = template_preview(
        content={
            "channel": "email",
            "subject": "Order $order.externalOrderId",
            "html": "<p>#foreach($i in $order.items)$i.name#end $event.status</p>",
        },
        contact=None,
        data={},
    )
    assert rendered.subject == "Order 100500"
    assert "Super Device INITIALIZED" in rendered.html


def test_the_simulator_says_which_channel_would_be_used_and_why(telegram_bot, tg_notice, welcome):
    contact = ContactFactory(email="sim@example.com")
    graph = chain(
        {
            "kind": "send_one_of",
            "options": [
                {"channel": "telegram", "template_id": tg_notice.pk},
                {"channel": "email", "template_id": welcome.pk},
            ],
        },
        {
            "kind": "send_group",
            "template_id": welcome.pk,
            "channel": "email",
            "segment_id": None,
            "addresses": ["boss@shop.example"],
        },
    )
    result = simulate(graph=graph, contact=contact)
    first, second = (step.description for step in result.path)
    assert first == (
        "would send “Welcome” by email to sim@example.com "
        "(telegram skipped: the contact has no Telegram address)"
    )
    assert second == "would send “Welcome” by email to boss@shop.example"
    assert not Delivery.objects.exists()


def test_the_editor_saves_a_one_of_many_step_and_offers_connected_channels(
    client, marketer, telegram_bot, tg_notice, welcome
):
    client.force_login(marketer)
    workflow = make_workflow(chain({"kind": "send_one_of", "options": []}), activate=False)
    page = client.get(workflow.get_absolute_url()).content.decode()
    assert 'value="telegram"' in page and 'value="viber"' not in page
    response = client.post(
        reverse("workflow_step_save", args=[workflow.pk, "s1"]),
        {
            "s1-label": "Reach",
            "s1-option1_channel": "telegram",
            "s1-option1_template": tg_notice.pk,
            "s1-option2_channel": "email",
            "s1-option2_template": welcome.pk,
            "s1-next": "",
        },
    )
    assert response.status_code == 302
    workflow.refresh_from_db()
    assert workflow.draft_graph["steps"][0]["options"] == [
        {"channel": "telegram", "template_id": tg_notice.pk},
        {"channel": "email", "template_id": welcome.pk},
    ]
    workflow_activate(workflow=workflow)

    response = client.post(
        reverse("workflow_step_save", args=[workflow.pk, "s1"]),
        {"s1-option1_channel": "viber", "s1-next": ""},
    )
    assert response.status_code == 400
    assert "viber is not one of the available choices" in response.content.decode()


def test_the_editor_saves_a_group_step(client, marketer, welcome):
    client.force_login(marketer)
    workflow = make_workflow(chain({"kind": "send_group"}), activate=False)
    response = client.post(
        reverse("workflow_step_save", args=[workflow.pk, "s1"]),
        {
            "s1-template": welcome.pk,
            "s1-channel": "email",
            "s1-addresses": "boss@shop.example\n\nsales@shop.example\n",
            "s1-next": "",
        },
    )
    assert response.status_code == 302
    workflow.refresh_from_db()
    step = workflow.draft_graph["steps"][0]
    assert step["addresses"] == ["boss@shop.example", "sales@shop.example"]
    assert step["segment_id"] is None and step["template_id"] == welcome.pk
    workflow_activate(workflow=workflow)


def test_run_history_and_admin_show_the_channel_used_and_the_channels_passed_over(
    client, viewer, admin_user, mail_to_sink, django_capture_on_commit_callbacks
):
    email = published("By mail")
    sms = published("By SMS", "Hi", channel="sms")
    contact = ContactFactory(email="hist@example.com", phone="")
    make_workflow(
        chain(
            {
                "kind": "send_one_of",
                "options": [
                    {"channel": "sms", "template_id": sms.pk},
                    {"channel": "email", "template_id": email.pk},
                ],
            }
        )
    )
    start(emit(contact, params={"coupon": "X1"}), django_capture_on_commit_callbacks)
    run = WorkflowRun.objects.get()

    client.force_login(viewer)
    page = client.get(reverse("workflow_run_detail", args=[run.pk])).content.decode()
    assert "sent by email: email to hist@example.com queued" in page
    assert "sms skipped: the contact has no SMS address" in page

    admin_user.is_staff = True
    admin_user.save()
    client.force_login(admin_user)
    page = client.get(f"/admin/marketing/workflowrun/{run.pk}/change/").content.decode()
    assert "X1" in page  # the names the message got ($event)


def test_a_message_condition_sees_the_message_a_one_of_many_step_sent(
    ann, welcome, django_capture_on_commit_callbacks
):
    make_workflow(
        chain(
            {"kind": "send_one_of", "options": [{"channel": "email", "template_id": welcome.pk}]},
            {"kind": "wait", "mode": "duration", "seconds": 3600},
            {
                "kind": "condition",
                "check": {"type": "message", "event": "opened", "step": "s1"},
                "yes": "s4",
                "no": "s5",
            },
            {"kind": "exit", "label": "Engaged"},
            {"kind": "exit", "label": "Not engaged"},
        )
    )
    [run_id] = start(emit(ann), django_capture_on_commit_callbacks)
    Delivery.objects.update(status="opened", opened_at=timezone.now())
    wake(WorkflowRun.objects.get(pk=run_id))
    with django_capture_on_commit_callbacks(execute=False):
        workflows_tick()
    assert WorkflowRun.objects.get(pk=run_id).path[-1]["step"] == "s4"
